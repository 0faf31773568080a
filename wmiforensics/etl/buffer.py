"""One ETW buffer: its ``_WMI_BUFFER_HEADER`` checked, then its trace records walked within its bytes.

Nothing a header or record says is trusted: the used length is clipped to the buffer, a record must
fit in what is left, a size of 0 or one that would step backwards ends the walk with a note, and the
number of records is bounded by the bytes (a record is at least 8 bytes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from . import format as fmt


@dataclass
class BufferHeader:
    buffer_size: int
    saved_offset: int
    current_offset: int
    reference_count: int
    timestamp: int
    sequence_number: int
    next_buffer: int
    processor: int
    logger_id: int
    state: int
    offset: int
    flags: int
    buffer_type: int

    @property
    def state_name(self) -> str:
        return fmt.BUFFER_STATES.get(self.state, f"state {self.state}")

    @property
    def type_name(self) -> str:
        return fmt.BUFFER_TYPES.get(self.buffer_type, f"type {self.buffer_type}")

    @property
    def flag_names(self) -> str:
        names = [name for bit, name in fmt.BUFFER_FLAGS.items() if self.flags & bit]
        return ", ".join(names) or "normal"


def parse_buffer_header(data: bytes) -> Optional[BufferHeader]:
    if len(data) < fmt.BUFFER_HEADER_SIZE:
        return None
    (size, saved, current, refs, stamp, sequence, nxt, processor, _align, logger, state, offset, flags,
     kind, _pad) = fmt.BUFFER_HEADER.unpack_from(data, 0)  # fmt: skip
    return BufferHeader(
        size, saved, current, refs, stamp, sequence, nxt, processor, logger, state, offset, flags, kind
    )


def used_length(header: BufferHeader) -> int:
    """Bytes of the buffer that hold records: SavedOffset once flushed, else Offset/CurrentOffset."""
    for candidate in (header.saved_offset, header.offset, header.current_offset):
        if fmt.BUFFER_HEADER_SIZE <= candidate <= header.buffer_size:
            return candidate
    return fmt.BUFFER_HEADER_SIZE


def check_buffer_header(
    header: Optional[BufferHeader], expected_size: Optional[int] = None, logger_id: Optional[int] = None
) -> List[str]:
    """Reasons this is not a plausible buffer header (empty list: plausible)."""
    if header is None:
        return ["shorter than a buffer header"]
    problems = []
    size = header.buffer_size
    if not fmt.BUFFER_HEADER_SIZE < size <= fmt.MAX_BUFFER_SIZE or size % 8:
        problems.append(f"BufferSize {size:#x} is not a plausible buffer size")
    elif expected_size and size != expected_size:
        problems.append(f"BufferSize {size:#x} differs from the logger's {expected_size:#x}")
    if header.saved_offset and not fmt.BUFFER_HEADER_SIZE <= header.saved_offset <= size:
        problems.append(f"SavedOffset {header.saved_offset:#x} lies outside the buffer")
    if not fmt.BUFFER_HEADER_SIZE <= header.offset <= max(size, fmt.BUFFER_HEADER_SIZE):
        problems.append(f"Offset {header.offset:#x} lies outside the buffer")
    if header.state not in fmt.BUFFER_STATES:
        problems.append(f"State {header.state} is not a buffer state")
    if header.buffer_type not in fmt.BUFFER_TYPES:
        problems.append(f"BufferType {header.buffer_type} is not a buffer type")
    if logger_id is not None and header.logger_id not in (logger_id, 0) and header.state != 0:
        problems.append(f"ClientContext.LoggerId {header.logger_id} is not the logger's {logger_id}")
    return problems


@dataclass
class RawRecord:
    """One record's bytes and where it sits in its buffer."""

    offset: int
    kind: str
    header_type: int
    data: bytes


@dataclass
class Walk:
    records: List[RawRecord] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)


def record_size(data: bytes, at: int) -> Tuple[Optional[int], int, str]:
    """(size, header type, kind) of the record at ``at``; size None when no record starts there."""
    if at + 4 > len(data):
        return None, 0, "end"
    size = int.from_bytes(data[at : at + 2], "little")
    header_type = data[at + 2]
    flags = data[at + 3]
    if flags == fmt.MESSAGE_MARKER:
        return size, fmt.MESSAGE, "message"
    if flags & fmt.TRACE_HEADER_FLAG and header_type in fmt.HEADER_KINDS:
        kind = fmt.HEADER_KINDS[header_type]
        if kind in ("system", "compact", "perfinfo"):
            # these keep the record size in the packet (+4); +0 is the header version
            if at + 8 > len(data):
                return None, header_type, kind
            size = int.from_bytes(data[at + 4 : at + 6], "little")
        return size, header_type, kind
    return None, header_type, "unknown"


def walk_records(buffer: bytes, limit: Optional[int] = None) -> Walk:
    """Records between the buffer header and its used length, each 8-byte aligned."""
    walk = Walk()
    header = parse_buffer_header(buffer)
    if header is None:
        walk.notes.append("buffer shorter than its header")
        return walk
    end = min(used_length(header), len(buffer))
    if header.flags & fmt.BUFFER_FLAG_COMPRESSED:
        walk.notes.append("compressed buffer: records not decoded")
        return walk
    at = fmt.BUFFER_HEADER_SIZE
    while at < end:
        if limit is not None and len(walk.records) >= limit:
            walk.notes.append(f"stopped after {limit} records")
            break
        if end - at >= 4 and buffer[at : at + 4] == b"\xff\xff\xff\xff":
            break  # the fill pattern after the last record
        size, header_type, kind = record_size(buffer, at)
        if size is None:
            walk.notes.append(
                f"+{at:#x}: no trace header (type byte {header_type:#x}); rest of buffer skipped"
            )
            break
        if size < 8:
            walk.notes.append(f"+{at:#x}: record size {size} is too small; rest of buffer skipped")
            break
        if at + size > end:
            walk.notes.append(f"+{at:#x}: record of {size} bytes runs past the used length {end:#x}")
            break
        walk.records.append(RawRecord(at, kind, header_type, bytes(buffer[at : at + size])))
        at += fmt.align(size)
    return walk
