"""The bundled rule pack in yara_rules/: meta, self-carried examples, false positives, planting."""

from __future__ import annotations

import importlib.util
import re
import uuid
from pathlib import Path
from typing import Dict, List

import pytest
import yara
import yara_x

from fixtures.labdump import build_wmiprvse, write_minidump
from fixtures.labdump.constants import (
    MEM_COMMIT,
    MEM_IMAGE,
    MEM_PRIVATE,
    PAGE_EXECUTE_READ,
    PAGE_READWRITE,
    PAGE_SIZE,
)
from fixtures.labdump.yara_examples import (
    EXAMPLE_OFFSET,
    ExampleSyntaxError,
    compile_rules,
    decode_example,
    plant_yara_examples,
    read_rules,
    rule_examples,
)
from tests import wmi_corpus
from wmiforensics.engine.facts import RegionFact
from wmiforensics.yarascan import RulePack
from wmiforensics.yarascan.scanner import in_scope

REPO = Path(__file__).resolve().parents[1]
RULES_DIR = REPO / "yara_rules"
REAL_DUMPS = Path(__file__).resolve().parents[1].parent / "shared/dumps/real"

SEVERITIES = {"info", "low", "medium", "high", "critical"}
SCOPES = {"non-image", "unbacked-exec", "private", "any"}
REQUIRED_META = ("description", "severity", "mitre_attack", "reference", "scope", "author")
MITRE = re.compile(r"^T\d{4}(\.\d{3})?(, T\d{4}(\.\d{3})?)*$")
EXAMPLE_KEY = re.compile(r"^example_(positive|near_miss)(_([2-9]|[1-9][0-9]+))?$")

EXPECTED_RULES = {
    "wmi_com_identifiers.yar": {
        "WMI_Client_Locator_Login_GUID_With_WQL",
        "WMI_Client_Locator_Login_GUID_With_Process_Or_Consumer",
    },
    "wmi_vtable_calls.yar": {
        "WMI_IWbemServices_Vtable_Calls_x64",
        "WMI_IWbemServices_Vtable_Calls_x86",
        "WMI_IWbemServices_Single_Call_x64_Near_Client_GUID",
        "WMI_IWbemServices_Single_Call_x86_Near_Client_GUID",
    },
    "wmi_marshalled_calls.yar": {
        "WMI_Marshalled_Session_Interface_OBJREF",
        "WMI_Marshalled_Process_Create_Object",
    },
    "wmi_event_subscriptions.yar": {
        "WMI_Event_Consumer_Suspicious_Payload",
        "WMI_Event_Subscription_Binding",
        "WMI_Event_Timer_Triggered_Consumer",
    },
    "wmi_lateral_movement.yar": {
        "WMI_Tool_Impacket_WMIExec",
        "WMI_Tool_NetExec_WMIExec",
        "WMI_Tool_Impacket_WMIPersist",
        "WMI_Tool_SharpWMI_Strings",
        "WMI_Tool_SharpWMI_Artifacts",
        "WMI_Tool_Invoke_WMIExec",
    },
    "wmi_process_creation.yar": {
        "WMI_Process_Create_Output_Redirect_To_Admin_Share",
        "WMI_Process_Create_Output_To_Temp_Then_Registry_Or_Class",
        "WMI_Process_Create_Quiet_Shell",
        "WMI_Process_Create_Tool_PowerShell_Launcher",
        "WMI_Process_Create_Hidden_Encoded_PowerShell",
        "WMI_Process_Create_Environment_Variable_Launcher",
        "WMI_Process_Create_Scheduled_Job",
        "WMI_Process_Create_Output_Staged_In_Registry",
    },
    "wmi_persistence_triggers.yar": {
        "WMI_Script_Consumer_Starts_Process_Or_Writes_Files",
        "WMI_Tool_WMIExecPro_Event_Objects",
        "WMI_Filter_Startup_Uptime_Window",
        "WMI_Filter_Frequent_System_Perf_Polling",
        "WMI_Filter_Failed_Logon_Trigger",
        "WMI_Filter_Logon_Process_Or_Timer_Trigger",
    },
    "wmi_staging_and_tampering.yar": {
        "WMI_Staging_In_Made_Up_Or_Recovery_Class",
        "WMI_Staging_Script_Puts_File_Into_Class",
        "WMI_StdRegProv_Sensitive_Key_Write",
        "WMI_StdRegProv_Registry_Write",
        "WMI_Event_Log_Cleared_Through_WMI",
        "WMI_Event_Log_Clear_Method",
        "WMI_Provider_Registration_DotNet",
        "WMI_Remote_Login_Impacket_Namespace",
    },
    "wmi_providers_and_c2.yar": {
        "WMI_Provider_Registration_Writable_Path",
        "WMI_Named_Pipe_wmi_ctl",
        "WMI_Base64_WQL",
        "WMI_Logging_Tampering",
    },
}

