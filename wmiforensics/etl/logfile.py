"""``.etl`` files: stream their buffers, and write a logfile header buffer in front of recovered ones.

A file is a header buffer (BufferType 4, one system record, group 0 type 0 version 2, holding
``TRACE_LOGFILE_HEADER`` and the session and file names) followed by the logger's buffers as they were
in memory. Reading never loads more than one buffer at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO, Iterator, List, Optional, Tuple

from . import format as fmt
from .buffer import BufferHeader, parse_buffer_header, walk_records
from .clock import SessionClock, logfile_clock
from .records import decode_record

FILL = b"\xff"
WINDOWS_10_VERSION = 0x0501000A  # the Version the real headers in shared/etl carry


@dataclass
class FileBuffer:
    index: int
    offset: int
    data: bytes
    header: BufferHeader


def iter_file_buffers(handle: BinaryIO, notes: Optional[List[str]] = None) -> Iterator[FileBuffer]:
    """Each buffer of an open ``.etl`` file; a header claiming an impossible size ends the walk."""
    index, offset = 0, 0
    while True:
        head = handle.read(fmt.BUFFER_HEADER_SIZE)
        if len(head) < fmt.BUFFER_HEADER_SIZE:
            if head and notes is not None:
                notes.append(f"{len(head)} trailing bytes at {offset:#x} are not a buffer")
            return
        header = parse_buffer_header(head)
        assert header is not None
        size = header.buffer_size
        if not fmt.BUFFER_HEADER_SIZE < size <= fmt.MAX_BUFFER_SIZE:
            if notes is not None:
                notes.append(f"buffer at {offset:#x} claims {size:#x} bytes; the rest of the file is skipped")
            return
        rest = handle.read(size - fmt.BUFFER_HEADER_SIZE)
        data = head + rest
        if len(data) < size and notes is not None:
            notes.append(f"buffer at {offset:#x} is cut short ({len(data):#x} of {size:#x} bytes)")
        yield FileBuffer(index, offset, data, header)
        index += 1
        offset += size
        if len(data) < size:
            return


@dataclass
class LogfileInfo:
    """What the header record says (the values Windows wrote when the session started)."""

    buffer_size: int
    version: int
    number_of_processors: int
    end_time: int
    timer_resolution: int
    maximum_file_size: int
    log_file_mode: int
    buffers_written: int
    pointer_size: int
    events_lost: int
    cpu_speed: int
    boot_time: int
    perf_freq: int
    start_time: int
    reserved_flags: int
    buffers_lost: int
    logger_name: str
    log_file_name: str


def parse_logfile_header(record_data: bytes) -> Optional[LogfileInfo]:
    """``TRACE_LOGFILE_HEADER`` from the user data of the header record (64-bit layout)."""
    if len(record_data) < fmt.LOGFILE_HEADER.size:
        return None
    values = fmt.LOGFILE_HEADER.unpack_from(record_data, 0)
    (size, version, _provider, cpus, end, resolution, max_size, mode, written, _start_buffers, pointer,
     lost, speed, _name_ptr, _file_ptr, _tz, boot, freq, start, reserved, buffers_lost) = values  # fmt: skip
    names = record_data[fmt.LOGFILE_HEADER.size :]
    logger_name, rest = _wide(names)
    log_file_name, _ = _wide(rest)
    return LogfileInfo(
        size, version, cpus, end, resolution, max_size, mode, written, pointer, lost, speed, boot, freq,
        start, reserved, buffers_lost, logger_name, log_file_name,
    )  # fmt: skip


def header_clock(header_buffer_data: bytes) -> Optional[SessionClock]:
    """The session clock a file's header buffer records (None when it holds no logfile header).

    The header record's own timestamp is the clock value taken with ``StartTime``; ``ReservedFlags`` is
    the clock type, ``PerfFreq`` the QPC frequency and ``CpuSpeedInMHz`` the cycle counter's.
    """
    walk = walk_records(header_buffer_data)
    if not walk.records:
        return None
    record = decode_record(walk.records[0])
    info = parse_logfile_header(record.user_data) if record.kind == "system" else None
    if info is None or record.timestamp is None:
        return None
    return logfile_clock(
        info.reserved_flags, info.start_time, record.timestamp, info.perf_freq, info.cpu_speed
    )


def _wide(data: bytes) -> Tuple[str, bytes]:
    for at in range(0, len(data) - 1, 2):
        if data[at : at + 2] == b"\0\0":
            return data[:at].decode("utf-16-le", "replace"), data[at + 2 :]
    return data.decode("utf-16-le", "replace"), b""


@dataclass
class HeaderFacts:
    """What the writer puts in the logfile header of a recovered logger."""

    buffer_size: int
    logger_id: int
    logger_name: str
    log_file_name: str
    buffers: int
    start_time: int = 0  # FILETIME
    end_time: int = 0
    boot_time: int = 0
    perf_freq: int = 10_000_000
    clock_type: int = 1  # ReservedFlags: 1 QPC, 2 system time, 3 CPU cycle counter
    log_file_mode: int = 0x1
    events_lost: int = 0
    processors: int = 1
    timestamp: int = 0


def header_buffer(facts: HeaderFacts) -> bytes:
    """The first buffer of an ``.etl`` file for these facts (Windows' own shape for it); names too long
    for one buffer are cut to fit."""
    system_size = fmt.SYSTEM_HEADER.size + fmt.SYSTEM_TIMES.size
    room = min(facts.buffer_size - fmt.BUFFER_HEADER_SIZE, 0xFFF8) - system_size  # record Size is a USHORT
    keep = max((room - fmt.LOGFILE_HEADER.size) // 4 - 1, 0)
    names = b"".join(
        (name[:keep] + "\0").encode("utf-16-le", "surrogatepass")
        for name in (facts.logger_name, facts.log_file_name)
    )
    body = fmt.LOGFILE_HEADER.pack(
        facts.buffer_size, WINDOWS_10_VERSION, 0, facts.processors, facts.end_time, 156_250, 0,
        facts.log_file_mode, facts.buffers, 1, 8, facts.events_lost, 0, 0, 0, bytes(176), facts.boot_time,
        facts.perf_freq, facts.start_time, facts.clock_type, 0,
    ) + names  # fmt: skip
    record = (
        fmt.SYSTEM_HEADER.pack(
            fmt.LOGFILE_HEADER_VERSION,
            fmt.SYSTEM64,
            0xC0,
            system_size + len(body),
            fmt.LOGFILE_HEADER_HOOK & 0xFF,
            fmt.LOGFILE_HEADER_HOOK >> 8,
            0,
            0,
            facts.timestamp,
        )
        + fmt.SYSTEM_TIMES.pack(0, 0)
        + body
    )
    used = fmt.BUFFER_HEADER_SIZE + fmt.align(len(record))
    if used > facts.buffer_size:
        raise ValueError("logger and file names do not fit in one buffer")
    header = fmt.BUFFER_HEADER.pack(
        facts.buffer_size, used, used, 0, 0, 0, 0, 0, 0, facts.logger_id, 3, used, 0x21,
        fmt.BUFFER_TYPE_HEADER, bytes(16),
    )  # fmt: skip
    payload = record.ljust(fmt.align(len(record)), b"\0")
    return (header + payload).ljust(facts.buffer_size, FILL)


def write_etl(handle: BinaryIO, facts: HeaderFacts, buffers: List[bytes]) -> int:
    """Header buffer, then each recovered buffer as it was; returns the bytes written."""
    total = handle.write(header_buffer(facts))
    for data in buffers:
        total += handle.write(data)
    return total
