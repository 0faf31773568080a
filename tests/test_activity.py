"""wmi.activity: carving and classifying WMI objects and request bodies in process memory."""

from __future__ import annotations

import functools
import json
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures.labdump import wmiactivity as planting
from fixtures.labdump import wmiobjects as w
from fixtures.labdump.wmiactivity import SEVERITIES, apply_activity
from fixtures.labdump.wmiprvse import build_wmiprvse
from fixtures.labdump.writer import write_minidump
from tests import impacket_wmi as imp
from tests.conftest import REAL_DUMPS, REPO, run_vol
from tests.test_real_dumps import WINDOWS
from wmiforensics.activity import carve, classify, process_chunks
from wmiforensics.backends.minidump import facts_from_minidump
from wmiforensics.engine import Confidence, Severity
from wmiforensics.minidump import Minidump
from wmiforensics.vol.activity import analyse


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    proc = build_wmiprvse()
    expected = apply_activity(proc, "wmi_all")
    path = tmp_path_factory.mktemp("activity") / "wmi_all.dmp"
    with open(path, "wb") as out:
        write_minidump(proc, out)
    return path, expected


def _by_address(activities):
    table = {}
    for activity in activities:
        table.setdefault((activity.address, activity.form), activity)
    return table


def _check(found, expected):
    for item in expected:
        activity = found.get((item.address, item.form))
        assert activity is not None, f"{item.class_name} {item.operation} at {item.address:#x} not found"
        assert activity.class_name == item.class_name, item.detail
        assert activity.operation == item.operation
        assert activity.kind == item.kind, (item.operation, activity.reason)
        assert activity.severity.name.lower() == item.severity, (item.operation, activity.reason)
        for name, value in item.values.items():
            assert activity.properties.get(name) == value, (item.operation, name)
        if item.form == "string":
            assert activity.detail["encoding"] == (item.detail or "UTF-16LE"), item.operation
            assert "without its object or request" in activity.reason


def test_every_planted_item_is_recovered_and_classified(lab):
    path, expected = lab
    activities = analyse(facts_from_minidump(Minidump.open(path)))
    found = _by_address(activities)
    _check(found, expected)
    planted = {(item.address, item.form) for item in expected}
    assert all(key in planted for key in found), "nothing but the planted items is reported"
    assert {item.severity for item in expected} == set(SEVERITIES)


def test_small_overlapping_chunks_give_the_same_items(lab):
    path, _ = lab
    facts = facts_from_minidump(Minidump.open(path))
    whole = [(a.address, a.form, a.kind) for a in classify(carve(process_chunks(facts), facts.read))]
    # 4 KiB chunks with 1 KiB overlap and no way to read past a chunk: items cut by a boundary are
    # found whole in the overlapping chunk, or read in full from the chunk they start in.
    small = [
        (a.address, a.form, a.kind)
        for a in classify(carve(process_chunks(facts, chunk=4096, overlap=1024), facts.read))
    ]
    assert sorted(whole) == sorted(small)


def _impacket_exec_method(orpcthis, command: str):
    """impacket's IWbemServices::ExecMethod body for wmiexec's Win32_Process.Create of ``command``."""
    from impacket.dcerpc.v5.dcom import wmi
    from impacket.dcerpc.v5.dtypes import NULL

    in_params = imp.in_params(w.win32_process_class(), "Create", command, "C:\\", None)
    method = wmi.IWbemServices_ExecMethod()
    method["ORPCthis"] = orpcthis
    method["strObjectPath"]["asData"] = "Win32_Process"
    method["strMethodName"]["asData"] = "Create"
    method["lFlags"], method["pCtx"] = 0, NULL
    method["pInParams"]["ulCntData"] = len(in_params)
    method["pInParams"]["abData"] = list(in_params)
    method.fields["ppCallResult"] = NULL
    method.fields["ppOutParams"].fields["Data"] = NULL
    return method


def _impacket_exec_query(orpcthis, query_text: str):
    """impacket's IWbemServices::ExecQuery body for a WQL query."""
    from impacket.dcerpc.v5.dcom import wmi
    from impacket.dcerpc.v5.dtypes import NULL

    query = wmi.IWbemServices_ExecQuery()
    query["ORPCthis"] = orpcthis
    query["strQueryLanguage"]["asData"] = "WQL"
    query["strQuery"]["asData"] = query_text
    query["lFlags"], query["pCtx"] = 0x30, NULL
    return query