RULES = read_rules(RULES_DIR)
RULE_IDS = [rule.identifier for rule in RULES]
POSITIVES = rule_examples(RULES_DIR, which="positive")
NEAR_MISSES = rule_examples(RULES_DIR, which="near_miss")


@pytest.fixture(scope="module")
def pack() -> yara.Rules:
    return compile_rules(RULES_DIR)


@pytest.fixture(scope="module")
def pack_x():
    """The pack as the scanner compiles it under yara-x (the default engine)."""
    return RulePack.from_directory(RULES_DIR, engine="yara-x")


def _matches(pack: yara.Rules, data: bytes) -> List[str]:
    return sorted(match.rule for match in pack.match(data=data))


def _matches_x(pack: RulePack, data: bytes) -> List[str]:
    return sorted(info.identifier for info, _ in pack.matches(data))


# --- (a) lint --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(RULES_DIR.glob("*.yar")), ids=lambda p: p.name)
def test_every_rule_file_compiles_without_warnings(path):
    compiled = yara.compile(filepath=str(path), error_on_warning=True)
    assert {rule.identifier for rule in compiled} == EXPECTED_RULES[path.name]


def test_the_pack_has_one_file_per_theme_and_unique_rule_names():
    assert sorted(p.name for p in RULES_DIR.glob("*.yar")) == sorted(EXPECTED_RULES)
    assert len(RULE_IDS) == len(set(RULE_IDS)) == sum(len(names) for names in EXPECTED_RULES.values())
    assert {rule.file for rule in RULES} == set(EXPECTED_RULES)
    for rule in RULES:
        assert rule.identifier in EXPECTED_RULES[rule.file]


def test_the_whole_pack_compiles_as_the_scanner_compiles_it(pack):
    assert sorted(rule.identifier for rule in pack) == sorted(RULE_IDS)
    assert all(not rule.is_private and not rule.is_global for rule in pack)


def test_every_rule_file_compiles_on_yara_x_without_warnings():
    for path in sorted(RULES_DIR.glob("*.yar")):
        compiler = yara_x.Compiler()
        compiler.add_source(path.read_text(), origin=path.name)
        compiler.build()
        assert compiler.warnings() == [], path.name


@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
def test_every_rule_has_valid_meta(rule):
    meta = rule.meta
    for key in REQUIRED_META:
        assert isinstance(meta.get(key), str) and meta[key].strip(), f"{rule.identifier}: missing {key}"
    assert len(meta["description"]) >= 40
    assert meta["severity"] in SEVERITIES
    assert MITRE.match(meta["mitre_attack"]), meta["mitre_attack"]
    assert meta["reference"].startswith("https://")
    assert meta["scope"] in SCOPES
    assert meta["author"] == "wmi-forensics"
    assert "wmi" in rule.tags
    example_keys = [key for key in meta if key.startswith("example")]
    assert all(EXAMPLE_KEY.match(key) for key in example_keys), example_keys
    assert rule.examples("positive"), f"{rule.identifier}: no example_positive"
    assert rule.examples("near_miss"), f"{rule.identifier}: no example_near_miss"
    assert [key for key, _ in rule.examples("positive")][0] == "example_positive"
    assert [key for key, _ in rule.examples("near_miss")][0] == "example_near_miss"
    for _, text in rule.examples("positive") + rule.examples("near_miss"):
        assert decode_example(text)


