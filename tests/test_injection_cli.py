"""wmi.injection through ``vol``: renderers, filters, allow-lists and --dump on lab dumps."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from pathlib import Path

import pefile
import pytest

from fixtures.labdump import write_minidump
from fixtures.labdump.scenarios import build_scenario
from tests.conftest import EXAMPLE_DUMP, REPO, run_vol, vol_command, vol_json
from wmiforensics.addressmap import AddressMap
from wmiforensics.engine import Confidence, Finding, Severity
from wmiforensics.engine.facts import ProcessFacts
from wmiforensics.vol.dumps import Dumper
from wmiforensics.vol.injection import dump_finding

EXPECTED = json.loads((EXAMPLE_DUMP.with_suffix(".expected.json")).read_text())


def planted(document) -> list:
    return sorted((item["kind"], int(item["start"], 16)) for item in document["planted"])


def test_example_dump_json_lists_the_planted_attacks():
    rows = vol_json(EXAMPLE_DUMP, "wmi.injection")
    assert sorted((row["Kind"], row["Start"]) for row in rows) == planted(EXPECTED)
    first = rows[0]
    assert first["Severity"] == "critical"
    assert set(first) >= {
        "PID",
        "Process",
        "Confidence",
        "End",
        "Size",
        "Protection",
        "InitialProtection",
        "Type",
        "Module",
        "Reason",
        "Evidence",
        "RankedDown",
        "Disassembly",
        "Hexdump",
        "Dumped",
    }
    assert {row["Process"] for row in rows} == {"WmiPrvSE.exe"}


def test_csv_renderer_and_min_severity():
    result = run_vol(EXAMPLE_DUMP, "wmi.injection", "--min-severity", "critical", renderer="csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert sorted(row["Kind"] for row in rows) == ["etw_patch", "exec_rwx", "pe_injected"]
    assert "findings below --min-severity" in result.stderr


def test_allow_list_hides_matching_findings(tmp_path):
    allow = tmp_path / "allow.txt"
    allow.write_text("etw_patch module=ntdll.dll\nwmi_consumer_module\n")
    rows = vol_json(EXAMPLE_DUMP, "wmi.injection", "--allow-list", str(allow))
    kinds = {row["Kind"] for row in rows}
    assert "etw_patch" not in kinds and "wmi_consumer_module" not in kinds
    assert len(rows) == len(EXPECTED["planted"]) - 2


def test_bad_allow_list_is_one_clear_error(tmp_path):
    allow = tmp_path / "allow.txt"
    allow.write_text("exec_rwx colour=blue\n")
    result = run_vol(EXAMPLE_DUMP, "wmi.injection", "--allow-list", str(allow))
    assert result.returncode == 2
    assert f"wmi-forensics: error: {allow}:1: expected KEY=VALUE" in result.stderr
    assert "Traceback" not in result.stderr


def test_dump_writes_regions_and_rebuilt_pes_inside_the_output_folder(tmp_path):
    proc, _ = build_scenario("lab_example", arch="x64", build=19045)
    dump = tmp_path / "lab.dmp"
    with open(dump, "wb") as out:
        write_minidump(proc, out)
    output = tmp_path / "out"
    output.mkdir()
    result = run_vol(dump, "wmi.injection", "--dump", output_dir=output)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    files = sorted(path.name for path in output.iterdir())
    listed = sorted(name for row in rows if row["Dumped"] for name in row["Dumped"].split(", "))
    assert files == listed
    assert all(Path(output / name).resolve().parent == output.resolve() for name in files)
    injected = next(row for row in rows if row["Kind"] == "pe_injected")
    pe_file = next(name for name in injected["Dumped"].split(", ") if name.endswith(".pe"))
    image = pefile.PE(str(output / pe_file))
    assert image.FILE_HEADER.Machine == 0x8664
    assert image.sections and image.sections[0].Name.rstrip(b"\x00") == b".text"
    region = next(name for name in injected["Dumped"].split(", ") if name.endswith(".bin"))
    assert (output / region).stat().st_size == injected["Size"]
    fake = next(row for row in rows if row["Kind"] == "module_masquerade")
    assert any(name.endswith(".wbemcore.dll.pe") for name in fake["Dumped"].split(", "))


class _Recorder:
    def __init__(self):
        self.names = []

    def __call__(self, name):
        self.names.append(name)
        return io.BytesIO()


@pytest.mark.parametrize(
    "module", ["..\\..\\..\\Windows\\evil.dll", "../../etc/passwd", "..", "a\x00b:c*?.dll"]
)
def test_dump_names_stay_safe_whatever_the_module_is_called(module):
    finding = Finding(
        "module_masquerade",
        Severity.HIGH,
        Confidence.HIGH,
        0x10000,
        0x11000,
        "x",
        module=module,
        pe_base=0x10000,
        pid=42,
    )

    facts = ProcessFacts(42, "x.exe", None, "x64", [], [], [], [], lambda address, length: b"\x00" * length)
    recorder = _Recorder()
    dump_finding(finding, facts, Dumper(recorder), AddressMap([], []))
    for name in recorder.names:
        assert "/" not in name and "\\" not in name and "\x00" not in name
        assert not name.startswith(".") and ".." not in name.replace("...", "")
        assert name.startswith("pid42.module_masquerade.")


def test_saved_configuration_reopens_the_minidump(tmp_path):
    saved = tmp_path / "config.json"
    first = run_vol(EXAMPLE_DUMP, "wmi.injection", global_options=["--save-config", str(saved)])
    assert first.returncode == 0, first.stderr
    config = json.loads(saved.read_text())
    assert config["kernel.layer_name.class"] == "wmiforensics.minidump.layer.MinidumpLayer"
    command = [
        *vol_command(),
        "-q",
        "-p",
        str(REPO / "plugins"),
        "-c",
        str(saved),
        "-r",
        "json",
        "wmi.injection",
    ]
    again = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == json.loads(first.stdout)


def test_output_cut_short_by_a_pipe_ends_quietly():
    command = [*vol_command(), "-q", "-p", str(REPO / "plugins"), "-f", str(EXAMPLE_DUMP), "wmi.injection"]
    reader = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    reader.stdout.read(10)
    reader.stdout.close()
    stderr = reader.stderr.read().decode()
    reader.wait(timeout=120)
    assert "Traceback" not in stderr