def test_impacket_request_bodies_are_recognised():
    """The NDR bodies impacket sends for ExecMethod (wmiexec) and ExecQuery, with ORPCTHIS."""
    from impacket.dcerpc.v5.dcomrt import ORPCTHIS
    from impacket.dcerpc.v5.dtypes import NULL

    def orpcthis():
        header = ORPCTHIS()
        header["version"]["MajorVersion"], header["version"]["MinorVersion"] = 5, 7
        header["flags"], header["cid"], header["extensions"] = 0, b"\x11" * 16, NULL
        return header

    command = "cmd.exe /Q /c ipconfig 1> \\\\127.0.0.1\\ADMIN$\\__1700000001.25 2>&1"
    method = _impacket_exec_method(orpcthis(), command)
    query = _impacket_exec_query(orpcthis(), "SELECT * FROM AntiVirusProduct")
    memory = b"\xcc" * 100 + method.getData() + b"\0" * 52 + query.getData() + b"\0" * 64
    found = classify(carve([(0x10000, memory)]))
    by_operation = {a.operation: a for a in found}
    create = by_operation["Win32_Process.Create"]
    assert create.form == "request" and create.address == 0x10000 + 100
    assert create.properties["CommandLine"] == command and create.properties["CurrentDirectory"] == "C:\\"
    assert create.kind == "process_create" and create.severity == Severity.CRITICAL
    assert "wmiexec" in create.reason
    recon = by_operation["ExecQuery"]
    assert recon.properties["Query"] == "SELECT * FROM AntiVirusProduct" and recon.kind == "reconnaissance"
    assert len(found) == 2, "the in-parameters inside the request are not reported twice"


def _orpcthis_with_extensions(sizes):
    """impacket's ORPCTHIS with an ORPC_EXTENT_ARRAY ([MS-DCOM] 2.2.13.2): one extent per size, the
    array padded to an even count with a NULL pointer as the spec requires."""
    from impacket.dcerpc.v5.dcomrt import ORPC_EXTENT, ORPC_EXTENT_ARRAY, ORPCTHIS, PORPC_EXTENT
    from impacket.dcerpc.v5.dtypes import NULL
    from impacket.uuid import string_to_bin

    header = ORPCTHIS()
    header["version"]["MajorVersion"], header["version"]["MinorVersion"] = 5, 7
    header["flags"], header["cid"] = 0, b"\x11" * 16
    pointers = []
    for index, size in enumerate(sizes):
        extent = ORPC_EXTENT()
        extent["id"] = string_to_bin(f"f1f19680-4d2a-11ce-a66a-0020af6e72f{index}")
        extent["size"] = size
        extent["data"] = list(bytes(range(size)) + b"\0" * (-size % 8))
        pointer = PORPC_EXTENT()
        pointer["Data"] = extent
        pointers.append(pointer)
    array = ORPC_EXTENT_ARRAY()
    array["size"], array["reserved"] = len(sizes), 0
    array["extent"] = pointers + [NULL] * (len(sizes) % 2)
    header["extensions"] = array
    return header


@pytest.mark.parametrize("sizes", [[20], [16, 36]])
def test_request_bodies_with_orpcthis_extensions_are_recognised(sizes):
    """ORPCTHIS carrying extensions, as impacket's structures encode them, before ExecQuery and
    ExecMethod arguments: the calls are found and the extents recorded."""

    query = _impacket_exec_query(_orpcthis_with_extensions(sizes), "SELECT * FROM Win32_Process")
    command = planting.WMIEXEC_STRING
    method = _impacket_exec_method(_orpcthis_with_extensions(sizes), command)
    memory = b"\0" * 32 + query.getData() + b"\0" * 32 + method.getData() + b"\0" * 32
    found = classify(carve([(0x3000, memory)]))
    assert [(a.form, a.operation, a.kind) for a in found] == [
        ("request", "ExecQuery", "reconnaissance"),
        ("request", "Win32_Process.Create", "process_create"),
    ]
    assert found[1].properties["CommandLine"] == command and found[1].address == 0x3000 + 64 + len(
        query.getData()
    )
    for activity in found:
        assert activity.detail["orpc_extensions"] == [
            {"id": f"f1f19680-4d2a-11ce-a66a-0020af6e72f{index}", "size": size}
            for index, size in enumerate(sizes)
        ]


def test_orpcthis_extensions_out_of_bounds_are_refused():
    """Extent counts and sizes past the limits or the bytes: no request, no exception."""
    from wmiforensics.activity.requests import MAX_EXTENTS, parse_request

    body = planting.exec_query("SELECT * FROM Win32_Service")
    fixed = bytearray(body[:32])
    struct.pack_into("<I", fixed, 28, 0x20000)  # the extensions pointer is set
    for size, conformance in ((MAX_EXTENTS + 1, MAX_EXTENTS + 2), (2, 3), (1 << 31, 0)):
        array = struct.pack("<5I", size, 0, 0x20004, conformance, 0x20008) + b"\0" * 64
        assert parse_request(bytes(fixed) + array + body[32:], 0, 0x1000) is None
    extent = struct.pack("<4I", 1, 0, 0x20004, 2) + struct.pack("<2I", 0x20008, 0)
    too_big = extent + struct.pack("<I", 0x7FFFFFF8) + b"\x11" * 16 + struct.pack("<I", 0x7FFFFFF0)
    assert parse_request(bytes(fixed) + too_big + body[32:], 0, 0x1000) is None
    assert parse_request(bytes(fixed) + extent[:10], 0, 0x1000) is None