def test_rule_files_avoid_unbounded_patterns():
    for path in RULES_DIR.glob("*.yar"):
        source = path.read_text()
        for bad in (".*", ".+", "[-]", ",}"):
            assert bad not in source, f"{path.name} contains {bad!r}"
        assert not re.search(r"\[\d+-\]", source), f"{path.name} has an unbounded hex jump"
        assert not re.search(r"for any i in \(1\.\.#", source), f"{path.name} has an uncapped hit loop"


def test_decode_example_segments():
    assert decode_example("ascii:AB") == b"AB"
    assert decode_example("wide:AB") == b"A\x00B\x00"
    assert decode_example("hex:4D 45 4f57") == b"MEOW"
    assert decode_example("zeros:3") == b"\x00\x00\x00"
    assert decode_example("zeros:0x10") == bytes(16)
    assert decode_example("ascii:a + b + zeros:2 + hex:FF") == b"a + b\x00\x00\xff"
    assert decode_example("ascii:C:\\x\\y + wide:\\") == b"C:\\x\\y\\\x00"
    assert decode_example("ascii: 1> x 2>&1 ") == b" 1> x 2>&1 "
    assert decode_example("ascii:x +hex:00") == b"x +hex:00"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "text",
        "asci:x",
        "hex:ABC",
        "hex:GG",
        "hex:",
        "zeros:0",
        "zeros:x",
        "zeros:2000000",
        "ascii:\u00e9",
        "wide:",
        "ascii:x + hex:0",
    ],
)
def test_decode_example_rejects_malformed_values(text):
    with pytest.raises(ExampleSyntaxError):
        decode_example(text)


def test_decode_example_reads_yara_escapes_as_yara_resolves_them():
    source = 'rule r { meta: e = "wide:\\\\\\\\.\\\\pipe\\\\x + hex:00 00" condition: false }'
    compiled = yara.compile(source=source)
    (rule,) = list(compiled)
    assert rule.meta["e"] == "wide:\\\\.\\pipe\\x + hex:00 00"
    assert decode_example(rule.meta["e"]) == "\\\\.\\pipe\\x".encode("utf-16-le") + b"\x00\x00"


WMI_GUIDS = {
    "CLSID_WbemLocator": "4590F811-1D3A-11D0-891F-00AA004B2E24",
    "IID_IWbemLocator": "DC12A687-737F-11CF-884D-00AA004B2E24",
    "IID_IWbemServices": "9556DC99-828C-11CF-A37E-00AA003240C7",
    "CLSID_WbemLevel1Login": "8BC3F05E-D86B-11D0-A075-00C04FB68820",
    "IID_IWbemLevel1Login": "F309AD18-D86A-11D0-A075-00C04FB68820",
}
#: Carried by every marshalled WMI object, so it must not count as a client identifier.
IID_IWBEMCLASSOBJECT = "DC12A681-737F-11CF-884D-00AA004B2E24"


@pytest.mark.parametrize("name", sorted(WMI_GUIDS))
def test_guid_rule_knows_every_wmi_guid_in_every_form(pack, name):
    text = WMI_GUIDS[name]
    query = "SELECT * FROM Win32_Process".encode("utf-16-le")
    forms = {
        "bytes": uuid.UUID(text).bytes_le,
        "ascii": f"{{{text}}}".encode(),
        "ascii lower": f"{{{text.lower()}}}".encode(),
        "wide": f"{{{text}}}".encode("utf-16-le"),
        "wide lower": f"{{{text.lower()}}}".encode("utf-16-le"),
    }
    for form, blob in forms.items():
        assert "WMI_Client_Locator_Login_GUID_With_WQL" in _matches(pack, blob + bytes(64) + query), form
        assert _matches(pack, blob + bytes(64)) == [], form
    assert _matches(pack, uuid.UUID(text).bytes_le + bytes(0x4100) + query) == []


