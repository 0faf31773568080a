"""wmi.yarascan through ``vol``: every bundled rule's planted examples, scoping, context, dumps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures.labdump import build_wmiprvse, write_minidump
from fixtures.labdump.yara_examples import plant_yara_examples, read_rules
from fixtures.winimage import build_image, default_processes
from tests.conftest import REAL_DUMPS, REPO, run_vol, vol_json
from wmiforensics.backends.minidump import facts_from_minidump
from wmiforensics.errors import InputError
from wmiforensics.minidump import Minidump
from wmiforensics.yarascan import RulePack, scan_process
from wmiforensics.yarascan.rules import ENGINE_ENV, engine_name, parse_defines

RULES = REPO / "yara_rules"


def lab_dump(path: Path, which: str, arch: str = "x64"):
    proc = build_wmiprvse(arch=arch, build=19045 if arch == "x64" else 22631, seed=0)
    planted = plant_yara_examples(proc, RULES, which=which)
    with open(path, "wb") as out:
        write_minidump(proc, out)
    return proc, planted


@pytest.fixture(scope="module")
def positives(tmp_path_factory):
    path = tmp_path_factory.mktemp("yara") / "positives.dmp"
    proc, planted = lab_dump(path, "positive")
    return path, proc, planted


def test_every_positive_example_is_found_in_its_region(positives):
    path, _, planted = positives
    rows = vol_json(path, "wmi.yarascan")
    found = {(row["Rule"], row["RegionBase"]) for row in rows}
    expected = {(item.rule, item.region_base) for item in planted}
    # Each example hits its own rule in its own region; a rich example may also satisfy a
    # related rule (an OBJREF carrying Win32_Process.Create is also a marshalled interface).
    assert expected <= found
    assert {base for _, base in found} == {item.region_base for item in planted}
    assert len(found) == len(rows)
    by_region = {(row["Rule"], row["RegionBase"]): row for row in rows}
    for item in planted:
        row = by_region[(item.rule, item.region_base)]
        assert item.start <= row["Address"] < item.end
        assert row["RegionEnd"] == item.region_base + item.region_size - 1
        assert row["Module"] == "unbacked" and row["Type"] == "MEM_PRIVATE"
        assert row["Protection"] == (
            "PAGE_EXECUTE_READ" if item.scope == "unbacked-exec" else "PAGE_READWRITE"
        )
        assert row["Strings"] != "-" and row["Hexdump"].startswith("0x")
    rules = {rule.identifier: rule for rule in read_rules(RULES)}
    assert {row["Rule"] for row in rows} == set(rules)
    for row in rows:
        meta = rules[row["Rule"]].meta
        assert (row["Severity"], row["Description"], row["Mitre"]) == (
            meta["severity"],
            meta["description"],
            meta["mitre_attack"],
        )


def test_code_hits_are_disassembled(positives):
    rows = vol_json(positives[0], "wmi.yarascan")
    code = [row for row in rows if row["Rule"].startswith("WMI_IWbemServices_Vtable_Calls")]
    assert code and all(row["Disassembly"].startswith("0x") for row in code)
    data = [row for row in rows if row["Rule"] == "WMI_Named_Pipe_wmi_ctl"]
    assert data and all(row["Disassembly"] is None for row in data)


@pytest.mark.parametrize("arch", ["x64", "x86"])
def test_near_misses_are_silent(tmp_path, arch):
    path, _ = tmp_path / "near.dmp", None
    lab_dump(path, "near_miss", arch)
    assert vol_json(path, "wmi.yarascan") == []


@pytest.mark.parametrize("arch", ["x64", "x86"])
def test_clean_baseline_is_silent(tmp_path, arch):
    proc = build_wmiprvse(arch=arch, build=19045 if arch == "x64" else 22631, seed=0)
    path = tmp_path / "clean.dmp"
    with open(path, "wb") as out:
        write_minidump(proc, out)
    assert vol_json(path, "wmi.yarascan") == []


def _windows_real_dumps():
    if not REAL_DUMPS.exists():
        return []
    found = []
    for path in sorted(REAL_DUMPS.rglob("*.dmp")):
        try:
            with Minidump.open(path) as dump:
                if dump.is_windows and dump.is_usable:
                    found.append(path)
        except Exception:  # noqa: BLE001 - malformed files are the real-dump tests' business
            continue
    return found


@pytest.mark.parametrize("path", _windows_real_dumps(), ids=lambda p: p.name)
def test_real_dumps_are_silent(path):
    assert vol_json(path, "wmi.yarascan") == []


def test_wmi_text_inside_a_wmi_dll_image_is_not_a_finding(tmp_path):
    proc = build_wmiprvse(arch="x64", build=19045, seed=0)
    only = ["WMI_Client_Locator_Login_GUID_With_WQL"]
    planted = plant_yara_examples(proc, RULES, which="positive", only=only)
    example = planted[0]
    wbemprox = proc.module("wbemprox.dll")
    inside = wbemprox.base + 0x2000
    proc.write(inside, example.data)
    planted_regions = {item.region_base for item in planted}
    proc.regions = [region for region in proc.regions if region.base not in planted_regions]
    path = tmp_path / "image-guid.dmp"
    with open(path, "wb") as out:
        write_minidump(proc, out)
    assert vol_json(path, "wmi.yarascan") == []
    source = (RULES / "wmi_com_identifiers.yar").read_text().replace('scope = "non-image"', 'scope = "any"')
    rows = vol_json(path, "wmi.yarascan", "--yara-rules", source)
    assert [(row["Rule"], row["Module"], row["Type"]) for row in rows] == [
        ("WMI_Client_Locator_Login_GUID_With_WQL", "wbemprox.dll", "MEM_IMAGE")
    ]


def test_user_rules_and_clear_errors(positives, tmp_path):
    path = positives[0]
    rule = 'rule pipe { strings: $p = "wmi_ctl" ascii wide nocase condition: $p }'
    rows = vol_json(path, "wmi.yarascan", "--yara-rules", rule)
    assert (
        rows and {row["Rule"] for row in rows} == {"pipe"} and {row["Severity"] for row in rows} == {"medium"}
    )
    rule_file = tmp_path / "mine.yar"
    rule_file.write_text(rule)
    assert vol_json(path, "wmi.yarascan", "--yara-file", str(rule_file)) == rows
    broken = run_vol(path, "wmi.yarascan", "--yara-rules", "rule broken { condition: $missing }")
    assert broken.returncode == 2
    assert "wmi-forensics: error: YARA rules from --yara-rules do not compile" in broken.stderr
    missing = run_vol(path, "wmi.yarascan", "--yara-file", str(tmp_path / "nope.yar"))
    assert missing.returncode == 2 and "YARA rule file not found" in missing.stderr


def test_dump_writes_each_matching_region_once(positives, tmp_path):
    path, _, planted = positives
    output = tmp_path / "out"
    output.mkdir()
    result = run_vol(path, "wmi.yarascan", "--dump", output_dir=output)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    files = sorted(item.name for item in output.iterdir())
    assert files == sorted({row["Dumped"] for row in rows})
    item = planted[0]
    data = (
        output
        / next(
            name
            for name in files
            if name.endswith(f".{item.region_base:x}-{item.region_base + item.region_size:x}.bin")
        )
    ).read_bytes()
    assert len(data) == item.region_size
    assert data[item.start - item.region_base : item.end - item.region_base] == item.data


def test_full_image_gives_the_same_hits_as_the_minidump(tmp_path, symbol_cache):
    model = build_wmiprvse(arch="x64", build=19045, seed=0)
    plant_yara_examples(model, RULES, which="positive", only=["WMI_Named_Pipe_wmi_ctl", "WMI_Base64_WQL"])
    image = tmp_path / "image.raw"
    build_image(19041, default_processes(19041, wmiprvse=model), image)
    minidump = tmp_path / "same.dmp"
    with open(minidump, "wb") as out:
        write_minidump(model, out)
    from_image = vol_json(image, "wmi.yarascan", symbols=symbol_cache)
    from_dump = vol_json(minidump, "wmi.yarascan")
    assert from_image and {(r["Rule"], r["Address"]) for r in from_image} == {
        (r["Rule"], r["Address"]) for r in from_dump
    }
    assert {row["Process"] for row in from_image} == {"WmiPrvSE.exe"}


# --- engines, externals, progress --------------------------------------------------------------------------

ENGINES = ["yara-x", "yara-python"]
EXTERNAL_RULE = (
    'rule named_host { meta: severity = "high" strings: $p = "wmi_ctl" ascii wide nocase '
    'condition: $p and filename == "WmiPrvSE.exe" and owner_rid == 18 and elevated }'
)


def _hits(path: Path, pack: RulePack, progress=None) -> set:
    with Minidump.open(path) as dump:
        facts = facts_from_minidump(dump)
        return {
            (hit.rule.identifier, hit.rule.severity, hit.address, hit.module, tuple(hit.strings))
            for hit in scan_process(facts, pack, progress)
        }


def test_both_engines_report_the_same_hits(positives):
    path, _, planted = positives
    x_hits = _hits(path, RulePack.from_directory(engine="yara-x"))
    python_hits = _hits(path, RulePack.from_directory(engine="yara-python"))
    assert x_hits == python_hits
    assert {item.rule for item in planted} <= {hit[0] for hit in x_hits}


def test_the_default_engine_is_yara_x_and_the_environment_can_choose(monkeypatch):
    monkeypatch.delenv(ENGINE_ENV, raising=False)
    assert RulePack.from_source('rule r { condition: true }').engine == "yara-x"
    monkeypatch.setenv(ENGINE_ENV, "yara-python")
    assert engine_name() == "yara-python"
    monkeypatch.setenv(ENGINE_ENV, "libyara9")
    with pytest.raises(InputError, match="choose one of yara-x, yara-python"):
        engine_name()


def test_rules_only_yara_python_accepts_fall_back_unless_an_engine_is_forced(monkeypatch):
    legacy = 'rule legacy { strings: $a = "MZ" condition: $a at entrypoint }'
    monkeypatch.delenv(ENGINE_ENV, raising=False)
    assert RulePack.from_source(legacy).engine == "yara-python"
    with pytest.raises(InputError, match="do not compile \\(yara-x\\).*entrypoint"):
        RulePack.from_source(legacy, engine="yara-x")
    monkeypatch.setenv(ENGINE_ENV, "yara-x")
    with pytest.raises(InputError, match="do not compile \\(yara-x\\)"):
        RulePack.from_source(legacy)


def test_parse_defines_types_values():
    assert parse_defines(["filename=WmiPrvSE.exe", "owner_rid=0x12", "elevated=TRUE", "empty=", "n=-3"]) == {
        "filename": "WmiPrvSE.exe",
        "owner_rid": 18,
        "elevated": True,
        "empty": "",
        "n": -3,
    }
    assert parse_defines(["path=C:\\a=b"]) == {"path": "C:\\a=b"}
    for bad in ("noequals", "=x", "1abc=x", "a b=x"):
        with pytest.raises(InputError, match="NAME=VALUE"):
            parse_defines([bad])


@pytest.mark.parametrize("engine", ENGINES)
def test_externals_reach_both_engines(positives, engine):
    defines = parse_defines(["filename=WmiPrvSE.exe", "owner_rid=18", "elevated=true"])
    hits = _hits(positives[0], RulePack.from_source(EXTERNAL_RULE, defines, engine=engine))
    assert {hit[:2] for hit in hits} == {("named_host", "high")}
    other = dict(defines, filename="svchost.exe")
    assert _hits(positives[0], RulePack.from_source(EXTERNAL_RULE, other, engine=engine)) == set()
    with pytest.raises(InputError, match=f"do not compile \\({engine}\\)"):
        RulePack.from_source(EXTERNAL_RULE, engine=engine)


def test_vol_yara_define_option(positives, tmp_path, monkeypatch):
    monkeypatch.delenv(ENGINE_ENV, raising=False)
    rule_file = tmp_path / "external.yar"
    rule_file.write_text(EXTERNAL_RULE)
    defines = ["--yara-define", "filename=WmiPrvSE.exe", "owner_rid=18", "elevated=true"]
    rows = vol_json(positives[0], "wmi.yarascan", "--yara-file", str(rule_file), *defines)
    assert rows and {(row["Rule"], row["Severity"]) for row in rows} == {("named_host", "high")}
    missing = run_vol(positives[0], "wmi.yarascan", "--yara-file", str(rule_file))
    assert missing.returncode == 2 and "do not compile" in missing.stderr
    assert "Traceback" not in missing.stderr
    bad = run_vol(positives[0], "wmi.yarascan", "--yara-rules", EXTERNAL_RULE, "--yara-define", "1x=2")
    assert bad.returncode == 2 and "--yara-define expects NAME=VALUE" in bad.stderr


def test_progress_reaches_100_in_whole_steps(positives):
    calls = []
    _hits(positives[0], RulePack.from_directory(), lambda percent, text: calls.append((percent, text)))
    percents = [percent for percent, _ in calls]
    assert percents == sorted(set(percents)) and percents[-1] == 100.0 and len(percents) > 10
    assert all(text.startswith("YARA scan of PID ") for _, text in calls)