def test_undecodable_unit_is_reported_with_its_reason():
    unit = bytearray(w.encoding_unit(w.instance_block(w.EVENT_FILTER, {"Name": "x"}, server=None)))
    struct.pack_into("<I", unit, 9 + 13, 0x7FFFFFFF)  # derivation list length
    (item,) = classify(carve([(0x5000, bytes(unit))]))
    assert item.kind == "undecodable" and item.severity == Severity.INFO
    assert "derivation list" in item.reason


WINDOWS_REAL = sorted(WINDOWS)


def test_real_dumps_stay_quiet():
    """Objects, requests and strings: nothing above low in any real dump that opens, including the
    ones from other platforms (their bytes are memory too)."""
    if not REAL_DUMPS.exists():
        pytest.skip("real dumps not found")
    from tests.test_real_dumps import FOREIGN

    scanned = 0
    for relative in WINDOWS_REAL + sorted(FOREIGN):
        facts = facts_from_minidump(Minidump.open(REAL_DUMPS / relative))
        loud = [a for a in analyse(facts) if a.severity > Severity.LOW]
        assert not loud, (relative, [(a.kind, a.reason) for a in loud])
        scanned += sum(len(data) for _, data in process_chunks(facts))
    assert scanned > 1 << 20, "the real dumps' bytes were carved"


