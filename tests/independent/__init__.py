"""Oracles we did not write: LLDB's minidump plugin and LLVM's obj2yaml/yaml2obj.

The LLDB Python module only imports into the interpreter it was built for (Debian's
``/usr/bin/python3``), so :func:`lldb_report` runs ``lldb_probe.py`` there in a subprocess and
parses the JSON it prints. :func:`obj2yaml` runs ``obj2yaml-NN`` and returns the document with every
scalar as a string (YAML's BaseLoader), so that hex dumps made only of digits stay text and numbers
are converted explicitly with :func:`number`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
from functools import cache
from pathlib import Path
from typing import Any, Iterable, Optional

PROBE = Path(__file__).resolve().with_name("lldb_probe.py")
LLVM_VERSIONS = ("22", "21", "20")
SYSTEM_PYTHON = os.environ.get("WMI_LLDB_PYTHON", "/usr/bin/python3")
TIMEOUT = 60

_YAML_TO_JSON = (
    "import json, sys, yaml\njson.dump(yaml.load(sys.stdin.read(), Loader=yaml.BaseLoader), sys.stdout)\n"
)


_UNESCAPED_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class ToolFailed(RuntimeError):
    """An external tool ran but did not produce what was asked (non-zero exit, bad output)."""


def _llvm_tool(name: str) -> Optional[str]:
    for version in LLVM_VERSIONS:
        found = shutil.which(f"{name}-{version}")
        if found:
            return found
    return shutil.which(name)


def obj2yaml_path() -> Optional[str]:
    return _llvm_tool("obj2yaml")


def yaml2obj_path() -> Optional[str]:
    return _llvm_tool("yaml2obj")


@cache
def lldb_python() -> Optional[str]:
    """The interpreter that can import ``lldb``, or None when there is none."""
    if not os.path.exists(SYSTEM_PYTHON):
        return None
    try:
        result = subprocess.run(
            [SYSTEM_PYTHON, "-c", "import lldb"], capture_output=True, timeout=TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return SYSTEM_PYTHON if result.returncode == 0 else None


def lldb_report(dump: os.PathLike[str] | str, reads: Iterable[tuple[int, int]] = ()) -> dict[str, Any]:
    """What LLDB sees in ``dump``: see the docstring of ``lldb_probe.py`` for the keys."""
    python = lldb_python()
    if python is None:
        raise ToolFailed(f"{SYSTEM_PYTHON} cannot import lldb")
    command = [python, str(PROBE), os.fspath(dump)]
    for address, length in reads:
        command += ["--read", f"0x{address:x}:{length}"]
    env = dict(os.environ, DEBUGINFOD_URLS="")  # no symbol downloads while loading the dump
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False, env=env)
    if result.returncode != 0:
        raise ToolFailed(f"lldb_probe.py exited with {result.returncode}: {result.stderr.strip()[-2000:]}")
    try:
        return json.loads(result.stdout)
    except json.JSONDecodeError as error:
        raise ToolFailed(f"lldb_probe.py printed no JSON ({error}): {result.stdout[:500]!r}") from None


def load_yaml(text: str) -> Any:
    """Parse an LLVM minidump YAML document with every scalar kept as a string."""
    # LLVM tags the document "--- !minidump"; the tag carries no data, and BaseLoader rejects it.
    text = text.replace("--- !minidump", "---", 1)
    # LLVM escapes control characters in the double-quoted scalars it writes, except DEL (0x7F),
    # which YAML does not allow unescaped (crashpad's macOS dumps put it in the CPU vendor field).
    text = _UNESCAPED_CONTROL.sub(lambda match: f"\\x{ord(match.group()):02X}", text)
    try:
        import yaml
    except ImportError:
        yaml = None
    if yaml is not None:
        loader = getattr(yaml, "CBaseLoader", yaml.BaseLoader)
        return yaml.load(text, Loader=loader)
    if not os.path.exists(SYSTEM_PYTHON):
        raise ToolFailed("PyYAML is not importable and there is no system Python to parse YAML")
    result = subprocess.run(
        [SYSTEM_PYTHON, "-c", _YAML_TO_JSON],
        input=text,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        raise ToolFailed(f"cannot parse obj2yaml output: {result.stderr.strip()[-1000:]}")
    return json.loads(result.stdout)


def obj2yaml_text(dump: os.PathLike[str] | str) -> str:
    tool = obj2yaml_path()
    if tool is None:
        raise ToolFailed("obj2yaml is not installed")
    result = subprocess.run(
        [tool, os.fspath(dump)], capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    if result.returncode != 0:
        raise ToolFailed(f"obj2yaml failed: {result.stderr.strip()}")
    return result.stdout


def obj2yaml(dump: os.PathLike[str] | str) -> dict[str, Any]:
    """obj2yaml's view of a minidump: ``{"Version": ..., "Streams": [{"Type": ..., ...}, ...]}``."""
    return load_yaml(obj2yaml_text(dump))


