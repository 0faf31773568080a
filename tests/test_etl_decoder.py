"""The ETL decoder against PyPI etl-parser on the real files in shared/etl, and on hostile buffers."""

from __future__ import annotations

import struct
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.etl_reference import ETL_FILES, etl_path, normalise_ours, reference_buffer
from wmiforensics.etl import format as fmt
from wmiforensics.etl import tracelogging
from wmiforensics.etl.buffer import check_buffer_header, parse_buffer_header, walk_records
from wmiforensics.etl.events import buffer_events, display_value
from wmiforensics.etl.logfile import HeaderFacts, header_buffer, iter_file_buffers, parse_logfile_header
from wmiforensics.etl.records import decode_record

# etl-parser needs about a millisecond per record: the 17,000-record ShutdownPerfDiagLogger.etl is
# compared in full by bench/bench_etl.py; here every buffer of the two small files and a spread of its.
SHUTDOWN_SAMPLE = 4


def file_buffers(name: str):
    with open(etl_path(name), "rb") as handle:
        return list(iter_file_buffers(handle))


def compare(buffer: bytes) -> int:
    header = parse_buffer_header(buffer)
    expected = reference_buffer(buffer[fmt.BUFFER_HEADER_SIZE : header.saved_offset])
    ours = [normalise_ours(event) for event in buffer_events(buffer)]
    for row, reference in zip(ours, expected):
        if "tracelogging" not in reference:
            row.pop("tracelogging", None)
    assert ours == expected
    return len(ours)


@pytest.mark.parametrize("name", ETL_FILES)
def test_every_event_equals_etl_parser(name):
    buffers = file_buffers(name)
    chosen = buffers if name != "ShutdownPerfDiagLogger.etl" else buffers[::SHUTDOWN_SAMPLE]
    assert sum(compare(buffer.data) for buffer in chosen) > 0
    assert buffers[-1].offset + buffers[-1].header.buffer_size == etl_path(name).stat().st_size


def test_tracelogging_amsi_script_text_is_decoded():
    events = [event for buffer in file_buffers("AMSITrace.etl") for event in buffer_events(buffer.data)]
    scripts = [event for event in events if event.event_name == "AmsiScript"]
    assert len(scripts) == 19 and {event.provider_name for event in scripts} == {"AmsiTrace"}
    assert all(event.decoder == "tracelogging" and not event.notes for event in scripts)
    assert any(event.fields["Script"] == "$global:?" for event in scripts)


def test_logfile_header_matches_etl_parser():
    from etl.etl import build_from_stream

    for name in ("AMSITrace.etl", "lxcore_kernel.etl"):
        data = etl_path(name).read_bytes()
        reference = build_from_stream(data).get_header().source
        first = file_buffers(name)[0]
        record = decode_record(walk_records(first.data).records[0])
        info = parse_logfile_header(record.user_data)
        assert (info.buffer_size, info.number_of_processors, info.buffers_written, info.pointer_size) == (
            reference.BufferSize,
            reference.NumberOfProcessors,
            reference.BuffersWritten,
            reference.PointerSize,
        )
        assert (info.log_file_mode, info.events_lost, info.cpu_speed) == (
            reference.LogFileMode,
            reference.EventsLost,
            reference.CPUSpeed,
        )


def test_written_header_parses_with_etl_parser():
    from etl.etl import build_from_stream

    buffers = file_buffers("AMSITrace.etl")
    facts = HeaderFacts(0x10000, 0x28, "AMSITraceSession", "recovered.etl", len(buffers) - 1, perf_freq=10**7)
    data = header_buffer(facts) + b"".join(buffer.data for buffer in buffers[1:])
    parsed = build_from_stream(data)
    assert parsed.get_header().source.BufferSize == 0x10000 and len(parsed.chunks) == len(buffers) - 1
    record = decode_record(walk_records(data[:0x10000]).records[0])
    assert parse_logfile_header(record.user_data).logger_name == "AMSITraceSession"


def test_header_names_too_long_for_a_buffer_are_cut():
    for size in (0x1000, 0x100000):
        assert len(header_buffer(HeaderFacts(size, 3, "L" * 40_000, "F" * 40_000, 1))) == size
    data = header_buffer(HeaderFacts(0x1000, 3, "L" * 40_000, "F" * 40_000, 1))
    info = parse_logfile_header(decode_record(walk_records(data).records[0]).user_data)
    assert info.logger_name.startswith("LLL") and info.log_file_name.startswith("FFF")