def test_plugin_rows_renderers_and_dump(lab, tmp_path):
    path, expected = lab
    result = run_vol(path, "wmi.activity", "--dump", output_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert rows and all(row["Severity"] != "info" for row in rows)
    critical = [row for row in rows if row["Severity"] == "critical"]
    assert {row["Kind"] for row in critical} == {"process_create", "subscription"}
    create = next(row for row in rows if row["Operation"] == "Win32_Process.Create")
    assert create["Module"] == "unbacked" and create["Type"] == "MEM_PRIVATE"
    assert create["Protection"] == "PAGE_READWRITE"
    detail = json.loads(create["Properties"])
    assert detail["properties"]["CommandLine"].startswith("cmd.exe /Q /c cd \\ 1> \\\\127.0.0.1\\ADMIN$")
    consumer = next(row for row in rows if row["WmiClass"] == "ActiveScriptEventConsumer")
    (script_file,) = [name for name in consumer["Dumped"].split(", ") if name.endswith("ScriptText.txt")]
    script = next(
        item.values["ScriptText"] for item in expected if item.class_name == "ActiveScriptEventConsumer"
    )
    assert (tmp_path / script_file).read_bytes() == script.encode()
    # strings of other scripts: JSON keeps the exact value, text shows the characters
    non_latin = next(row for row in rows if planting.NON_LATIN_COMMAND in (row["Key"] or ""))
    assert json.loads(non_latin["Properties"])["properties"]["CommandLine"] == planting.NON_LATIN_COMMAND
    for renderer in ("csv", "quick"):  # json above
        other = run_vol(path, "wmi.activity", renderer=renderer)
        assert other.returncode == 0 and "Win32_Process.Create" in other.stdout, renderer
        shown = other.stdout.replace("\\\\", "\\")  # csv doubles backslashes
        assert "C:\\Users\\Дмитрий\\AppData" in shown and "José" in shown and "文档" in shown, renderer


def test_plugin_on_real_dumps_reports_nothing_above_low():
    for relative in ("rust-minidump/invalid-parameter.dmp",):
        path = REAL_DUMPS / relative
        if not path.exists():
            pytest.skip("real dumps not found")
        result = run_vol(path, "wmi.activity", "--min-severity", "info")
        assert result.returncode == 0, result.stderr
        assert all(row["Severity"] in ("info", "low") for row in json.loads(result.stdout))


def test_full_image_gives_what_the_minidump_gives(tmp_path, symbol_cache):
    """The same planted WmiPrvSE model in a synthetic full image (build 19041), read through the
    kernel's view of the process and found by the default process selection."""
    from fixtures.winimage import build_image, default_processes

    model = build_wmiprvse()
    expected = apply_activity(model, "wmi_all")  # objects, requests, packets and strings
    image = tmp_path / "image.raw"
    build_image(19041, default_processes(19041, wmiprvse=model), image)
    result = run_vol(image, "wmi.activity", "--min-severity", "info", symbols=symbol_cache)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert {row["PID"] for row in rows} == {model.process_id}
    found = {(int(row["Address"]), row["Form"]): row for row in rows}
    for item in expected:
        row = found[(item.address, item.form)]
        assert (row["WmiClass"], row["Operation"], row["Kind"], row["Severity"]) == (
            item.class_name,
            item.operation,
            item.kind,
            item.severity,
        )
        values = json.loads(row["Properties"])["properties"]
        assert all(values.get(name) == value for name, value in item.values.items()), item.operation
    assert len(rows) == len(expected)


def test_memory_full_of_anchors_stays_bounded():
    """300 KiB of encoding-unit headers each claiming 16 MiB, and of ORPCTHIS headers: every anchor is
    tried once, reads past the chunk are capped, and the run ends quickly with no traceback."""
    import time

    header = b"\x78\x56\x34\x12" + struct.pack("<I", 16 << 20) + b"\x02"
    memory = (header + b"\x05\x00\x07\x00" + b"\0" * 7) * (1 << 14)
    reads = []

    def read(address, length):
        reads.append(length)
        return memory[address - 0x1000 :][:length]

    started = time.perf_counter()
    found = classify(carve([(0x1000, memory)], read))
    assert time.perf_counter() - started < 30
    assert sum(reads) <= max(len(memory), 16 << 20)
    assert all(item.kind == "undecodable" for item in found)


def test_anchor_floods_past_the_scanner_cap_lose_no_object():
    """More encoding-unit signatures than YARA-X keeps for a pattern, then a real object: the binary
    anchors fall back to ``bytes.find`` and the object is still decoded."""
    from wmiforensics.activity.anchors import MAX_HITS, find_anchors

    unit = w.encoding_unit(w.instance_block(w.PROCESS_CREATE_IN, {"CommandLine": "cmd /c x"}, server=None))
    memory = b"\x78\x56\x34\x12" * (MAX_HITS + 10) + b"\0" * 16 + unit
    assert len(find_anchors(memory).unit) == MAX_HITS + 11
    found = classify(carve([(0x1000, memory)]))
    assert [(a.address, a.properties.get("CommandLine")) for a in found] == [
        (0x1000 + len(memory) - len(unit), "cmd /c x")
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pieces=st.lists(
        st.one_of(
            st.binary(max_size=64),
            st.sampled_from(
                [
                    b"\x78\x56\x34\x12",
                    b"\x05\x00\x07\x00",
                    b"MEOW",
                    b"\xff" * 8,
                    "SELECT * FROM Win32_".encode("utf-16-le"),
                    "\\\\.\\root\\".encode("utf-16-le"),
                    b"\0\0",
                ]
            ),
            st.integers(0, 3),
        ),
        max_size=40,
    )
)
def test_fuzz_carver_on_mixed_memory(pieces):
    """Valid units, request bodies and strings cut and mixed with junk and anchors: one pass, no
    exception."""
    seeds = _fuzz_seeds()
    memory = b"".join(seeds[p][: 40 + p * 97] if isinstance(p, int) else p for p in pieces)
    for item in classify(carve([(0x7000, memory), (0x7000 + len(memory) // 2, memory[len(memory) // 2 :])])):
        item.key_text()


@functools.lru_cache(maxsize=1)
def _fuzz_seeds():
    from fixtures.labdump import wmiactivity as lab

    block = w.instance_block(w.PROCESS_CREATE_IN, {"CommandLine": "cmd /c x"}, server=None)
    return [
        w.encoding_unit(block),
        lab.exec_method("Win32_Process", "Create", block),
        lab.exec_query("SELECT * FROM Win32_Service"),
        lab.put_instance(w.instance_block(w.EVENT_FILTER, {"Name": "f", "Query": "q"})),
        _bstr(lab.WMIEXEC_STRING),
    ]


def test_readme_worked_example_is_true(tmp_path, monkeypatch):
    """The README's wmi.activity example, rebuilt with its own commands, prints what it shows."""
    from fixtures.labdump.__main__ import main as labdump

    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("### `wmi.activity`") : readme.index("### ETW in kernel memory")]
    start = section.index("```console\n") + len("```console\n")
    example = section[start : section.index("```", start)]
    assert "python3 -m fixtures.labdump --wmi-activity wmi_example -o wmi.dmp" in example
    dump = tmp_path / "wmi.dmp"
    assert labdump(["--wmi-activity", "wmi_example", "-o", str(dump)]) == 0
    result = run_vol(dump, "wmi.activity", renderer="quick")
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()[2:] if line.strip()]
    table = ["\t".join(cells[i - 1] for i in (3, 4, 6, 7, 14, 15)) for cells in rows if cells[0][:1] != "*"]
    shown = example.split("\n$ ")
    assert "| grep -v '^\\*' | cut -f3,4,6,7,14,15" in shown[1].splitlines()[0]
    assert shown[1].splitlines()[1:] == table
    monkeypatch.setenv("WMI_FORENSICS_TEXT_WIDTH", "0")  # the second command prints rows whole
    result = run_vol(dump, "wmi.activity", renderer="quick")
    lines = [line.split("\t") for line in result.stdout.splitlines()[2:] if line.strip()]
    reasons = [cells[16] for cells in lines]
    assert shown[2].startswith("WMI_FORENSICS_TEXT_WIDTH=0 vol ")
    assert shown[2].splitlines()[1:] == [reasons[3], reasons[11]]  # sed -n "7p;15p"


def _impacket_noclass(objref: bytes) -> bytes:
    """[MS-WMIO] 2.2.3 EncodingUnitInstanceNoClass laid out by impacket's own structures: its
    ObjectFlags, Decoration and InstanceType with the CurrentClass left out (as impacket itself does
    to compute the instance's EncodingLength)."""
    from impacket.dcerpc.v5.dcom import wmi
    from impacket.dcerpc.v5.dcomrt import OBJREF_CUSTOM

    block = wmi.ENCODING_UNIT(OBJREF_CUSTOM(objref)["pObjectData"])["ObjectBlock"]
    instance = block["InstanceType"]
    instance["CurrentClass"] = b""
    return bytes([block["ObjectFlags"]]) + block["Decoration"].getData() + instance.getData()


def test_impacket_object_array_results_are_decoded():
    """An [MS-WMI] ObjectArray built with impacket's structures (IWbemWCOSmartEnum::Next results):
    a class, an impacket-encoded __EventFilter instance, a second filter without its class part
    (2.2.14.4, same classID: decoded against the first one's class) and one whose classID matches
    no instance in the packet (reported with that reason)."""
    from impacket.dcerpc.v5.dcom import wmi
    from impacket.dcerpc.v5.dcomrt import OBJREF_CUSTOM

    first = {
        "Name": "backup",
        "Query": "SELECT * FROM __InstanceCreationEvent WITHIN 10",
        "QueryLanguage": "WQL",
    }
    second = {
        "Name": "LogonWatch",
        "Query": "SELECT * FROM __InstanceCreationEvent WITHIN 5 WHERE TargetInstance ISA "
        "'Win32_LogonSession'",
        "QueryLanguage": "WQL",
        "EventNamespace": "root\\cimv2",
    }
    bodies = []
    klass = wmi.WBEMOBJECT_CLASS()
    klass["ObjectData"] = w.class_block(w.WIN32_ENVIRONMENT)
    klass["dwSizeOfData"] = len(klass["ObjectData"])
    bodies.append((1, klass.getData()))
    instance = wmi.WBEMOBJECT_INSTANCE()
    instance["classID"] = b"\x42" * 16
    instance["ObjectData"] = OBJREF_CUSTOM(imp.put_instance(w.EVENT_FILTER, first))["pObjectData"][8:]
    instance["dwSizeOfData"] = len(instance["ObjectData"])
    bodies.append((2, instance.getData()))
    for class_id in (b"\x42" * 16, b"\x43" * 16):
        noclass = wmi.WBEMOBJECT_INSTANCE_NOCLASS()
        noclass["classID"] = class_id
        noclass["ObjectData"] = _impacket_noclass(imp.put_instance(w.EVENT_FILTER, second))
        noclass["dwSizeOfData"] = len(noclass["ObjectData"])
        bodies.append((3, noclass.getData()))
    objects = b""
    for kind, body in bodies:
        packet = wmi.WBEM_DATAPACKET_OBJECT()
        packet["bObjectType"], packet["Object"], packet["dwSizeOfData"] = kind, body, len(body)
        objects += packet.getData()
    array = wmi.ObjectArray()
    array["dwDataSize1"], array["dwNumObjects"], array["wbemObjects"] = len(objects) + 20, 4, objects
    array["dwDataSize2"], array["dwDataSize3"] = len(objects) + 12, len(objects)
    memory = b"\0" * 64 + array.getData() + b"\0" * 64
    found = classify(carve([(0x9000, memory)]))
    assert [(a.form, a.operation, a.class_name, a.kind) for a in found] == [
        ("result", "result class", "Win32_Environment", "class"),
        ("result", "result instance", "__EventFilter", "subscription_filter"),
        ("result", "result instance", "__EventFilter", "subscription_filter"),
        ("result", "-", "-", "undecodable"),
    ]
    assert all(found[1].properties[name] == value for name, value in first.items())
    assert all(found[2].properties[name] == value for name, value in second.items())
    assert found[2].namespace == "ROOT\\subscription" and "logon" in found[2].reason
    assert "no earlier instance" in found[3].reason and "43434343-4343" in found[3].reason


# --- WMI strings ---------------------------------------------------------------------------------------


_utf16z, _bstr = planting.utf16z, planting.bstr_copy

STRING_SHAPES = (
    # text, operation, kind, severity, class, key property
    (planting.WMIEXEC_STRING, "command line", "process_create", "critical", "-", "CommandLine"),
    (
        "SELECT * FROM __InstanceModificationEvent WITHIN 60 WHERE TargetInstance ISA "
        "'Win32_PerfFormattedData_PerfOS_System' AND TargetInstance.SystemUpTime >= 240",
        "WQL query",
        "event_query",
        "medium",
        "-",
        "Query",
    ),
    (
        "select * from Win32_Process where Name='lsass.exe'",
        "WQL query",
        "reconnaissance",
        "low",
        "-",
        "Query",
    ),
    (
        '\\\\.\\root\\subscription:__EventFilter.Name="EF_Updater"',
        "object path",
        "subscription_filter",
        "medium",
        "__EventFilter",
        "Name",
    ),
    ('Win32_Process.Handle="5120"', "object path", "object", "info", "Win32_Process", "Handle"),
    ("//./root/cimv2", "namespace path", "namespace", "info", "-", None),
    ("\\\\DC01\\root\\subscription", "namespace path", "namespace", "low", "-", None),
    (planting.ENCODED_PS, "command line", "process_create", "critical", "-", "CommandLine"),
    (
        'Set svc = GetObject("winmgmts:\\\\.\\root\\cimv2")\r\n'
        'For Each p In svc.ExecQuery("SELECT * FROM Win32_Process")',
        "script",
        "script",
        "low",
        "-",
        "ScriptText",
    ),
    (
        'Set s = CreateObject("WScript.Shell")\r\n'
        's.Run "cmd.exe /Q /c whoami > C:\\Windows\\Temp\\o.txt 2>&1", 0',
        "script",
        "process_create",
        "critical",
        "-",
        "ScriptText",
    ),
    (
        "SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\WDigest",
        "registry key",
        "registry_read",
        "low",
        "-",
        "sSubKeyName",
    ),
)


@pytest.mark.parametrize("odd", [False, True])
def test_every_string_shape_is_recovered_as_a_string(odd):
    """Each shape, as a BSTR and as plain UTF-16LE, at even and odd addresses, between junk."""
    junk = b"\x5c\x11\x00\x00\xfe\xca"
    memory, where = b"\x01" * (33 if odd else 32), []
    for text, *_rest in STRING_SHAPES:
        for as_bstr in (True, False):
            memory += junk
            where.append((len(memory) + (4 if as_bstr else 0), text, as_bstr))
            memory += _bstr(text) if as_bstr else _utf16z(text)
    found = {a.address: a for a in classify(carve([(0x20000, memory + b"\0" * 8)]))}
    assert len(found) == len(where), sorted((a.operation, a.properties.get("Text")) for a in found.values())
    shapes = {text: shape for text, *shape in STRING_SHAPES}
    for offset, text, as_bstr in where:
        activity = found[0x20000 + offset]
        operation, kind, severity, class_name, key = shapes[text]
        assert (activity.form, activity.operation, activity.kind) == ("string", operation, kind), text
        assert (activity.severity.name.lower(), activity.class_name) == (severity, class_name), text
        assert activity.detail["encoding"] == ("BSTR" if as_bstr else "UTF-16LE")
        assert activity.properties["Text"] == text and activity.size == 2 * len(text) + 2
        if key and key in ("CommandLine", "Query", "sSubKeyName", "ScriptText"):
            assert activity.properties[key] == text
        assert activity.confidence < Confidence.HIGH, "a string alone is never high confidence"


def test_string_confidence_is_below_the_objects():
    """The same command line as a decoded in-parameters object (high) and as a BSTR (medium)."""
    command = planting.WMIEXEC_STRING
    block = w.instance_block(w.PROCESS_CREATE_IN, {"CommandLine": command}, server=None)
    memory = b"\0" * 16 + w.encoding_unit(block) + b"\0" * 16 + _bstr(command) + b"\0" * 8
    by_form = {a.form: a for a in classify(carve([(0x1000, memory)]))}
    assert by_form["object"].confidence == Confidence.HIGH
    assert by_form["string"].confidence == Confidence.MEDIUM
    assert by_form["string"].severity == by_form["object"].severity == Severity.CRITICAL


def test_strings_inside_decoded_objects_and_requests_are_not_repeated():
    """A wide command line inside an object, a WQL inside a request body: one row each. With the
    object's signature broken the same bytes give a string row, so the dedup is what hides it."""
    command = planting.WMIEXEC_STRING
    block = w.instance_block(w.PROCESS_CREATE_IN, {"CommandLine": command}, server=None, wide=True)
    unit = w.encoding_unit(block)
    query = planting.exec_query("SELECT * FROM Win32_Service")
    gap = b"\0" * (16 + -len(unit) % 4)  # NDR aligns the request's fields to 4 bytes
    memory = b"\0" * 16 + unit + gap + query + b"\0" * 16
    found = classify(carve([(0x1000, memory)]))
    assert sorted(a.form for a in found) == ["object", "request"]
    assert next(a for a in found if a.form == "request").operation == "ExecQuery"
    broken = b"\0" * 16 + b"\x00" + unit[1:] + gap + query + b"\0" * 16
    assert sorted(a.form for a in classify(carve([(0x1000, broken)]))) == ["request", "string"]
    # an object straddling two chunks (read whole from the first) still hides its strings in the second
    chunks = [(0x1000, memory[:200]), (0x1000 + 100, memory[100:])]
    whole = classify(carve(chunks, lambda address, length: memory[address - 0x1000 :][:length]))
    assert sorted(a.form for a in whole) == ["object", "request"]


def test_string_cut_by_a_chunk_start_is_reported_once_whole():
    text = "SELECT * FROM Win32_Process WHERE Name = 'powershell.exe'"
    memory = b"\x07" * 64 + _utf16z(text) + b"\0" * 64
    cut = 64 + 40  # the next chunk starts inside the string
    found = classify(carve([(0x1000, memory[: cut + 200]), (0x1000 + cut, memory[cut:])]))
    assert [(a.address, a.properties["Query"]) for a in found] == [(0x1000 + 64, text)]


def test_not_wmi_strings_give_no_rows():
    """Anchors in text that is no WMI operation, unterminated text and one-byte text: no rows."""
    memory = b"\0".join(
        [
            _utf16z("Win32_Process"),  # a class name alone
            _utf16z("please select a file from the list"),  # no FROM <class> shape
            _utf16z("C:\\Windows\\System32\\cmd.exe"),
            b"SELECT * FROM Win32_Process\0",  # one byte a character
            "SELECT * FROM Win32_Service".encode("utf-16-le") + b"\x01\x00",  # no terminator
            b"\xcc" * 8,
        ]
    )
    assert classify(carve([(0x1000, memory)])) == []


def test_string_cut_at_the_end_of_captured_memory_is_reported_with_a_note():
    """Text that runs to the last captured byte (at the end of a run of chunks, before a hole, with a
    trailing odd byte or a high surrogate whose pair was not captured) is reported with what is
    there, one confidence step lower and a note; inside captured memory a chunk boundary in the
    string still gives it once, whole, uncut; text longer than the limit is still no string."""
    from wmiforensics.activity.classify import CUT_NOTE
    from wmiforensics.activity.strings import MAX_STRING_BYTES

    command = planting.NON_LATIN_COMMAND
    text = command.encode("utf-16-le")
    for tail in (b"", b"\x00", b"\x3d\xd8"):
        memory = b"\xcc" * 32 + struct.pack("<I", 4 * len(command)) + text + tail
        (found,) = classify(carve([(0x1000, memory)]))
        assert (found.address, found.properties["CommandLine"]) == (0x1000 + 36, command), tail
        assert found.kind == "process_create" and found.confidence == Confidence.LOW
        assert found.notes == [CUT_NOTE] and found.detail["cut"] and "captured memory" in found.reason
    # the same text before a hole (the next chunk starts past this one's end), then far away
    memory = b"\xcc" * 32 + text
    found = classify(carve([(0x1000, memory), (0x9000, memory + b"\0\0")]))
    assert [(a.address, a.confidence, a.notes) for a in found] == [
        (0x1000 + 32, Confidence.LOW, [CUT_NOTE]),
        (0x9000 + 32, Confidence.MEDIUM, []),
    ]
    # a chunk boundary inside captured memory: once, whole
    memory = b"\xcc" * 64 + text + b"\0\0" + b"\xcc" * 64
    chunks = [(0x1000, memory[:200]), (0x1000 + 40, memory[40:])]
    (found,) = classify(carve(chunks))
    assert (found.properties["CommandLine"], found.confidence, found.notes) == (
        command,
        Confidence.MEDIUM,
        [],
    )
    long_text = ("SELECT * FROM Win32_Process WHERE Name = 'x' OR " * 1000).encode("utf-16-le")
    assert classify(carve([(0x1000, b"\0\0" + long_text[: MAX_STRING_BYTES + 64])])) == []


def test_hostile_string_memory_stays_bounded():
    """112 MiB of ``SELECT `` (UTF-16LE at both alignments, and ASCII), and unterminated text up to
    each chunk's end, in overlapping 16 MiB chunks: a few seconds, no rows, a real string after a
    flood in the next chunk still found."""
    import time

    from wmiforensics.activity.strings import MAX_STRING_BYTES

    chunk, overlap = 16 << 20, 64 << 10
    flood = ("SELECT " * ((chunk + overlap) // 14 + 1)).encode("utf-16-le")[: chunk + overlap]
    kinds = [flood, b"\x01" + flood[:-1], (b"SELECT " * (len(flood) // 7 + 1))[: len(flood)]]
    memory_chunks = [(n * chunk, kinds[n % 3]) for n in range(7)]
    real = b"\0\0" + _bstr("SELECT * FROM AntiVirusProduct") + b"\0" * 8
    memory_chunks.append((7 * chunk, real + b"A\0" * (chunk // 2)))
    started = time.perf_counter()
    found = classify(carve(memory_chunks))
    elapsed = time.perf_counter() - started
    assert [(a.address, a.kind) for a in found] == [(7 * chunk + 6, "reconnaissance")]
    assert elapsed < 60, elapsed
    assert overlap // 2 >= MAX_STRING_BYTES, "a string that starts in a chunk ends inside it"


def test_memory_full_of_short_wmi_strings_stays_bounded():
    """16 MiB of short terminated queries: at most one row per YARA-X match kept per chunk, each a
    whole string, in a few seconds."""
    import time

    from wmiforensics.activity.anchors import MAX_HITS

    one = _utf16z("SELECT a FROM Win32_Service")
    memory = one * ((16 << 20) // len(one))
    started = time.perf_counter()
    found = classify(carve([(0x1000, memory)]))
    assert time.perf_counter() - started < 60
    assert 0 < len(found) <= MAX_HITS
    assert all(a.properties["Query"] == "SELECT a FROM Win32_Service" for a in found)


def test_strings_with_characters_of_any_script_are_recovered_whole():
    """Cyrillic, CJK, accented and outside-the-BMP characters inside a command line and a WQL query
    are extended over (between pointer-like junk, at both alignments); binary data read as another
    script's characters is not: glued to a marker's letters, or made of mixed scripts, or a lone
    surrogate (the text then has no terminator)."""
    pointer = struct.pack("<Q", 0x000001D23A5C4F10)  # reads as ǒ㩜伐: trimmed from a string's start
    texts = [
        planting.NON_LATIN_COMMAND,
        planting.NON_LATIN_QUERY,
        "SELECT * FROM Win32_Service WHERE Name='ζ'",
    ]
    for odd in (0, 1):
        memory, where = b"\x01" * odd, []
        for text in texts:
            memory += pointer
            where.append(len(memory))
            memory += _utf16z(text)
        junk = [
            "wbem\\cimom" + "\u61ad\u38ea",  # binary data glued to the marker's last letter
            "\\\\.\\root\\cimv2\\" + "\uc900\u3cdc\u3852",  # three scripts in a row
        ]
        for text in junk:
            memory += pointer + _utf16z(text)
        memory += pointer + "SELECT * FROM Win32_Service".encode("utf-16-le") + b"\x00\xd8" + b"\0\0"
        found = classify(carve([(0x4000, memory + b"\0" * 8)]))
        assert [(a.address, a.properties["Text"]) for a in found] == [
            (0x4000 + at, text) for at, text in zip(where, texts)
        ], odd
        assert found[0].kind == "process_create" and "wmiexec" in found[0].reason
        assert found[1].properties["Query"] == planting.NON_LATIN_QUERY and found[1].kind == "reconnaissance"


def test_subscription_parts_known_only_as_strings_are_joined_into_a_chain():
    """wmipersist's object paths of a filter, a consumer and their binding, as BSTRs with no object
    near: one chain, critical, one confidence step below an object-built chain, saying it was
    joined from strings. With the objects there too the object chain is the one reported; a binding
    whose consumer is only a string joins with the filter object."""
    name = "DefenderHealth"
    consumer_path = f'ActiveScriptEventConsumer.Name="{name}"'
    filter_path = f'__EventFilter.Name="EF_{name}"'
    binding_path = (
        f'__FilterToConsumerBinding.Consumer="ActiveScriptEventConsumer.Name=\\"{name}\\"",'
        f'Filter="__EventFilter.Name=\\"EF_{name}\\""'
    )
    paths = b"".join(b"\0" * 16 + _bstr(text) for text in (consumer_path, filter_path, binding_path))
    found = classify(carve([(0x1000, paths + b"\0" * 16)]))
    (chain,) = [a for a in found if a.form == "chain"]
    assert (chain.kind, chain.severity, chain.confidence) == (
        "subscription",
        Severity.CRITICAL,
        Confidence.MEDIUM,
    )
    assert chain.address == max(a.address for a in found if a.form == "string")
    assert chain.properties["Filter"] == f"EF_{name}" and chain.properties["Consumer"] == consumer_path
    assert "joined from strings" in chain.reason and chain.detail["joined_from_strings"] == [
        "filter",
        "consumer",
        "binding",
    ]
    units = [
        b"\0" * 16 + w.encoding_unit(w.instance_block(spec, values, namespace="ROOT\\subscription"))
        for spec, values in (
            (w.EVENT_FILTER, {"Name": f"EF_{name}", "Query": "select * from __TimerEvent"}),
            (w.ACTIVE_SCRIPT_CONSUMER, {"Name": name, "ScriptingEngine": "VBScript", "ScriptText": "x"}),
            (w.BINDING, {"Filter": filter_path, "Consumer": consumer_path}),
        )
    ]
    both = classify(carve([(0x1000, b"".join(units) + paths + b"\0" * 16)]))
    (chain,) = [a for a in both if a.form == "chain"]
    assert chain.confidence == Confidence.HIGH and "joined from strings" not in chain.reason
    assert chain.address < 0x1000 + len(b"".join(units)), "the binding object's chain"
    mixed = classify(carve([(0x1000, units[0] + paths + b"\0" * 16)]))
    (chain,) = [a for a in mixed if a.form == "chain"]
    assert chain.confidence == Confidence.MEDIUM and chain.detail["joined_from_strings"] == [
        "consumer",
        "binding",
    ]
