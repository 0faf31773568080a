"""ETW buffers recovered from logger contexts (every build), decoded, and checked against etl-parser.

The fixture (`fixtures.etw.buffers`, no code shared with the decoder) plants the real files' buffers
from shared/etl and a buffer of WMI-Activity/AMSI/Kernel-Process events built from their manifest
templates into logger contexts; the links it had to write are the only bytes that differ from the files.
"""

from __future__ import annotations

import io
import json
import struct
from collections import Counter
from csv import DictReader

import pytest
from volatility3.framework import contexts

from fixtures.etw import BUILDS, EtwManifest, build_etw_memory, load_kernel
from fixtures.etw.buffers import AMSI, WITH_CONTAINER, activity_buffer, file_buffers
from fixtures.winimage import build_image
from tests.conftest import run_vol, vol_json
from tests.etl_reference import ETL_DIR, etl_path, normalise_ours, reference_buffer, reference_manifest_fields
from wmiforensics.etl.events import buffer_events
from wmiforensics.etl.findings import event_findings
from wmiforensics.etw.buffers import BufferRecovery
from wmiforensics.etw.reader import EtwReader
from wmiforensics.vol.dumps import Dumper
from wmiforensics.vol.etwbuffers import dump_logger, located_events

SHUTDOWN_SAMPLE = 8


def recover(build: int, memory=None):
    memory = memory or build_etw_memory(build, "clean", buffers=WITH_CONTAINER)
    context = contexts.Context()
    reader = EtwReader(context, load_kernel(context, build, memory, validate=False))
    loggers = list(BufferRecovery(reader).loggers(reader.silos()))
    return memory, loggers


def expected_bytes(record, manifest: EtwManifest) -> bytes:
    """What the planted buffer holds: its source bytes with the fixture's link patches applied."""
    if record.source == "activity":
        logger = manifest.logger(record.logger, record.silo)
        start = min(event.timestamp for event in manifest.events) - 1000
        data = bytearray(activity_buffer(logger.logger_id, record.size, start)[0])
    else:
        data = bytearray(file_buffers(ETL_DIR / record.source)[record.index - 1])
    for offset, text in record.patches:
        assert offset in (0x20, 0x38), "the fixture may only rewrite list links"
        patch = bytes.fromhex(text)
        data[offset : offset + len(patch)] = patch
    return bytes(data)


@pytest.mark.parametrize("build", BUILDS)
def test_recovered_buffers_equal_the_planted_file_buffers(build):
    etl_path("AMSITrace.etl")
    memory, loggers = recover(build)
    manifest = memory.manifest
    found = {buffer.address: buffer for item in loggers for buffer in item.buffers}
    assert set(found) == {record.address for record in manifest.buffers}
    for record in manifest.buffers:
        buffer = found[record.address]
        assert buffer.valid, buffer.problems
        assert sorted(buffer.via) == sorted(record.via)
        assert buffer.data == expected_bytes(record, manifest)
    by_logger = Counter(
        (item.silo.label.split(" ")[0], item.logger.name) for item in loggers for _ in item.buffers
    )
    planted = Counter(("host" if r.silo == "host" else "server", r.logger) for r in manifest.buffers)
    assert by_logger == planted
    if build != 7601:
        assert any("BufferQueue" in record.via for record in manifest.buffers)
        assert any(record.silo == "container" for record in manifest.buffers)


def test_events_from_memory_equal_etl_parser_on_the_files():
    memory, loggers = recover(19041)
    found = {buffer.address: buffer for item in loggers for buffer in item.buffers}
    compared = 0
    for record in memory.manifest.buffers:
        if record.source == "activity" or (
            record.source.startswith("Shutdown") and record.index % SHUTDOWN_SAMPLE
        ):
            continue
        original = file_buffers(ETL_DIR / record.source)[record.index - 1]
        saved = struct.unpack_from("<I", original, 4)[0]
        expected = reference_buffer(original[0x48:saved])
        ours = [normalise_ours(event) for event in buffer_events(found[record.address].data)]
        for row, reference in zip(ours, expected):
            if "tracelogging" not in reference:
                row.pop("tracelogging", None)
        assert ours == expected
        compared += len(ours)
    assert compared > 2000


