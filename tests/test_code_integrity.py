"""Code integrity of loaded system modules: AMSI patches, inline hooks, system-call stub order, and a
benign hook engine reported as one low finding instead of fifty.

Which findings each scenario must yield exactly is checked by test_injection_scenarios.py; these
tests pin what the findings say and that nothing is invented where nothing was planted.
"""

from __future__ import annotations

import pytest

from fixtures.labdump import write_minidump
from fixtures.labdump.scenarios import build_scenario
from fixtures.labdump.tampering import HOOK_ENGINE_TARGETS, HOOK_ENGINE_TRAMPOLINES
from wmiforensics.backends.minidump import facts_from_minidump
from wmiforensics.engine import Severity, analyse, code
from wmiforensics.engine.branches import find_flip
from wmiforensics.engine.facts import ModuleFact, PageChange
from wmiforensics.engine.integrity import _out_of_order, syscall_number
from wmiforensics.minidump import Minidump

BUILDS = {"x64": 19045, "x86": 22631}


def _findings(tmp_path, name, arch, **options):
    proc, planted = build_scenario(name, arch=arch, build=BUILDS[arch])
    path = tmp_path / f"{name}-{arch}.dmp"
    with open(path, "wb") as out:
        write_minidump(proc, out)
    with Minidump.open(path) as dump:
        return analyse(facts_from_minidump(dump), **options).findings, planted, proc


@pytest.mark.parametrize("arch", sorted(BUILDS))
def test_amsi_patch_is_critical_and_names_e_invalidarg(tmp_path, arch):
    findings, planted, _ = _findings(tmp_path, "amsi_patch", arch)
    (finding,) = findings
    assert finding.kind == "amsi_patch" and finding.severity == Severity.CRITICAL
    assert finding.reason.startswith("amsi.dll!AmsiScanBuffer returns at +0x5")
    assert "returns E_INVALIDARG (0x80070057)" in " ".join(finding.evidence)
    assert "mov eax, 0x80070057" in finding.disassembly


@pytest.mark.parametrize("arch", sorted(BUILDS))
def test_ntdll_hooks_name_the_trampoline(tmp_path, arch):
    findings, planted, _ = _findings(tmp_path, "ntdll_hooks", arch)
    trampoline = next(item for item in planted if item.kind == "exec_was_rwx")
    hooks = [finding for finding in findings if finding.kind == "inline_hook"]
    assert len(hooks) == 2
    for hook in hooks:
        assert hook.severity == Severity.HIGH and hook.module == "ntdll.dll"
        assert f"region 0x{trampoline.start:x}" in hook.reason
        assert "MEM_PRIVATE PAGE_EXECUTE_READ memory no image backs" in hook.reason
        assert any(line.startswith("at the target: ") for line in hook.evidence)


@pytest.mark.parametrize("arch", sorted(BUILDS))
def test_reordered_stub_names_its_neighbours(tmp_path, arch):
    findings, _, proc = _findings(tmp_path, "reordered_syscall", arch)
    (finding,) = findings
    assert finding.reason.startswith("ntdll.dll!NtDelayExecution issues system call 0x50")
    assert "NtMapViewOfSection 0x28, NtWriteVirtualMemory 0x3a" in finding.reason


@pytest.mark.parametrize("arch", sorted(BUILDS))
def test_hook_engine_is_one_low_finding_naming_its_dll(tmp_path, arch):
    findings, planted, _ = _findings(tmp_path, "hook_engine", arch, min_severity=Severity.INFO)
    (finding,) = findings
    assert finding.kind == "hook_engine" and finding.severity == Severity.LOW
    assert finding.module == "CtxHookEngine.dll"
    evidence = " | ".join(finding.evidence)
    assert f"{HOOK_ENGINE_TRAMPOLINES} trampolines jump into C:\\Program Files" in evidence
    assert evidence.count("hook ") == len(HOOK_ENGINE_TARGETS)
    assert finding.ranked_down and "third-party DLL" in finding.ranked_down[0]


