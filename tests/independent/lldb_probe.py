"""Report what LLDB's minidump plugin sees in a dump, as JSON on stdout.

Run with the interpreter that can import the ``lldb`` module (Debian: ``/usr/bin/python3`` with
``python3-lldb-NN``), not with the project's virtual environment::

    /usr/bin/python3 tests/independent/lldb_probe.py DUMP [--read 0xADDR:LEN ...]

The output object has these keys:

``loaded``
    whether ``SBTarget.LoadCore`` produced a valid process; ``error`` holds LLDB's message if not.
``triple``
    the target triple LLDB derived from SystemInfo (``i386-pc-windows``, ``x86_64-apple-macosx``...).
``modules``
    one entry per module LLDB created: ``path``, ``name``, ``base`` (load address of the object file
    header) and ``size`` (byte size of the ``.module_image`` placeholder section, which LLDB sizes
    from ``SizeOfImage`` when the module file is not on disk; ``null`` otherwise) and ``uuid`` (from
    the CodeView record: for a PDB 7.0 record the GUID in canonical byte order, then the age).
``threads``
    ``tid`` and ``pc`` of frame 0, and ``frames``: the PCs of LLDB's backtrace (at most 32 frames).
    For the thread named by the Exception stream LLDB takes the registers from the exception's
    context record, not from the ThreadList context.
``regions``
    ``SBProcess.GetMemoryRegions()``: ``base``, ``end``, ``readable``, ``writable``, ``executable``,
    ``mapped``.
``reads``
    for each ``--read``: ``address``, ``length``, ``hex`` (bytes LLDB returned, possibly fewer than
    asked) and ``error`` (LLDB's message or ``null``).

LLDB writes diagnostics to the process's stdout and stderr; file descriptor 1 is pointed at stderr
while LLDB runs so that stdout carries nothing but the JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def _parse_read(text: str) -> tuple[int, int]:
    address, _, length = text.partition(":")
    if not length:
        raise argparse.ArgumentTypeError(f"expected ADDRESS:LENGTH, got {text!r}")
    return int(address, 0), int(length, 0)


def _quiet_settings(debugger) -> None:
    import lldb

    interpreter = debugger.GetCommandInterpreter()
    for command in (
        "settings set symbols.enable-external-lookup false",
        "settings set symbols.auto-download off",
        "settings clear plugin.symbol-locator.debuginfod.server-urls",
        "settings set target.preload-symbols false",
    ):
        interpreter.HandleCommand(command, lldb.SBCommandReturnObject())


def _module_size(module) -> int | None:
    for index in range(module.GetNumSections()):
        section = module.GetSectionAtIndex(index)
        if section.GetName() == ".module_image":
            return section.GetByteSize()
    return None


def probe(path: str, reads: list[tuple[int, int]]) -> dict:
    import lldb

    debugger = lldb.SBDebugger.Create(False)
    debugger.SetAsync(False)
    _quiet_settings(debugger)
    report: dict = {"path": path, "lldb": lldb.SBDebugger.GetVersionString().splitlines()[0]}
    try:
        target = debugger.CreateTarget("")
        error = lldb.SBError()
        process = target.LoadCore(path, error)
        report["loaded"] = bool(process.IsValid()) and error.Success()
        report["error"] = None if error.Success() else (error.GetCString() or "unknown error")
        if not process.IsValid():
            return report
        report["triple"] = target.GetTriple()
        modules = []
        for index in range(target.GetNumModules()):
            module = target.GetModuleAtIndex(index)
            spec = module.GetFileSpec()
            header = module.GetObjectFileHeaderAddress()
            base = header.GetLoadAddress(target) if header.IsValid() else None
            modules.append(
                {
                    "path": spec.fullpath,
                    "name": spec.GetFilename(),
                    "base": None if base in (None, lldb.LLDB_INVALID_ADDRESS) else base,
                    "size": _module_size(module),
                    "uuid": module.GetUUIDString(),
                }
            )
        report["modules"] = modules
        threads = []
        for index in range(process.GetNumThreads()):
            thread = process.GetThreadAtIndex(index)
            frame = thread.GetFrameAtIndex(0)
            pc = frame.GetPC() if frame.IsValid() else None
            if pc == lldb.LLDB_INVALID_ADDRESS:
                pc = None
            frames = []
            for number in range(min(thread.GetNumFrames(), 32)):
                frames.append(thread.GetFrameAtIndex(number).GetPC())
            threads.append({"tid": thread.GetThreadID(), "pc": pc, "frames": frames})
        report["threads"] = threads
        regions = []
        region_list = process.GetMemoryRegions()
        for index in range(region_list.GetSize()):
            info = lldb.SBMemoryRegionInfo()
            if not region_list.GetMemoryRegionAtIndex(index, info):
                continue
            regions.append(
                {
                    "base": info.GetRegionBase(),
                    "end": info.GetRegionEnd(),
                    "readable": bool(info.IsReadable()),
                    "writable": bool(info.IsWritable()),
                    "executable": bool(info.IsExecutable()),
                    "mapped": bool(info.IsMapped()),
                }
            )
        report["regions"] = regions
        results = []
        for address, length in reads:
            read_error = lldb.SBError()
            data = process.ReadMemory(address, length, read_error) if length else b""
            results.append(
                {
                    "address": address,
                    "length": length,
                    "hex": (data or b"").hex(),
                    "error": None if read_error.Success() else (read_error.GetCString() or "read failed"),
                }
            )
        report["reads"] = results
        debugger.DeleteTarget(target)
        return report
    finally:
        lldb.SBDebugger.Destroy(debugger)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dump")
    parser.add_argument("--read", action="append", type=_parse_read, default=[], metavar="0xADDR:LEN")
    args = parser.parse_args(argv)

    sys.stdout.flush()
    json_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    try:
        import lldb  # noqa: F401
    except ImportError as error:
        json.dump({"path": args.dump, "loaded": False, "error": f"cannot import lldb: {error}"}, json_out)
        json_out.write("\n")
        json_out.close()
        return 3
    report = probe(os.path.abspath(args.dump), args.read)
    sys.stdout.flush()
    json.dump(report, json_out)
    json_out.write("\n")
    json_out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
