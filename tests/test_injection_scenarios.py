"""wmi.injection's engine on every planted lab scenario: exactly the planted findings, nothing else.

The fixtures come from ``fixtures/labdump/attacks.py``, which records what it planted without any
help from the detector; the test compares kinds and ranges one to one.
"""

from __future__ import annotations

import pytest

from fixtures.labdump import write_minidump
from fixtures.labdump.scenarios import SCENARIOS, build_scenario
from wmiforensics.backends.minidump import facts_from_minidump
from wmiforensics.engine import Severity, analyse
from wmiforensics.minidump import Minidump

BUILDS = {"x64": 19045, "x86": 22631}


def analyse_scenario(tmp_path, name: str, arch: str, **options):
    proc, planted = build_scenario(name, arch=arch, build=BUILDS[arch])
    path = tmp_path / f"{name}-{arch}.dmp"
    with open(path, "wb") as out:
        write_minidump(proc, out)
    with Minidump.open(path) as dump:
        return analyse(facts_from_minidump(dump), **options), planted


@pytest.mark.parametrize("arch", sorted(BUILDS))
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_yields_exactly_the_planted_findings(tmp_path, name, arch):
    analysis, planted = analyse_scenario(tmp_path, name, arch, min_severity=Severity.INFO)
    found = sorted((finding.kind, finding.start, finding.end) for finding in analysis.findings)
    assert found == sorted((item.kind, item.start, item.end) for item in planted)
    for finding in analysis.findings:
        assert finding.reason and finding.evidence or finding.disassembly
        assert finding.protection and finding.region_type and finding.module


@pytest.mark.parametrize("arch", sorted(BUILDS))
def test_clean_baseline_has_nothing_above_low(tmp_path, arch):
    analysis, _ = analyse_scenario(tmp_path, "clean", arch, min_severity=Severity.INFO)
    assert [f for f in analysis.findings if f.severity > Severity.LOW] == []


SEVERITIES = {
    "pe_injected": Severity.CRITICAL,  # RWX reflective DLL
    "exec_rwx": Severity.CRITICAL,  # shellcode prologue raises HIGH
    "thread_start_unbacked": Severity.HIGH,
    "thread_ip_unbacked": Severity.HIGH,
    "pe_headerless": Severity.HIGH,
    "module_masquerade": Severity.HIGH,
    "etw_patch": Severity.CRITICAL,
    "wmi_consumer_module": Severity.LOW,
}


def test_lab_example_severities_and_evidence(tmp_path):
    analysis, _ = analyse_scenario(tmp_path, "lab_example", "x64")
    by_kind = {finding.kind: finding for finding in analysis.findings}
    assert {kind: finding.severity for kind, finding in by_kind.items()} == SEVERITIES
    assert analysis.findings[0].severity == Severity.CRITICAL
    assert "33 c0 c3" in " ".join(by_kind["etw_patch"].evidence)
    assert by_kind["etw_patch"].reason.startswith("ntdll.dll!EtwEventWrite returns 0 (success) at once")
    assert "shellcode prologue" in " ".join(by_kind["exec_rwx"].evidence)
    assert by_kind["pe_injected"].pe_base == by_kind["pe_injected"].start
    assert "entry point" in " ".join(by_kind["pe_injected"].evidence)
    assert by_kind["module_masquerade"].module == "wbemcore.dll"
    assert "C:\\ProgramData\\wbemcore.dll" in by_kind["module_masquerade"].reason


def test_jit_host_code_is_ranked_down_not_hidden(tmp_path):
    analysis, planted = analyse_scenario(tmp_path, "jit_host", "x64")
    assert len(analysis.findings) == len(planted) == 2
    for finding in analysis.findings:
        assert finding.severity == Severity.MEDIUM
        assert finding.ranked_down == ["the process hosts a JIT compiler (clr.dll, clrjit.dll)"]


def test_min_severity_hides_and_counts(tmp_path):
    analysis, _ = analyse_scenario(tmp_path, "lab_example", "x64", min_severity=Severity.CRITICAL)
    assert sorted(f.kind for f in analysis.findings) == ["etw_patch", "exec_rwx", "pe_injected"]
    assert analysis.below_threshold == 5