def test_the_class_object_iid_is_not_a_client_identifier(pack):
    query = "SELECT * FROM Win32_Process".encode("utf-16-le")
    create = "Win32_Process".encode("utf-16-le") + bytes(2) + "Create".encode("utf-16-le")
    for blob in (uuid.UUID(IID_IWBEMCLASSOBJECT).bytes_le, f"{{{IID_IWBEMCLASSOBJECT}}}".encode("utf-16-le")):
        assert _matches(pack, blob + bytes(64) + query) == []
        assert _matches(pack, blob + bytes(64) + create) == []
        objref = b"MEOW" + bytes([4, 0, 0, 0]) + uuid.UUID(IID_IWBEMCLASSOBJECT).bytes_le
        assert _matches(pack, objref + bytes(64)) == []


# IWbemServices method -> vtable index (MS-WMI opnum).
METHOD_INDEX = {"put_instance": 14, "exec_query": 20, "exec_notification_query": 22, "exec_method": 24}


@pytest.mark.parametrize("method", sorted(METHOD_INDEX))
def test_vtable_strings_use_the_slot_of_each_method(method):
    source = (RULES_DIR / "wmi_vtable_calls.yar").read_text()
    source = source.split("One IWbemServices call as GCC")[0]
    x64_rule, x86_rule = source.split("rule WMI_IWbemServices_Vtable_Calls_x86")
    pattern = re.compile(r"\$" + method + r" = \{(.*?)\}", re.S)
    x64_string = pattern.search(x64_rule).group(1)
    x86_string = pattern.search(x86_rule).group(1)
    offset64, offset86 = METHOD_INDEX[method] * 8, METHOD_INDEX[method] * 4
    if offset64 < 0x80:
        call64, load64 = f"FF 50 {offset64:02X}", f"48 8B 40 {offset64:02X}"
    else:
        call64, load64 = f"FF 90 {offset64:02X} 00 00 00", f"48 8B 80 {offset64:02X} 00 00 00"
    assert call64 in x64_string and load64 in x64_string and "FF 15" in x64_string
    assert x86_string.rstrip().endswith(f"FF 50 {offset86:02X}")


# --- (b) examples ----------------------------------------------------------------------------------------


def test_example_counts():
    assert len(POSITIVES) >= len(RULES) and len(NEAR_MISSES) >= len(RULES)
    assert {example.rule for example in POSITIVES} == set(RULE_IDS)
    assert {example.rule for example in NEAR_MISSES} == set(RULE_IDS)


@pytest.mark.parametrize("example", POSITIVES, ids=[f"{e.rule}:{e.name}" for e in POSITIVES])
def test_positive_example_matches_its_rule(pack, pack_x, example):
    padded = bytes(EXAMPLE_OFFSET) + example.data + bytes(PAGE_SIZE)
    for data in (example.data, padded):
        assert example.rule in _matches(pack, data)
        assert _matches_x(pack_x, data) == _matches(pack, data)


@pytest.mark.parametrize("example", NEAR_MISSES, ids=[f"{e.rule}:{e.name}" for e in NEAR_MISSES])
def test_near_miss_example_matches_no_rule(pack, pack_x, example):
    padded = bytes(EXAMPLE_OFFSET) + example.data + bytes(PAGE_SIZE)
    for data in (example.data, padded):
        assert _matches(pack, data) == [] == _matches_x(pack_x, data)


# --- (c) false positives ---------------------------------------------------------------------------------


def _real_dump_files() -> List[Path]:
    if not REAL_DUMPS.is_dir():
        pytest.skip(f"real dumps not found at {REAL_DUMPS} (the shared/ folder beside the repo)")
    files = sorted(path for path in REAL_DUMPS.rglob("*") if path.is_file())
    if not files:
        pytest.skip(f"no files under {REAL_DUMPS}")
    return files


def test_no_rule_fires_on_real_dumps(pack):
    files = _real_dump_files()
    hits = {str(path.relative_to(REAL_DUMPS)): _matches(pack, path.read_bytes()) for path in files}
    assert len(hits) == len(files) >= 10
    assert {name: found for name, found in hits.items() if found} == {}


