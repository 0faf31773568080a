"""ETW timestamps as UTC times: the real ``.etl`` files against etl-parser, and hostile clocks."""

from __future__ import annotations

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
