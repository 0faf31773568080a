"""Thread checks on a lab WmiPrvSE dump with a remote thread planted at kernel32!LoadLibraryW."""

from __future__ import annotations

from fixtures.labdump import Thread, build_wmiprvse, write_minidump
from wmiforensics.backends.minidump import facts_from_minidump
from wmiforensics.engine import Severity, analyse
from wmiforensics.minidump import Minidump


def test_thread_starting_at_loadlibrary_is_flagged(tmp_path):
    proc = build_wmiprvse(arch="x64", build=19045, seed=0)
    kernel32 = proc.module("kernel32.dll")
    start = kernel32.address_of("LoadLibraryW")
    model = proc.threads[0]
    proc.threads.append(
        Thread(
            thread_id=7777,
            teb=model.teb,
            stack_base=model.stack_base,
            stack_limit=model.stack_limit,
            start_address=start,
            instruction_pointer=model.instruction_pointer,
            stack_pointer=model.stack_pointer,
        )
    )
    path = tmp_path / "loadlibrary.dmp"
    with open(path, "wb") as out:
        write_minidump(proc, out)
    with Minidump.open(path) as dump:
        findings = analyse(facts_from_minidump(dump), min_severity=Severity.INFO).findings
    assert [(f.kind, f.start, f.module) for f in findings] == [
        ("thread_start_loadlibrary", start, "kernel32.dll")
    ]
    assert "kernel32.dll!LoadLibraryW" in findings[0].reason


def test_wmiprvse_outside_the_wbem_folder(tmp_path):
    proc = build_wmiprvse(arch="x64", build=19045, seed=0)
    proc.modules[0].path = "C:\\Windows\\System32\\WmiPrvSE.exe"
    path = tmp_path / "moved.dmp"
    with open(path, "wb") as out:
        write_minidump(proc, out)
    with Minidump.open(path) as dump:
        findings = analyse(facts_from_minidump(dump), min_severity=Severity.INFO).findings
    assert [(f.kind, f.start) for f in findings] == [("process_path", proc.modules[0].base)]
    assert (
        findings[0].reason
        == "WmiPrvSE.exe runs from C:\\Windows\\System32\\WmiPrvSE.exe, not from \\Windows\\System32\\wbem"
    )