def test_stub_numbers_and_order_helpers():
    assert syscall_number(bytes.fromhex("4C8BD1B834000000"), "x64") == (0x34, 8)
    assert syscall_number(bytes.fromhex("B834000000BA"), "x86") == (0x34, 5)
    assert syscall_number(bytes.fromhex("E900000000"), "x64") is None
    assert _out_of_order([1, 2, 9, 3, 4, 5]) == [2]
    assert _out_of_order([1, 2, 3]) == []
    assert _out_of_order([]) == []


@pytest.mark.parametrize("arch", sorted(BUILDS))
def test_iat_hook_names_the_import_and_the_target(tmp_path, arch):
    findings, planted, _ = _findings(tmp_path, "iat_hook", arch)
    hook = next(finding for finding in findings if finding.kind == "iat_hook")
    handler = next(item for item in planted if item.kind == "exec_private")
    assert hook.reason.startswith(
        "WmiPrvSE.exe imports KERNELBASE.dll!WaitForMultipleObjectsEx, but its IAT slot"
    )
    assert f"region 0x{handler.start:x}" in hook.reason and hook.confidence == 3


FLIP_SCENARIOS = {
    # scenario: (function, what the reason must say, the flagged instruction's mnemonic)
    "amsi_open_session_jne": ("AmsiOpenSession", "path where {reg} is NULL dereferences it", "jne"),
    "amsi_open_session_jmp": ("AmsiOpenSession", "is followed by an unconditional jmp", "jmp"),
    "amsi_open_session_xor": ("AmsiOpenSession", "is always taken", "xor"),
    "amsi_scan_buffer_jmp": ("AmsiScanBuffer", "is followed by an unconditional jmp", "jmp"),
    "amsi_scan_string_jmp": ("AmsiScanString", "is followed by an unconditional jmp", "jmp"),
}
FLIPPED_REGISTER = {"x64": "rdx", "x86": "ecx"}


@pytest.mark.parametrize("arch", sorted(BUILDS))
@pytest.mark.parametrize("name", sorted(FLIP_SCENARIOS))
def test_flipped_amsi_branch_is_critical_with_its_evidence(tmp_path, name, arch):
    function, shape, mnemonic = FLIP_SCENARIOS[name]
    findings, planted, proc = _findings(tmp_path, name, arch)
    (finding,) = findings
    (record,) = planted
    address = proc.address_of("amsi.dll", function)
    assert (finding.kind, finding.start, finding.end) == ("amsi_branch_patch", record.start, record.end)
    assert finding.severity == Severity.CRITICAL and finding.confidence == 3
    assert (finding.module, finding.region_type, finding.protection) == (
        "amsi.dll",
        "MEM_IMAGE",
        "PAGE_EXECUTE_READ",
    )
    assert finding.reason.startswith(f"amsi.dll!{function}+0x{record.start - address:x}: ")
    assert shape.format(reg=FLIPPED_REGISTER[arch]) in finding.reason
    evidence = " | ".join(finding.evidence)
    flagged = proc.read(record.start, record.end - record.start).hex(" ")
    assert f"flagged instruction bytes: {flagged} ({mnemonic} " in evidence
    assert "failure exit reached: " in evidence and "mov eax, 0x80070057" in evidence
    assert "returns E_INVALIDARG (0x80070057)" in evidence
    assert f"0x{record.start:x}: {mnemonic} " in finding.disassembly
    if mnemonic != "xor":  # a short je whose first byte was rewritten
        assert f"as compiled this was most likely 74 {flagged[3:]} (je 0x" in evidence
    else:
        assert "most likely" not in evidence