def yaml2obj(source: os.PathLike[str] | str, output: os.PathLike[str] | str) -> None:
    tool = yaml2obj_path()
    if tool is None:
        raise ToolFailed("yaml2obj is not installed")
    result = subprocess.run(
        [tool, os.fspath(source), "-o", os.fspath(output)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        raise ToolFailed(f"yaml2obj failed: {result.stderr.strip()}")


def number(text: Any) -> int:
    """A YAML integer as obj2yaml prints it: decimal or 0x-prefixed hex."""
    return int(str(text), 0)


def hex_bytes(text: Any) -> bytes:
    """A yaml2obj/obj2yaml BinaryRef (hex digits, possibly empty)."""
    return bytes.fromhex(str(text or ""))


def streams(document: dict[str, Any], stream_type: str) -> list[dict[str, Any]]:
    return [stream for stream in document.get("Streams", []) if stream.get("Type") == stream_type]


def stream(document: dict[str, Any], stream_type: str) -> Optional[dict[str, Any]]:
    found = streams(document, stream_type)
    return found[0] if found else None


# -- decoders for what obj2yaml prints as raw bytes --------------------------------------------------

#: (offset, size) of the instruction and stack pointers in a CONTEXT record (winnt.h).
CONTEXT_IP_SP = {"X86": ((0xB8, 4), (0xC4, 4)), "AMD64": ((0xF8, 8), (0x98, 8))}


def context_ip_sp(arch: str, context: bytes) -> tuple[int, int]:
    """Eip/Esp or Rip/Rsp from a CONTEXT record; ``arch`` as obj2yaml names it (X86, AMD64)."""
    (ip_offset, size), (sp_offset, _) = CONTEXT_IP_SP[arch]
    return (
        int.from_bytes(context[ip_offset : ip_offset + size], "little"),
        int.from_bytes(context[sp_offset : sp_offset + size], "little"),
    )


def codeview_pdb70(record: bytes) -> tuple[Optional[str], Optional[str], Optional[int]]:
    """(pdb name, GUID as 32 hex digits in symbol-server order, age) of an RSDS record."""
    if len(record) < 24 or record[:4] != b"RSDS":
        return None, None, None
    data1, data2, data3 = struct.unpack_from("<IHH", record, 4)
    guid = f"{data1:08X}{data2:04X}{data3:04X}{record[12:20].hex().upper()}"
    age = struct.unpack_from("<I", record, 20)[0]
    return record[24:].split(b"\0", 1)[0].decode("utf-8"), guid, age


def lldb_uuid_of_pdb70(guid: str, age: int) -> str:
    """The UUID string LLDB shows for a module with a PDB 7.0 CodeView record."""
    return f"{guid[:8]}-{guid[8:12]}-{guid[12:16]}-{guid[16:20]}-{guid[20:]}-{age:08X}"


def minidump_string(data: bytes, rva: int) -> str:
    """A MINIDUMP_STRING (u32 byte length, UTF-16LE) read straight from the file bytes."""
    length = struct.unpack_from("<I", data, rva)[0]
    return data[rva + 4 : rva + 4 + length].decode("utf-16-le")


# MinidumpConstants.def: the names yaml2obj and obj2yaml use for protection, state and type bits.
PROTECTION_BITS = {
    "PAGE_NO_ACCESS": 0x01,
    "PAGE_READ_ONLY": 0x02,
    "PAGE_READ_WRITE": 0x04,
    "PAGE_WRITE_COPY": 0x08,
    "PAGE_EXECUTE": 0x10,
    "PAGE_EXECUTE_READ": 0x20,
    "PAGE_EXECUTE_READ_WRITE": 0x40,
    "PAGE_EXECUTE_WRITE_COPY": 0x80,
    "PAGE_GUARD": 0x100,
    "PAGE_NOCACHE": 0x200,
    "PAGE_WRITECOMBINE": 0x400,
    "PAGE_TARGETS_INVALID": 0x40000000,
}
STATE_BITS = {"MEM_COMMIT": 0x1000, "MEM_RESERVE": 0x2000, "MEM_FREE": 0x10000}
TYPE_BITS = {"MEM_PRIVATE": 0x20000, "MEM_MAPPED": 0x40000, "MEM_IMAGE": 0x1000000}


def bitset(names: Any, table: dict[str, int]) -> int:
    """A YAML flow sequence of LLVM flag names (``[ PAGE_READ_WRITE, PAGE_GUARD ]``) as a number."""
    value = 0
    for name in names or []:
        value |= table[name]
    return value


def lldb_region_flags(protect: int, state: int) -> dict[str, bool]:
    """How LLDB turns a MINIDUMP_MEMORY_INFO entry into region permissions (MinidumpParser.cpp)."""
    return {
        "readable": not protect & 0x01,
        "writable": bool(protect & (0x04 | 0x08 | 0x40 | 0x80)),
        "executable": bool(protect & (0x10 | 0x20 | 0x40 | 0x80)),
        "mapped": state != 0x10000,
    }