def _buffer(records: bytes, size: int = 0x1000, saved: int = 0) -> bytearray:
    used = fmt.BUFFER_HEADER_SIZE + len(records)
    header = fmt.BUFFER_HEADER.pack(
        size, saved or used, used, 0, 1, 1, 0, 0, 0, 3, 3, used, 0x20, 0, bytes(16)
    )
    return bytearray((header + records).ljust(size, b"\0"))


def _system_record(size: int) -> bytes:
    return struct.pack("<HBBHBBIIqII", 2, fmt.SYSTEM64, 0xC0, size, 1, 3, 4, 8, 5, 0, 0).ljust(
        max(size, 32), b"\0"
    )[: max(size, 32)]


@pytest.mark.parametrize(
    ("records", "saved", "note"),
    [
        (_system_record(0), 0, "too small"),
        (b"\x02\x00\x02\xc0\xff\xff" + bytes(26), 0, "runs past the used length"),
        (_system_record(32), 0x10_0000, None),  # SavedOffset past the buffer: clipped to it
        (b"\x50\x00\x13\xc0\x01\x00" + bytes(74), 0, "extended data item"),
        (b"\x00\x00\x42\x13" + bytes(28), 0, "no trace header"),
    ],
)
def test_hostile_records_end_with_a_note(records, saved, note):
    buffer = _buffer(records, saved=saved)
    walk = walk_records(bytes(buffer))
    events = list(buffer_events(bytes(buffer)))
    notes = walk.notes + [text for event in events for text in event.notes]
    if note:
        assert any(note in text for text in notes), notes
    else:
        assert len(walk.records) == 1


def test_buffer_claiming_four_gib_is_refused_without_reading_it(tmp_path):
    header = fmt.BUFFER_HEADER.pack(0xFFFFFFF8, 0x48, 0x48, 0, 1, 1, 0, 0, 0, 3, 3, 0x48, 0, 0, bytes(16))
    assert any("BufferSize" in text for text in check_buffer_header(parse_buffer_header(header)))
    path = tmp_path / "huge.etl"
    path.write_bytes(header)
    notes: list = []
    with open(path, "rb") as handle:
        assert list(iter_file_buffers(handle, notes)) == []
    assert "claims 0xfffffff8 bytes" in notes[0]


def test_display_escapes_strings_from_the_input():
    assert display_value("a\x1b[31mb\n") == "a\\x1b[31mb\\n"
    assert display_value("C:\\Users\u202e") == "C:\\Users\\u202e"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=0, max_size=0x200), st.binary(min_size=0, max_size=0x200))
def test_fuzzed_tracelogging_metadata_decodes_or_says_why(meta, user_data):
    started = time.perf_counter()
    try:
        decoded = tracelogging.decode(meta, user_data)
    except tracelogging.TlError:
        pass
    else:
        display_value(decoded.fields)
    assert time.perf_counter() - started < 2


def test_nested_structs_and_empty_arrays_are_bounded():
    # 1000 structs, each holding the next
    nested = b"".join(b"s\0" + bytes([0x80 | 24, 1]) for _ in range(1000))
    meta = struct.pack("<H", 0) + b"\0e\0" + nested
    meta = struct.pack("<H", len(meta)) + meta[2:]
    assert tracelogging.decode(meta, b"").event_name == "e"
    empty = b"a\0" + bytes([0x80 | 0x20 | 24, 1]) + struct.pack("<H", 65535)  # 65535 x struct of:
    empty += b"b\0" + bytes([0x80 | 0x20 | 24, 0]) + struct.pack("<H", 65535)  # 65535 x empty struct
    meta = struct.pack("<H", 4 + len(empty)) + b"\0e\0" + empty
    assert "more than" in tracelogging.decode(meta, b"").note


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=0, max_size=0x400), st.integers(0, 0x500))
def test_fuzzed_buffers_decode_in_bounded_time(tail, saved):
    started = time.perf_counter()
    buffer = bytes(_buffer(tail, size=0x500, saved=saved or 0))
    for event in buffer_events(buffer):
        display_value(event.fields)
    check_buffer_header(parse_buffer_header(buffer), 0x500, 3)
    assert time.perf_counter() - started < 2
