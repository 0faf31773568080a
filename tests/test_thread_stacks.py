"""Thread stacks: x64 unwinding with the modules' .pdata, x86 frame chains, scans, and what they find.

The lab builder writes each x64 module's RUNTIME_FUNCTION table and UNWIND_INFO records from the
documented format and lays every stack out as that data describes; LLVM's own decoder
(``llvm-readobj-22 --unwind``) reads the same tables, and LLDB's backtraces of the real dumps are
the reference for frame chains.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from functools import cache

import pytest

from fixtures.labdump import write_minidump
from fixtures.labdump.scenarios import build_scenario
from fixtures.labdump.wmiprvse import THREAD_BASE_FRAMES, THREAD_PLANS, build_wmiprvse
from tests.conftest import REAL_DUMPS, vol_json
from tests.independent import lldb_python, lldb_report
from wmiforensics.backends.minidump import facts_from_minidump
from wmiforensics.engine import Severity, analyse
from wmiforensics.engine.detectors import Context
from wmiforensics.engine.stacks import StackWalker
from wmiforensics.engine.unwind import MAX_FRAMES, ModuleTables
from wmiforensics.minidump import Minidump

BUILDS = {"x64": 19045, "x86": 22631}
NEW_KINDS = {
    "stack_return_unbacked",
    "sleep_apc_wait",
    "sleep_context_chain",
    "thread_start_spoofed",
    "amsi_patch",
    "inline_hook",
    "syscall_stub_order",
    "hook_engine",
    "dotnet_unbacked_assembly",
}


def _dump(tmp_path, proc, name="lab"):
    path = tmp_path / f"{name}-{proc.arch}.dmp"
    with open(path, "wb") as out:
        write_minidump(proc, out)
    return path


def _walk_all(path):
    with Minidump.open(path) as dump:
        facts = facts_from_minidump(dump)
        walker = StackWalker(Context.build(facts))
        return {thread.thread_id: walker.walk(thread).frames for thread in facts.threads}


@pytest.mark.parametrize("arch", sorted(BUILDS))
def test_every_lab_thread_unwinds_to_the_planted_return_addresses(tmp_path, arch):
    proc = build_wmiprvse(arch=arch, build=BUILDS[arch])
    walked = _walk_all(_dump(tmp_path, proc))
    for plan, thread in zip(THREAD_PLANS, proc.threads):
        expected = [proc.address_of(module, label) for module, label in plan.frames + THREAD_BASE_FRAMES]
        frames = walked[thread.thread_id]
        assert frames[0].address == thread.instruction_pointer
        assert [frame.address for frame in frames[1:]] == expected
        # Frame 1 is the return address at RSP/ESP (system-call stubs are leaves); the rest come from
        # unwind data (x64) or the saved-EBP chain (x86), never from scanning.
        assert {frame.how for frame in frames[2:]} == {"unwind" if arch == "x64" else "frame chain"}


def test_shellcode_thread_falls_back_to_scanning(tmp_path):
    proc, _ = build_scenario("shellcode_thread", arch="x64", build=BUILDS["x64"])
    thread = proc.threads[-1]
    frames = _walk_all(_dump(tmp_path, proc))[thread.thread_id]
    expected = [proc.address_of(module, label) for module, label in THREAD_BASE_FRAMES]
    assert [(frame.address, frame.how) for frame in frames[1:]] == [(a, "scan") for a in expected]


@pytest.mark.parametrize("arch", sorted(BUILDS))
def test_sleeping_masked_implant_is_critical_with_frames_as_evidence(tmp_path, arch):
    proc, planted = build_scenario("sleeping_implant", arch=arch, build=BUILDS[arch])
    with Minidump.open(_dump(tmp_path, proc)) as dump:
        findings = analyse(facts_from_minidump(dump)).findings
    assert [(f.kind, f.start) for f in findings] == [("stack_return_unbacked", planted[0].start)]
    finding = findings[0]
    assert finding.severity == Severity.CRITICAL
    assert finding.protection == "PAGE_READWRITE" and finding.region_type == "MEM_PRIVATE"
    evidence = " | ".join(finding.evidence)
    assert "sleep masking" in evidence
    assert "ntdll.dll!NtDelayExecution" in evidence and "KERNELBASE.dll!SleepEx" in evidence
    assert f"0x{planted[0].start:x} unbacked" in evidence


LLVM_OBJDUMP = shutil.which("llvm-objdump-22")


@pytest.mark.skipif(LLVM_OBJDUMP is None, reason="llvm-objdump-22 is missing (tests/run.sh installs llvm-22)")
@pytest.mark.parametrize("module_name", ["ntdll.dll", "KERNELBASE.dll", "kernel32.dll", "combase.dll"])
def test_llvm_reads_the_same_runtime_functions_as_the_engine(tmp_path, module_name):
    proc = build_wmiprvse(arch="x64", build=BUILDS["x64"])
    module = proc.module(module_name)
    image = tmp_path / module_name
    image.write_bytes(module.image)  # FileAlignment == SectionAlignment: the mapped image is the file
    text = subprocess.run(
        [LLVM_OBJDUMP, "--unwind-info", str(image)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    llvm = [
        (int(start, 16), int(end, 16))
        for start, end in re.findall(r"Start Address: 0x([0-9a-f]+)\s+End Address: 0x([0-9a-f]+)", text)
    ]
    with Minidump.open(_dump(tmp_path, proc)) as dump:
        facts = facts_from_minidump(dump)
        tables = ModuleTables(facts.read, facts.modules)
        loaded = next(m for m in facts.modules if m.name == module_name)
        ours = []
        for start, _ in llvm:
            entry = tables.runtime_function(loaded, loaded.base + start)
            ours.append(entry[:2] if entry else None)
    assert llvm and ours == llvm
    # Every function with a frame allocates stack; frameless stubs and thunks have no entry (leaves).
    assert len(re.findall(r"UOP_Alloc(?:Small|Large)", text)) == len(llvm)


def test_hostile_unwind_data_ends_the_walk(tmp_path):
    """A chained UNWIND_INFO that chains to itself, in every function of ntdll: bounded, no hang."""
    proc = build_wmiprvse(arch="x64", build=BUILDS["x64"])
    ntdll = proc.module("ntdll.dll")
    e_lfanew = struct.unpack_from("<I", ntdll.image, 0x3C)[0]
    rva, size = struct.unpack_from("<II", ntdll.image, e_lfanew + 24 + 112 + 3 * 8)
    for begin, end, info in struct.iter_unpack("<III", ntdll.image[rva : rva + size]):
        count = ntdll.image[info + 2]
        chain_at = info + 4 + 2 * (count + (count & 1))
        proc.write(ntdll.base + info, bytes([1 | 0x4 << 3]))  # version 1, UNW_FLAG_CHAININFO
        proc.write(ntdll.base + chain_at, struct.pack("<III", begin, end, info))
    walked = _walk_all(_dump(tmp_path, proc))
    assert walked and all(1 <= len(frames) <= MAX_FRAMES for frames in walked.values())


@cache
def _lldb_frames(relative: str) -> dict:
    report = lldb_report(REAL_DUMPS / relative)
    return {thread["tid"]: thread["frames"] for thread in report.get("threads", [])}


X86_WINDOWS_DUMPS = [
    "breakpad/ascii_read_av.dmp",
    "breakpad/exec_av_on_stack.dmp",
    "breakpad/minidump2.dmp",
    "breakpad/thread_name_list.dmp",
    "breakpad/tiny-exe-with-cet-xsave-x86.dmp",
]


@pytest.mark.skipif(lldb_python() is None, reason="LLDB's Python module is not importable")
@pytest.mark.parametrize("relative", X86_WINDOWS_DUMPS)
def test_frame_chains_match_lldb_on_real_dumps(relative):
    path = REAL_DUMPS / relative
    if not path.exists():
        pytest.skip(f"{path} not found")
    lldb = _lldb_frames(relative)
    with Minidump.open(path) as dump:
        exception_thread = dump.exception.thread_id if dump.exception else None
        facts = facts_from_minidump(dump)
        walker = StackWalker(Context.build(facts))
        compared = 0
        for thread in facts.threads:
            if thread.thread_id == exception_thread or thread.thread_id not in lldb:
                continue  # LLDB starts the faulting thread from the exception record's context
            frames = walker.walk(thread).frames
            ours = [frame.address for frame in frames if frame.how in ("context", "frame chain")]
            assert ours == lldb[thread.thread_id], f"thread {thread.thread_id}"
            compared += 1
    assert compared


REAL_DUMPS_CHECKED = sorted(
    X86_WINDOWS_DUMPS
    + [
        "llvm-lldb/fizzbuzz_no_heap.dmp",
        "rust-minidump/invalid-parameter.dmp",
        "breakpad/tiny-exe-fastfail.dmp",
    ]
)


@pytest.mark.parametrize("relative", REAL_DUMPS_CHECKED)
def test_real_dumps_raise_none_of_the_new_findings(relative):
    """Stack, sleep-chain, spoofing, code-integrity and .NET checks invent nothing on real dumps."""
    path = REAL_DUMPS / relative
    if not path.exists():
        pytest.skip(f"{path} not found")
    with Minidump.open(path) as dump:
        findings = analyse(facts_from_minidump(dump), min_severity=Severity.INFO).findings
    assert [f for f in findings if f.kind in NEW_KINDS] == []


def test_wmi_threads_shows_unwound_frames_on_request(tmp_path):
    proc, planted = build_scenario("sleeping_implant", arch="x64", build=BUILDS["x64"])
    path = _dump(tmp_path, proc)
    rows = {row["TID"]: row for row in vol_json(path, "wmi.threads", "--frames", "4")}
    sleeper = rows[proc.threads[-1].thread_id]["Frames"]
    assert sleeper.startswith("#0 ")
    assert f"#2 0x{planted[0].start:x} unbacked [unwind]" in sleeper
    assert "#4 " not in sleeper  # at most four frames
    assert all(row["Frames"].count("#") <= 4 for row in rows.values())


def test_sleep_chains_and_spoofed_start_explain_themselves(tmp_path):
    proc, planted = build_scenario("timer_sleep_chain", arch="x64", build=BUILDS["x64"])
    with Minidump.open(_dump(tmp_path, proc)) as dump:
        by_kind = {f.kind: f for f in analyse(facts_from_minidump(dump)).findings}
    chain = by_kind["sleep_context_chain"]
    assert [line for line in chain.evidence if line.startswith("CONTEXT at ")] == [
        f"CONTEXT at 0x{planted[1].start + index * 1232:x} -> KERNELBASE.dll!{name}"
        for index, name in enumerate(("VirtualProtect", "WaitForSingleObjectEx", "VirtualProtect"))
    ]
    assert chain.confidence == 3 and by_kind["stack_return_unbacked"].severity == Severity.CRITICAL

    proc, planted = build_scenario("apc_sleep_chain", arch="x86", build=BUILDS["x86"])
    with Minidump.open(_dump(tmp_path, proc)) as dump:
        (apc,) = analyse(facts_from_minidump(dump)).findings
    assert "called straight from ntdll.dll!KiUserApcDispatcher" in apc.reason

    proc, planted = build_scenario("spoofed_start", arch="x64", build=BUILDS["x64"])
    with Minidump.open(_dump(tmp_path, proc)) as dump:
        (spoofed,) = analyse(facts_from_minidump(dump)).findings
    combase = proc.module("combase.dll")
    routine = proc.address_of("combase.dll", "CRpcThreadCache::RpcWorkerThreadEntry") - combase.base
    assert spoofed.reason.endswith(
        f"BaseThreadInitThunk called combase.dll+0x{routine:x}: the start address was spoofed"
    )
