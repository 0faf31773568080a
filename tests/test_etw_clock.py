"""ETW timestamps as UTC times: the real ``.etl`` files against etl-parser, and hostile clocks."""

from __future__ import annotations

import json
import struct
from datetime import datetime, timedelta, timezone

import pytest

from tests.etl_reference import ETL_FILES, etl_path
from wmiforensics.etl.buffer import walk_records
from wmiforensics.etl.clock import OUTSIDE, SessionClock
from wmiforensics.etl.logfile import header_clock, iter_file_buffers
from wmiforensics.etl.records import decode_record

EPOCH = datetime(1601, 1, 1, tzinfo=timezone.utc)
#: etl-parser needs about a millisecond per record: every buffer of the small files, a spread of the big one.
SAMPLE = {"ShutdownPerfDiagLogger.etl": 6}


def _filetime(ticks: int) -> datetime:
    return EPOCH + timedelta(microseconds=ticks // 10)


def reference_times(name: str):
    """etl-parser's raw timestamps and header values, converted here, and the header's [start, end].

    etl-parser 1.0.1 reads TRACE_LOGFILE_HEADER without the 4 alignment bytes after
    TimeZoneInformation, so its BootTime, PerfFreq and StartTime are shifted: they are taken from its
    header record's bytes at the evntrace.h (64-bit) offsets instead (PerfFreq +0x100, StartTime +0x108,
    ReservedFlags +0x110). Its EndTime (before the time zone) and timestamps are used as it reads them.
    """
    from etl.etl import ChunkParser, EtlLogFile, build_from_stream

    data = etl_path(name).read_bytes()
    chunks = EtlLogFile.parse(data)
    first = ChunkParser.parse(chunks[0].payload)[0].value
    freq, start, flags = struct.unpack_from("<qqI", bytes(first.mof_data), 0x100)
    end = build_from_stream(data).get_header().source.EndTime
    reference = first.system_header.system_time
    assert flags == 1  # every shared file uses QPC
    step = SAMPLE.get(name, 1)
    times = []
    for index, chunk in enumerate(chunks[1:]):
        if index % step:
            continue
        raws = []
        for record in ChunkParser.parse(chunk.payload):
            value = record.value
            if record.type == "SystemTraceRecord":
                raws.append(value.system_header.system_time)
            elif record.type == "PerfInfoTraceRecord":
                raws.append(value.timestamp)
            elif record.type in ("EventRecord", "TraceRecord"):
                raws.append(value.event_header.timestamp)
        times.append([_filetime(start + (raw - reference) * 10_000_000 // freq) for raw in raws])
    return times, _filetime(start), _filetime(end)


def our_times(name: str):
    with open(etl_path(name), "rb") as handle:
        buffers = list(iter_file_buffers(handle))
    clock = header_clock(buffers[0].data)
    assert clock is not None and clock.problem is None
    step = SAMPLE.get(name, 1)
    times = []
    for buffer in buffers[1:][::step]:
        converted = []
        for raw in walk_records(buffer.data).records:
            stamp = decode_record(raw).timestamp
            if stamp is not None:
                when, note = clock.convert(stamp)
                assert note is None
                converted.append(when)
        times.append(converted)
    return times


@pytest.mark.parametrize("name", ETL_FILES)
def test_file_event_times_equal_etl_parser_and_lie_in_the_session(name):
    expected, start, end = reference_times(name)
    ours = our_times(name)
    assert ours == expected and sum(len(buffer) for buffer in ours) > 0
    assert all(start <= when <= end for buffer in ours for when in buffer)


def test_known_file_times():
    """AMSITrace.etl's events fall between 12:48 and 12:50 UTC on 17 Feb 2020 (its header's session)."""
    times = [when for buffer in our_times("AMSITrace.etl") for when in buffer]
    assert min(times).isoformat() == "2020-02-17T12:48:57.454272+00:00"
    assert max(times).isoformat() == "2020-02-17T12:49:50.402432+00:00"


START = 132264173104203138  # 2020-02-17 12:48:30.420313 UTC


@pytest.mark.parametrize(
    "clock, raw, note",
    [
        (SessionClock(1, START, 1000, 10_000_000), 999, OUTSIDE),  # before the reference
        (SessionClock(1, START, 1000, 10_000_000), 1000 + 10**7 * 3600 * 24 * 365 * 90, OUTSIDE),  # 2110
        (SessionClock(1, START, 1000, 1), 2**63 - 1, OUTSIDE),  # huge and slow: far past 2100
        (SessionClock(2, 0, 0, 0), 5, OUTSIDE),  # system time in 1601
        (SessionClock(2, 0, 0, 0), 2**64 - 1, OUTSIDE),
        (SessionClock(1, START, 1000, 0), 2000, "QPC frequency 0 is unusable"),
        (SessionClock(3, START, 1000, -5), 2000, "CPU cycles frequency -5 is unusable"),
        (SessionClock(1, START, 1000, 2**63), 2000, "QPC frequency"),
        (SessionClock(7, START, 1000, 10_000_000), 2000, "clock type 7 is unknown"),
        (SessionClock(1, 0, 1000, 10_000_000), 2000, "reference StartTime 0 is not a time"),
        (SessionClock(1, 2**63 - 1, 1000, 10_000_000), 2000, "is not a time"),
        (SessionClock(1, START, -1, 10_000_000), 2000, "is negative"),
    ],
)
def test_hostile_clock_values_are_missing_with_a_note(clock, raw, note):
    when, why = clock.convert(raw)
    assert when is None and why is not None and note in why


def test_each_clock_type_converts():
    assert SessionClock(2, 0, 0, 0).convert(START)[0] == _filetime(START)
    qpc, _ = SessionClock(1, START, 500, 3_000_000).convert(500 + 3_000_000 * 90)
    assert qpc == _filetime(START) + timedelta(seconds=90)
    cycles, _ = SessionClock(3, START, 10, 2_000_000_000).convert(10 + 2_000_000_000 // 4)
    assert cycles == _filetime(START) + timedelta(milliseconds=250)
    assert SessionClock(1, START, 0, 10_000_000).convert(None) == (None, None)


# --- in memory: the reference pair and frequency the logger context and KUSER_SHARED_DATA hold ----------


def file_clock(name: str):
    """(StartTime, header record timestamp, PerfFreq, EndTime) as etl-parser reads the file (see above)."""
    from etl.etl import ChunkParser, EtlLogFile, build_from_stream

    data = etl_path(name).read_bytes()
    first = ChunkParser.parse(EtlLogFile.parse(data)[0].payload)[0].value
    freq, start = struct.unpack_from("<qq", bytes(first.mof_data), 0x100)
    end = build_from_stream(data).get_header().source.EndTime
    return start, first.system_header.system_time, freq, end


@pytest.mark.parametrize("build, scenario", [(14393, "clean"), (22000, "lab_tampered")])
def test_image_events_show_the_planted_files_real_times(build, scenario, symbol_cache, tmp_path):
    """Each planted event's Time is what its file's own header makes of its raw Timestamp."""
    from fixtures.etw import EtwManifest
    from fixtures.etw.buffers import DEFAULT_PLANTING
    from fixtures.winimage import build_image
    from tests.conftest import run_vol, vol_json

    etl_path("AMSITrace.etl")
    image = tmp_path / "image.raw"
    manifest = EtwManifest.from_dict(build_image(build, out_path=image, etw=scenario, etw_buffers={}).etw)
    session_file = {
        record.address: DEFAULT_PLANTING[(record.silo, record.logger)][0] for record in manifest.buffers
    }
    clocks = {name: file_clock(name) for name in set(session_file.values())}
    events = vol_json(image, "wmi.etwevents", symbols=symbol_cache)
    assert events and {row["Buffer"] for row in events} <= set(session_file)
    for row in events:
        start, reference, freq, end = clocks[session_file[row["Buffer"]]]
        expected = _filetime(start + (row["Timestamp"] - reference) * 10_000_000 // freq)
        assert datetime.fromisoformat(row["Time"]) == expected
        assert _filetime(start) <= expected <= _filetime(end)
    amsi = [row for row in events if row["Event"] == "AmsiScript"]
    assert amsi and all(row["Time"].startswith("2020-02-17T12:4") for row in amsi)
    if build == 22000:
        out = tmp_path / "out"
        out.mkdir()
        result = run_vol(image, "wmi.etwbuffers", "--dump", output_dir=out, symbols=symbol_cache)
        assert result.returncode == 0, result.stderr
        buffers = json.loads(result.stdout)
        for row in buffers:  # the dumped file's header carries the logger's clock
            start, reference, freq, _ = clocks[session_file[row["Address"]]]
            with open(out / row["File"], "rb") as handle:
                header = next(iter_file_buffers(handle))
            assert header_clock(header.data) == SessionClock(1, start, reference, freq)
        for row in buffers:
            start, reference, freq, _ = clocks[session_file[row["Address"]]]
            for raw, shown in (
                (row["FirstTimestamp"], row["FirstTime"]),
                (row["LastTimestamp"], row["LastTime"]),
            ):
                assert datetime.fromisoformat(shown) == _filetime(
                    start + (raw - reference) * 10_000_000 // freq
                )


def _recover(memory):
    from volatility3.framework import contexts

    from fixtures.etw import load_kernel
    from wmiforensics.etw.buffers import BufferRecovery
    from wmiforensics.etw.reader import EtwReader

    context = contexts.Context()
    reader = EtwReader(context, load_kernel(context, 19041, memory, validate=False))
    loggers = BufferRecovery(reader).loggers(reader.silos())
    return reader, {item.logger.name: item for item in loggers if item.silo.label == "host"}


def test_hostile_reference_values_in_memory_become_notes():
    from fixtures.etw import build_etw_memory
    from wmiforensics.etw.buffers import KUSER_SHARED_DATA
    from wmiforensics.vol.etwbuffers import located_events

    memory = build_etw_memory(19041, "clean", buffers={})
    reader, _ = _recover(memory)
    reference = reader.member_offset("_WMI_LOGGER_CONTEXT", "ReferenceTime")
    application = memory.manifest.logger("EventLog-Application", "host")
    system = memory.manifest.logger("EventLog-System", "host")
    memory.write(application.address + reference, struct.pack("<qq", 2**63 - 1, -5))
    memory.write(system.address + reference + 8, struct.pack("<q", 2**62))  # after every event
    _, loggers = _recover(memory)
    assert any("is not a time" in note for note in loggers["EventLog-Application"].notes)
    for name in ("EventLog-Application", "EventLog-System"):
        item = loggers[name]
        assert item.buffers and all(b.first_time is None and b.last_time is None for b in item.buffers)
        events = list(located_events(iter([item])))
        assert events and all(event.time is None and event.time_note for event in events)
    assert all(OUTSIDE in " ".join(b.notes) for b in loggers["EventLog-System"].buffers)

    frequency = reader.member_offset("_KUSER_SHARED_DATA", "QpcFrequency")
    memory.write(KUSER_SHARED_DATA + frequency, bytes(8))
    _, loggers = _recover(memory)
    assert any("QPC frequency 0 is unusable" in note for note in loggers["EventLog-System"].notes)
    assert all(b.first_time is None and b.first_timestamp for b in loggers["EventLog-System"].buffers)


def test_findings_from_memory_events_carry_the_event_time():
    """A finding's evidence says when its event happened (the activity buffer's session: AMSITrace.etl)."""
    from fixtures.etw import build_etw_memory
    from fixtures.etw.buffers import WMI_ACTIVITY
    from wmiforensics.etl.findings import event_findings
    from wmiforensics.vol.etwbuffers import located_events

    _, loggers = _recover(build_etw_memory(19041, "clean", buffers={}))
    events = located_events(iter([loggers["EventLog-Application"]]))
    wmi = [item for item in events if item.event.record.provider == WMI_ACTIVITY]  # no YARA compile needed
    findings = list(event_findings(wmi))
    permanent = next(finding for finding in findings if finding.kind == "wmi_permanent_subscription")
    stamp = next(line for line in permanent.evidence if line.startswith("timestamp "))
    raw = int(stamp.split()[1])
    start, reference, freq, _ = file_clock("AMSITrace.etl")
    expected = _filetime(start + (raw - reference) * 10_000_000 // freq)
    assert stamp.endswith(f"({expected.strftime('%Y-%m-%d %H:%M:%S.%f')} UTC)")


def test_cycle_counter_logger_uses_processor_zero_mhz():
    """ClockType 3: the frequency is KiProcessorBlock[0]->MHz (here 2000 MHz) times 10^6."""
    from fixtures.etw import build_etw_memory

    memory = build_etw_memory(19041, "clean", buffers={})
    reader, before = _recover(memory)
    system = memory.manifest.logger("EventLog-System", "host")
    memory.write(
        system.address + reader.member_offset("_WMI_LOGGER_CONTEXT", "ClockType"), struct.pack("<I", 3)
    )
    prcb = 0xFFFF_F800_7000_0000
    memory.write(reader.symbol_address("KiProcessorBlock"), struct.pack("<Q", prcb))
    memory.write(prcb + reader.member_offset("_KPRCB", "MHz"), struct.pack("<I", 2000))
    _, loggers = _recover(memory)
    item = loggers["EventLog-System"]
    assert item.clock.clock_type == 3 and item.clock.frequency == 2_000_000_000 and not item.notes
    reference = before["EventLog-System"].clock
    for buffer in item.buffers:
        ticks = (
            reference.start_time
            + (buffer.first_timestamp - reference.start_clock) * 10_000_000 // 2_000_000_000
        )
        assert buffer.first_time == _filetime(ticks)