def test_template_events_decode_to_their_fields():
    memory, loggers = recover(17763)
    located = [item for item in located_events(iter(loggers)) if item.event.record.provider in
               {event.provider.upper() for event in memory.manifest.events}]  # fmt: skip
    decoded = [
        (item.event.record.provider, item.event.record.event_id if item.event.record.kind == "event" else 0,
         item.event.record.kind, item.event.record.process_id, item.event.record.thread_id,
         item.event.record.timestamp, item.event.fields)
        for item in located
    ]  # fmt: skip
    expected = [
        (event.provider, event.event_id, event.kind, event.process_id, event.thread_id, event.timestamp,
         event.values())
        for event in memory.manifest.events
    ]  # fmt: skip
    assert decoded == expected
    kinds = {item.event.record.kind for item in located}
    assert kinds == {"event", "full", "instance"}
    permanent = next(item for item in located if item.event.event_id == 5861)
    assert [ext for ext, _ in permanent.event.record.extended] == [2, 13]
    # etl-parser's layouts (generated from the providers' manifests) decode the same fields; for AMSI
    # 1101 they read a 16-byte hash and a one-byte contentFiltered, so those two are left out.
    compared = 0
    for item in located:
        record = item.event.record
        if item.event.decoder != "manifest":
            continue
        reference = reference_manifest_fields(
            record.provider, record.event_id, record.version, record.user_data
        )
        ours = dict(item.event.fields)
        if record.provider == AMSI:
            for name in ("hash", "contentFiltered"):
                reference.pop(name), ours.pop(name)
        assert ours == reference
        compared += 1
    assert compared == 6


def test_findings_from_memory_events():
    _, loggers = recover(22000)
    findings = list(event_findings(located_events(iter(loggers))))
    kinds = Counter(finding.kind for finding in findings)
    assert kinds["wmi_permanent_subscription"] == 1 and kinds["wmi_provider_unusual_path"] == 1
    amsi_rules = Counter(
        finding.reason.split(" YARA rule ")[1].split(":")[0]
        for finding in findings
        if finding.kind == "amsi_yara_match"
    )
    # the planted Invoke-WMIExec scan, and the real AMSITrace.etl's hidden -enc PowerShell scans
    assert amsi_rules == {"WMI_Tool_Invoke_WMIExec": 1, "WMI_Process_Create_Hidden_Encoded_PowerShell": 3}
    assert set(kinds) == {"wmi_permanent_subscription", "wmi_provider_unusual_path", "amsi_yara_match"}
    by_kind = {finding.kind: finding for finding in findings if "Encoded_PowerShell" not in finding.reason}
    assert 'CommandLineEventConsumer="Updater"' in by_kind["wmi_permanent_subscription"].reason
    assert any("powershell.exe -NoP" in text for text in by_kind["wmi_permanent_subscription"].evidence)
    assert "evilprov.dll" in by_kind["wmi_provider_unusual_path"].reason
    assert "WMI_Tool_Invoke_WMIExec" in by_kind["amsi_yara_match"].reason


def _hostile_memory():
    memory = build_etw_memory(19041, "clean", buffers=WITH_CONTAINER)
    manifest = memory.manifest
    host = [
        record
        for record in manifest.buffers
        if record.silo == "host" and record.logger == "EventLog-Application"
    ]
    system = [record for record in manifest.buffers if record.logger == "EventLog-System"]
    container = [record for record in manifest.buffers if record.silo == "container"]
    memory.write(host[0].address, struct.pack("<I", 0xFFFFFFF8))  # a buffer claiming 4 GiB
    memory.write(host[1].address + 4, struct.pack("<III", 0x10_0000, 0x10_0000, 0))  # offsets past it
    memory.write(host[1].address + 0x30, struct.pack("<I", 0x10_0000))
    memory.write(host[2].address + 0x48, struct.pack("<H", 0))  # an event record of size 0
    memory.write(host[3].address + 0x10, struct.pack("<q", 5))  # a buffer stamped before the session
    memory.write(system[0].address + 0x38, struct.pack("<Q", system[0].address + 0x38))  # a loop
    memory.write(container[3].address + 0x38, struct.pack("<Q", 0x00007FF612340000))  # a user pointer
    return memory


