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
from wmiforensics.engine import Severity, analyse
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