@pytest.mark.parametrize("arch", sorted(BUILDS))
def test_unpatched_amsi_bodies_give_no_flip(tmp_path, arch):
    """amsi.dll loaded with the compiled argument checks (je to the E_INVALIDARG exit) and patched
    only at AmsiScanBuffer's first bytes: the prologue patch alone is reported, no flip."""
    findings, _, _ = _findings(tmp_path, "amsi_patch", arch, min_severity=Severity.INFO)
    assert [finding.kind for finding in findings] == ["amsi_patch"]


def _flip_in(hex_code: str, arch: str = "x64"):
    """find_flip over hand-assembled bytes laid out as a module at 0x1000."""
    data = bytes.fromhex(hex_code)
    module = ModuleFact(0x1000, 0x1000, "C:\\Windows\\System32\\amsi.dll")

    def read(address: int, length: int) -> bytes:
        return data[max(0, address - 0x1000) : address - 0x1000 + length] if address >= 0x1000 else b""

    return find_flip(code.disassemble(data, 0x1000, arch, 48), module, read, arch)


def test_compiler_shapes_are_not_flips():
    # MSVC output (setuptools' wininst-14.0-amd64.exe): cmp; jmp to a setne that reads the flags.
    assert _flip_in("483BF8 EB03 803F2F 0F95C0 4883C420 5F C3") is None
    # clang output (libLLVM.so.22.1): a dead compare before a jump to a load of the result.
    assert _flip_in("83F85E EB00 8B4750 C3") is None
    # A reserved argument that must be NULL: test r9, r9; jne E_INVALIDARG, r9 never dereferenced.
    assert _flip_in("4D85C9 7506 488BC1 4883C408 C3 B857000780 C3") is None
    # The compiled null check: test rdx, rdx; je to the exit.
    assert _flip_in("4885D2 7406 48890A 33C0 C3 B857000780 C3") is None
    # The same check flipped to jne, the fall-through storing through rdx (NULL there).
    flagged, branch, why, exit_address = _flip_in("4885D2 7506 48890A 33C0 C3 B857000780 C3")
    assert flagged is branch and flagged.text == "jne 0x100b" and exit_address == 0x100B
    assert "dereferences it (mov qword ptr [rdx], rcx)" in why
    # A published pattern patch (85 C0 74 -> 85 C0 EB): the provider result's jz turned into jmp.
    flagged, _, why, _ = _flip_in("FF5018 85C0 EB06 8B0F 33C0 EB05 B857000780 4883C428 C3")
    assert flagged.text == "jmp 0x100d" and why.startswith("test eax, eax is followed by an unconditional")


@pytest.mark.parametrize("arch", sorted(BUILDS))
def test_flip_names_the_image_file_byte_on_full_images(tmp_path, arch):
    """Where the input compares image pages with the file (full memory images), the original
    instruction backs the finding; a page reported unchanged lowers the confidence."""
    proc, planted = build_scenario("amsi_open_session_jmp", arch=arch, build=BUILDS[arch])
    (record,) = planted
    path = tmp_path / f"flip-{arch}.dmp"
    with open(path, "wb") as out:
        write_minidump(proc, out)
    page = record.start & ~0xFFF
    with Minidump.open(path) as dump:
        facts = facts_from_minidump(dump)
        current = facts.read(page, 0x1000)
        original = bytearray(current)
        original[record.start - page] = 0x74
        facts.image_page_changes = [PageChange(page, current, bytes(original), 0x1234, 0x5678)]
        findings = analyse(facts).findings
        facts.image_page_changes = []
        unconfirmed = analyse(facts).findings
    flip = next(finding for finding in findings if finding.kind == "amsi_branch_patch")
    assert flip.confidence == 3
    assert any(
        line.startswith("the image file's page holds 74 ") and "(je 0x" in line for line in flip.evidence
    )
    assert [finding.kind for finding in findings] == ["amsi_branch_patch", "image_page_modified"]
    (lone,) = unconfirmed
    assert lone.confidence == 2 and "not reported as differing" in " ".join(lone.evidence)