def test_hostile_buffers_are_bounded_and_noted():
    memory, loggers = recover(19041, _hostile_memory())
    by_name = {(item.silo.label.split(" ")[0], item.logger.name): item for item in loggers}
    app = by_name[("host", "EventLog-Application")]
    problems = [buffer.problems for buffer in app.buffers]
    assert any("BufferSize 0xfffffff8" in text for text in problems[0])
    assert any("lies outside the buffer" in text for text in problems[1])
    assert any("too small" in text for text in app.buffers[2].notes)
    assert "timestamps before the session started" in app.buffers[3].notes
    assert all("before the session" not in note for buffer in app.buffers[4:] for note in buffer.notes)
    system = by_name[("host", "EventLog-System")]
    assert len(system.buffers) == 2 and any("loops" in note for note in system.notes)
    container = by_name[("server", "EventLog-Application")]
    assert len(container.buffers) == 5 and any("not a kernel address" in note for note in container.notes)


def test_dump_names_stay_in_the_output_folder():
    _, loggers = recover(14393)
    item = next(item for item in loggers if item.buffers)
    item.logger.fields["LoggerName"] = "..\\..\\evil/../../x\x1b"
    names = []

    class Sink(io.BytesIO):
        def __exit__(self, *exc):
            return False

    def open_file(name):
        names.append(name)
        return Sink()

    assert dump_logger(item, Dumper(open_file)) == names[0]
    name = names[0]  # one path component, nothing a terminal would interpret
    assert "/" not in name and "\\" not in name and not name.startswith(".") and "\x1b" not in name


def test_etl_dumps_count_against_the_dump_limit():
    _, loggers = recover(14393)
    item = next(item for item in loggers if any(buffer.valid for buffer in item.buffers))
    opened = []
    written = dump_logger(item, Dumper(opened.append, limit=0))
    assert opened == [] and written.startswith("not dumped: ") and "--dump-limit" in written


@pytest.fixture(scope="module")
def buffer_image(tmp_path_factory):
    etl_path("AMSITrace.etl")
    image = tmp_path_factory.mktemp("etw-buffers") / "image.raw"
    manifest = build_image(19041, out_path=image, etw="clean", etw_buffers={})
    return image, EtwManifest.from_dict(manifest.etw)


def test_plugins_recover_dump_and_decode_on_a_full_image(buffer_image, symbol_cache, tmp_path):
    from etl.etl import build_from_stream

    image, manifest = buffer_image
    out = tmp_path / "out"
    out.mkdir()
    result = run_vol(image, "wmi.etwbuffers", "--dump", output_dir=out, symbols=symbol_cache)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert {row["Address"] for row in rows} == {record.address for record in manifest.buffers}
    assert all(row["Valid"] for row in rows)
    files = sorted(path.name for path in out.iterdir())
    assert files == sorted({row["File"] for row in rows})
    for path in out.iterdir():
        data = path.read_bytes()
        parsed = build_from_stream(data)
        logger = next(row["Logger"] for row in rows if row["File"] == path.name)
        planted = [record for record in manifest.buffers if record.logger == logger and record.silo == "host"]
        assert len(parsed.chunks) == len(planted)
        size = planted[0].size
        for index, record in enumerate(planted, start=1):
            assert data[index * size : (index + 1) * size] == expected_bytes(record, manifest)
    events = vol_json(image, "wmi.etwevents", symbols=symbol_cache)
    assert len(events) == sum(row["Events"] for row in rows)
    permanent = next(row for row in events if row["EventId"] == 5861)
    assert permanent["Provider"] == "Microsoft-Windows-WMI-Activity"
    fields = json.loads(permanent["FieldsJson"])
    assert (
        fields["CONSUMER"] == 'CommandLineEventConsumer="Updater"'
        and "powershell.exe" in fields["PossibleCause"]
    )
    scripts = [row for row in events if row["Event"] == "AmsiScript"]
    assert len(scripts) == 19 and all(row["Decoder"] == "tracelogging" for row in scripts)
    # wmi.etwfindings renders the same rows as wmi.etwtamper (csv: the renderer's own check).
    findings = run_vol(image, "wmi.etwfindings", renderer="csv", symbols=symbol_cache)
    assert findings.returncode == 0, findings.stderr
    kinds = Counter(row["Kind"] for row in DictReader(io.StringIO(findings.stdout)))
    # the planted Invoke-WMIExec scan and the real AMSITrace.etl's three hidden -enc PowerShell scans
    assert kinds == {"amsi_yara_match": 4, "wmi_permanent_subscription": 1, "wmi_provider_unusual_path": 1}