@pytest.mark.parametrize("arch, build", [("x64", 19045), ("x86", 22631)])
def test_no_rule_fires_on_clean_lab_dumps(pack, tmp_path, arch, build):
    proc = build_wmiprvse(arch=arch, build=build)
    path = tmp_path / f"wmiprvse-{arch}.dmp"
    with open(path, "wb") as out:
        write_minidump(proc, out)
    data = path.read_bytes()
    assert data[:4] == b"MDMP" and len(data) > 1 << 20
    assert _matches(pack, data) == []
    assert [match.rule for match in pack.match(str(path))] == []


def _windows_launchers() -> List[Path]:
    found = []
    for package in ("pip", "setuptools"):
        spec = importlib.util.find_spec(package)
        if spec and spec.origin:
            found += sorted(Path(spec.origin).parent.rglob("*.exe"))
    return found


def test_no_rule_fires_on_windows_launcher_executables(pack):
    executables = _windows_launchers()
    if not executables:
        pytest.skip("no Windows launcher executables shipped with pip/setuptools here")
    for path in executables:
        data = path.read_bytes()
        assert data[:2] == b"MZ"
        assert _matches(pack, data) == [], path.name


# --- (d) planting ----------------------------------------------------------------------------------------


class PlantedDump:
    """A planted lab dump read back with the PyPI minidump package (an independent reader)."""

    def __init__(self, path: Path) -> None:
        minidumpfile = pytest.importorskip(
            "minidump.minidumpfile", reason="needs the PyPI minidump package (0.0.24)"
        )
        self.file = minidumpfile.MinidumpFile.parse(str(path))
        self.reader = self.file.get_reader()
        self.infos = self.file.memory_info.infos

    def info(self, address: int):
        for info in self.infos:
            if info.BaseAddress <= address < info.BaseAddress + info.RegionSize:
                return info
        raise KeyError(hex(address))

    def read(self, address: int, length: int) -> bytes:
        return self.reader.read(address, length)


def _plant_and_write(tmp_path: Path, which: str, arch: str = "x64", build: int = 19045):
    proc = build_wmiprvse(arch=arch, build=build)
    regions_before = len(proc.regions)
    planted = plant_yara_examples(proc, RULES_DIR, which=which)
    assert len(proc.regions) == regions_before + len(planted)
    path = tmp_path / f"planted-{which}-{arch}.dmp"
    with open(path, "wb") as out:
        write_minidump(proc, out)
    return proc, planted, PlantedDump(path)


def _expected_memory(scope: str) -> Dict[str, int]:
    if scope == "unbacked-exec":
        return {"protect": PAGE_EXECUTE_READ, "allocation_protect": PAGE_READWRITE}
    return {"protect": PAGE_READWRITE, "allocation_protect": PAGE_READWRITE}


def _check_records(planted, dump: PlantedDump, examples) -> None:
    assert [(p.rule, p.example) for p in planted] == [(e.rule, e.name) for e in examples]
    spans = sorted((p.region_base, p.region_end) for p in planted)
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert end < start, "two examples share or touch a region"
    for record, example in zip(planted, examples):
        assert record.data == example.data and record.scope == example.scope
        assert record.start == record.region_base + EXAMPLE_OFFSET
        assert record.end == record.start + len(example.data)
        assert record.region_base % 0x10000 == 0 and record.region_size % PAGE_SIZE == 0
        assert record.region_end >= record.end
        expected = _expected_memory(record.scope)
        assert (record.protect, record.allocation_protect, record.memory_type) == (
            expected["protect"],
            expected["allocation_protect"],
            MEM_PRIVATE,
        )
        info = dump.info(record.start)
        assert (info.BaseAddress, info.RegionSize, info.AllocationBase) == (
            record.region_base,
            record.region_size,
            record.region_base,
        )
        assert info.State.value == MEM_COMMIT
        assert info.Type.value == MEM_PRIVATE
        assert info.Protect.value == expected["protect"]
        assert info.AllocationProtect == expected["allocation_protect"]
        assert dump.read(record.start, len(example.data)) == example.data
        assert dump.read(record.region_base, EXAMPLE_OFFSET) == bytes(EXAMPLE_OFFSET)
        assert dump.read(record.end, record.region_end - record.end) == bytes(record.region_end - record.end)


