"""ETW buffers held by logger contexts: found through the structures the ISF describes, validated,
read, and handed to the Volatility-free ETL decoder.

Paths (offsets from the ISF, members used only where the build has them):

- ``_WMI_LOGGER_CONTEXT.GlobalList``: every buffer the logger owns, linked through
  ``_WMI_BUFFER_HEADER.GlobalEntry`` (+0x38);
- ``BufferQueue`` (flush list) and ``OverflowQueue`` (1607 on): ``_ETW_BUFFER_QUEUE.QueueEntry``
  singly linked through ``_WMI_BUFFER_HEADER.SlistEntry`` (+0x20);
- ``CurrentBuffer``: an ``_EX_FAST_REF`` (the low four bits are a reference count, masked off).

Timestamps become UTC times with the logger's clock (`wmiforensics.etl.clock`): ``ClockType``, the
``ReferenceTime`` pair (``_ETW_REF_CLOCK`` {StartTime, StartPerfClock}) and the counter's frequency,
``KUSER_SHARED_DATA.QpcFrequency`` (0xFFFFF78000000000) for QPC and ``_KPRCB.MHz`` of processor 0
(``KiProcessorBlock[0]``) for the cycle counter.

Every walk is bounded (a seen set against loops, ``MAX_BUFFERS_PER_LOGGER``), every header is checked
before its buffer is read (size against the logger's ``BufferSize`` and 16 MiB, offsets inside the
buffer, state, type), and the records are walked within the bytes read.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Dict, Iterator, List, Optional, Tuple

from volatility3.framework import exceptions

from ..etl import format as etl_format
from ..etl.buffer import BufferHeader, check_buffer_header, parse_buffer_header, walk_records
from ..etl.clock import CLOCK_CYCLES, CLOCK_QPC, OUTSIDE, SessionClock
from .reader import EtwReader, Logger, SiloEtw

MAX_BUFFERS_PER_LOGGER = 65_536
FAST_REF_MASK = ~0xF
QPC_CLOCKS = (1, 3)  # ClockType: 1 QPC, 2 system time, 3 CPU cycle counter
KUSER_SHARED_DATA = 0xFFFF_F780_0000_0000


@dataclass
class RecoveredBuffer:
    silo: str
    logger: Logger
    address: int
    via: List[str]
    header: Optional[BufferHeader] = None
    data: bytes = b""
    problems: List[str] = field(default_factory=list)  # the buffer is not used
    notes: List[str] = field(default_factory=list)  # read and decoded, with these reservations
    events: int = 0
    first_timestamp: Optional[int] = None
    last_timestamp: Optional[int] = None
    first_time: Optional[datetime] = None
    last_time: Optional[datetime] = None

    @property
    def valid(self) -> bool:
        return not self.problems and bool(self.data)


@dataclass
class LoggerBuffers:
    silo: SiloEtw
    logger: Logger
    buffers: List[RecoveredBuffer]
    notes: List[str] = field(default_factory=list)
    start_perf_clock: int = 0
    reference_start_time: int = 0
    clock: SessionClock = SessionClock(0, 0, 0, 0)


class BufferRecovery:
    def __init__(self, reader: EtwReader) -> None:
        self.reader = reader
        self.entry_offset = member_offset(reader, "_WMI_BUFFER_HEADER", "GlobalEntry")
        self.slist_offset = member_offset(reader, "_WMI_BUFFER_HEADER", "SlistEntry")

    def loggers(self, silos: List[SiloEtw]) -> Iterator[LoggerBuffers]:
        for silo in silos:
            for logger in silo.loggers:
                if logger.problem is None:
                    yield self.logger_buffers(silo, logger)

    def _offset(self, member: str) -> Optional[int]:
        return member_offset(self.reader, "_WMI_LOGGER_CONTEXT", member)

    def logger_buffers(self, silo: SiloEtw, logger: Logger) -> LoggerBuffers:
        found: Dict[int, List[str]] = {}
        notes: List[str] = []
        for via, addresses in self._paths(logger.address, notes):
            for address in addresses:
                found.setdefault(address, []).append(via)
        result = LoggerBuffers(silo, logger, [], notes)
        result.reference_start_time, result.start_perf_clock = self._reference_time(logger.address)
        clock_type = logger.fields.get("ClockType")
        clock_type = clock_type if isinstance(clock_type, int) else 0
        result.clock = SessionClock(
            clock_type, result.reference_start_time, result.start_perf_clock, self.frequency(clock_type)
        )
        for address, via in found.items():
            result.buffers.append(self._buffer(silo, logger, address, via, result))
        if result.buffers and result.clock.problem:  # a logger without buffers has no times to lose
            notes.append(result.clock.problem)
        return result

    def frequency(self, clock_type: int) -> int:
        """Counts per second of the logger's clock, read where Windows keeps it (0 when unreadable)."""
        reader = self.reader
        if clock_type == CLOCK_QPC:
            offset = member_offset(reader, "_KUSER_SHARED_DATA", "QpcFrequency")
            return self._read_int(KUSER_SHARED_DATA + offset, 8) if offset is not None else 0
        if clock_type == CLOCK_CYCLES and reader.has_symbol("KiProcessorBlock"):
            prcb = reader.read_pointer(reader.symbol_address("KiProcessorBlock"))
            offset = member_offset(reader, "_KPRCB", "MHz")
            if prcb and offset is not None and reader.is_kernel_address(prcb):
                return self._read_int(prcb + offset, 4) * 1_000_000
        return 0

    def _read_int(self, address: int, size: int) -> int:
        with contextlib.suppress(exceptions.InvalidAddressException):
            return int.from_bytes(self.reader.layer.read(address, size), "little", signed=size == 8)
        return 0

    def _paths(self, context: int, notes: List[str]) -> Iterator[Tuple[str, List[int]]]:
        reader = self.reader
        global_list = self._offset("GlobalList")
        if global_list is not None and self.entry_offset is not None:
            yield "GlobalList", self._list(context + global_list, self.entry_offset, notes)
        for name in ("BufferQueue", "OverflowQueue"):
            queue = self._offset(name)
            entry = member_offset(reader, "_ETW_BUFFER_QUEUE", "QueueEntry")
            if queue is not None and entry is not None and self.slist_offset is not None:
                yield name, self._slist(context + queue + entry, self.slist_offset, name, notes)
        current = self._offset("CurrentBuffer")
        if current is not None:
            value = reader.read_pointer(context + current)
            if value and reader.is_kernel_address(value & FAST_REF_MASK):
                yield "CurrentBuffer", [value & FAST_REF_MASK]

    def _list(self, head: int, link: int, notes: List[str]) -> List[int]:
        out: List[int] = []
        seen = {head}
        cursor = self.reader.read_pointer(head)
        while cursor and cursor not in seen:
            if len(out) >= MAX_BUFFERS_PER_LOGGER:
                notes.append(f"GlobalList longer than {MAX_BUFFERS_PER_LOGGER} buffers: the rest is not read")
                return out
            if not self.reader.is_kernel_address(cursor):
                notes.append(f"GlobalList link {cursor:#x} is not a kernel address: the walk stops there")
                return out
            seen.add(cursor)
            out.append(cursor - link)
            cursor = self.reader.read_pointer(cursor)
        if cursor and cursor != head:
            notes.append(f"GlobalList loops back to {cursor:#x} without reaching its head")
        return out

    def _slist(self, first_link: int, link: int, name: str, notes: List[str]) -> List[int]:
        out: List[int] = []
        seen = set()
        cursor = self.reader.read_pointer(first_link)
        while cursor:
            if cursor in seen:
                notes.append(f"{name} loops back to {cursor:#x}")
                break
            if len(out) >= MAX_BUFFERS_PER_LOGGER or not self.reader.is_kernel_address(cursor):
                notes.append(f"{name} link {cursor:#x} is not followed")
                break
            seen.add(cursor)
            out.append(cursor - link)
            cursor = self.reader.read_pointer(cursor)
        return out

    def _reference_time(self, context: int) -> Tuple[int, int]:
        offset = self._offset("ReferenceTime")
        if offset is None:
            return 0, 0
        with contextlib.suppress(exceptions.InvalidAddressException):
            raw = self.reader.layer.read(context + offset, 16)
            # LARGE_INTEGERs: signed, so a hostile negative reference is refused by the clock
            return tuple(int.from_bytes(raw[at : at + 8], "little", signed=True) for at in (0, 8))
        return 0, 0

    def _buffer(
        self, silo: SiloEtw, logger: Logger, address: int, via: List[str], owner: LoggerBuffers
    ) -> RecoveredBuffer:
        item = RecoveredBuffer(silo.label, logger, address, via)
        layer = self.reader.layer
        try:
            head = layer.read(address, etl_format.BUFFER_HEADER_SIZE)
        except exceptions.InvalidAddressException:
            item.problems.append("header unreadable")
            return item
        item.header = parse_buffer_header(head)
        expected = logger.fields.get("BufferSize")
        problems = check_buffer_header(item.header, expected if isinstance(expected, int) else None)
        item.problems.extend(problems)
        if problems or item.header is None:
            return item
        logger_id = logger.fields.get("LoggerId")
        if item.header.logger_id != logger_id and item.header.state != 0:
            item.notes.append(f"ClientContext.LoggerId {item.header.logger_id} (the logger is {logger_id})")
        item.data = self._read(address, item.header.buffer_size, item.notes)
        self._timestamps(item, owner)
        return item

    def _read(self, address: int, size: int, notes: List[str]) -> bytes:
        """The buffer's bytes; unreadable pages become zeros and are noted."""
        try:
            return self.reader.layer.read(address, size)
        except exceptions.InvalidAddressException:
            data = bytearray()
            missing = 0
            page = 0x1000
            at = address
            while at < address + size:
                chunk = min(page - (at % page), address + size - at)
                try:
                    data += self.reader.layer.read(at, chunk)
                except exceptions.InvalidAddressException:
                    data += bytes(chunk)
                    missing += 1
                at += chunk
            notes.append(f"{missing} unreadable page(s) read as zeros")
            return bytes(data)

    def _timestamps(self, item: RecoveredBuffer, owner: LoggerBuffers) -> None:
        walk = walk_records(item.data)
        item.notes.extend(walk.notes)
        item.events = len(walk.records)
        stamps = [stamp for stamp in (_timestamp(raw.data, raw.kind) for raw in walk.records) if stamp]
        if stamps:
            item.first_timestamp, item.last_timestamp = min(stamps), max(stamps)
            converted = [owner.clock.to_filetime(stamp) for stamp in stamps]
            if owner.clock.problem is None and None in converted:
                item.notes.append(f"{converted.count(None)} {OUTSIDE}")
            item.first_time = owner.clock.convert(item.first_timestamp)[0]
            item.last_time = owner.clock.convert(item.last_timestamp)[0]
        header = item.header
        assert header is not None
        clock = item.logger.fields.get("ClockType")
        start = owner.start_perf_clock if clock in QPC_CLOCKS else item.logger.fields.get("StartTime", 0)
        late_enough = header.timestamp >= start and (item.first_timestamp or start) >= start
        if isinstance(start, int) and start and header.timestamp and header.state != 0 and not late_enough:
            item.notes.append("timestamps before the session started")


def member_offset(reader: EtwReader, type_name: str, member: str) -> Optional[int]:
    """The member's offset, or None where this build lacks it (Volatility raises IndexError then)."""
    with contextlib.suppress(IndexError):
        return reader.member_offset(type_name, member)
    return None


def _timestamp(data: bytes, kind: str) -> Optional[int]:
    """The record's timestamp field without a full decode (perfinfo +8, the others +0x10)."""
    at = 8 if kind == "perfinfo" else 0x10
    if kind in ("message", "unknown") or len(data) < at + 8:
        return None
    return int.from_bytes(data[at : at + 8], "little")