def test_planted_positive_examples_sit_where_the_records_say(tmp_path, pack):
    proc, planted, dump = _plant_and_write(tmp_path, "positive")
    _check_records(planted, dump, POSITIVES)
    assert {p.scope for p in planted} == {"non-image", "unbacked-exec", "any"}
    for record in planted:
        region = dump.read(record.region_base, record.region_size)
        assert record.rule in _matches(pack, region), f"{record.rule}:{record.example}"


def test_planted_near_miss_examples_stay_silent_region_by_region(tmp_path, pack):
    proc, planted, dump = _plant_and_write(tmp_path, "near_miss", arch="x86", build=22631)
    _check_records(planted, dump, NEAR_MISSES)
    for record in planted:
        assert _matches(pack, dump.read(record.region_base, record.region_size)) == []


def test_planting_only_named_rules_is_deterministic():
    only = ["WMI_IWbemServices_Vtable_Calls_x64", "WMI_Named_Pipe_wmi_ctl"]
    first = plant_yara_examples(build_wmiprvse(), RULES_DIR, only=only)
    second = plant_yara_examples(build_wmiprvse(), RULES_DIR, only=only)
    assert [p.to_dict() for p in first] == [p.to_dict() for p in second]
    assert {p.rule for p in first} == set(only)
    exec_records = [p for p in first if p.rule == "WMI_IWbemServices_Vtable_Calls_x64"]
    pipe_records = [p for p in first if p.rule == "WMI_Named_Pipe_wmi_ctl"]
    assert exec_records and all(p.to_dict()["protect"] == "0x20" for p in exec_records)
    assert pipe_records and all(p.to_dict()["protect"] == "0x4" for p in pipe_records)
    with pytest.raises(KeyError):
        plant_yara_examples(build_wmiprvse(), RULES_DIR, only=["No_Such_Rule"])
    with pytest.raises(ValueError):
        plant_yara_examples(build_wmiprvse(), RULES_DIR, which="both")


# --- (e) corpus: footprints of the public tools and benign WMI memory ------------------------------------

HIGH = {"high", "critical"}


def _region(memory: str, size: int) -> RegionFact:
    kind = MEM_IMAGE if memory == wmi_corpus.IMAGE else MEM_PRIVATE
    return RegionFact(0x10000, size, MEM_COMMIT, PAGE_READWRITE, 0x10000, PAGE_READWRITE, kind)


def _corpus_hits(pack: RulePack, sample: wmi_corpus.Sample) -> Dict[str, str]:
    """``{rule: severity}`` of the in-scope hits on a sample placed in the memory it lives in."""
    region = _region(sample.memory, len(sample.data))
    padded = bytes(EXAMPLE_OFFSET) + sample.data + bytes(EXAMPLE_OFFSET)
    hits = pack.matches(padded)
    return {info.identifier: info.severity for info, _ in hits if in_scope(info.scope, region)}


@pytest.fixture(scope="module", params=["yara-x", "yara-python"])
def engine_pack(request) -> RulePack:
    return RulePack.from_directory(RULES_DIR, engine=request.param)


def coverage_table(pack: RulePack) -> str:
    """The README's coverage table: per family, footprints detected and detected at high severity."""
    families: Dict[str, List[wmi_corpus.Sample]] = {}
    for sample in wmi_corpus.FOOTPRINTS:
        families.setdefault(sample.family, []).append(sample)
    lines = ["| family | footprints | detected | at high severity |", "| --- | --- | --- | --- |"]
    for family, samples in families.items():
        hits = [_corpus_hits(pack, sample) for sample in samples]
        detected = sum(1 for found in hits if found)
        high = sum(1 for found in hits if HIGH & set(found.values()))
        lines.append(f"| {family} | {len(samples)} | {detected} | {high} |")
    benign = [_corpus_hits(pack, sample) for sample in wmi_corpus.BENIGN]
    reported = sum(1 for found in benign if found)
    high = sum(1 for found in benign if HIGH & set(found.values()))
    lines.append(f"| benign WMI memory (none may be high) | {len(benign)} | {reported} | {high} |")
    return "\n".join(lines)


@pytest.mark.parametrize(
    "sample", wmi_corpus.FOOTPRINTS, ids=[f"{s.family}:{s.tool}" for s in wmi_corpus.FOOTPRINTS]
)
def test_every_tool_footprint_is_detected(engine_pack, sample):
    repository, _, path = sample.source.partition(" ")
    assert repository.count("/") == 1 and path, "provenance names repository and path"
    assert _corpus_hits(engine_pack, sample), f"{sample.tool} ({sample.source}) not detected"


def test_every_family_is_detected_and_most_at_high_severity(pack_x):
    by_family: Dict[str, List[Dict[str, str]]] = {}
    for sample in wmi_corpus.FOOTPRINTS:
        by_family.setdefault(sample.family, []).append(_corpus_hits(pack_x, sample))
    assert set(by_family) == {
        "process creation", "subscription payload", "persistence filter", "staging", "registry",
        "event-log clearing", "remote login",
    }
    for family, hits in by_family.items():
        assert all(hits), family
    high = sum(1 for hits in by_family.values() for found in hits if HIGH & set(found.values()))
    assert high * 4 >= 3 * len(wmi_corpus.FOOTPRINTS)


@pytest.mark.parametrize("sample", wmi_corpus.BENIGN, ids=[f"{s.family}:{s.tool}" for s in wmi_corpus.BENIGN])
def test_benign_wmi_memory_has_no_high_severity_hit(engine_pack, sample):
    found = _corpus_hits(engine_pack, sample)
    assert not HIGH & set(found.values()), found


def test_the_readme_states_the_measured_coverage(pack_x):
    table = coverage_table(pack_x)
    assert table in (RULES_DIR / "README.md").read_text(), "\n" + table
    summary = (REPO / "README.md").read_text()
    assert all(line in summary for line in table.splitlines()), "\n" + table


# --- (f) compiled WMI client code ----------------------------------------------------------------------

WMI_CLIENTS = REPO / "tests" / "data" / "wmi_clients"
CLIENT_OBJECTS = sorted(WMI_CLIENTS.glob("*.o"))


def test_the_compiled_clients_cover_both_architectures_three_levels_and_both_guid_forms():
    names = {path.name for path in CLIENT_OBJECTS}
    assert names == {
        f"wmi_client_{guid}.{arch}.{level}.o"
        for guid in ("text", "imm")
        for arch in ("x86_64", "i686")
        for level in ("O0", "O2", "Os")
    }
    assert "g++" in (WMI_CLIENTS / "COMPILERS.txt").read_text()
    for path in CLIENT_OBJECTS:
        data = path.read_bytes()
        assert data[:2] == (b"\x64\x86" if ".x86_64." in path.name else b"\x4c\x01"), "COFF machine"


@pytest.mark.parametrize("path", CLIENT_OBJECTS, ids=lambda p: p.name)
def test_single_call_rules_find_compiled_wmi_clients_on_both_engines(engine_pack, path):
    expected = "x64" if ".x86_64." in path.name else "x86"
    found = {info.identifier for info, _ in engine_pack.matches(path.read_bytes())}
    assert f"WMI_IWbemServices_Single_Call_{expected}_Near_Client_GUID" in found


def test_a_compiled_client_without_its_guid_evidence_is_not_reported(pack):
    for path in CLIENT_OBJECTS:
        data = bytearray(path.read_bytes())
        for text in ("4590F811-1D3A-11D0-891F-00AA004B2E24", "DC12A687-737F-11CF-884D-00AA004B2E24"):
            for encoded in (text.encode(), text.encode("utf-16-le")):
                data = data.replace(encoded, bytes(len(encoded)))
        for marker in (bytes.fromhex("11F89045"), bytes.fromhex("87A612DC")):
            data = data.replace(marker, bytes(4))
        assert not [m for m in _matches(pack, bytes(data)) if "Single_Call" in m], path.name
