"""Trace records of every header kind a buffer holds, decoded to one shape (`TraceRecord`).

Layouts are in `format`; each decoder reads only the record's own bytes (its size was checked by
`buffer.walk_records`), so a header field that points past the record is clipped and noted.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from . import format as fmt
from .buffer import RawRecord


@dataclass
class TraceRecord:
    kind: str
    header_type: int
    offset: int
    size: int
    thread_id: Optional[int] = None
    process_id: Optional[int] = None
    timestamp: Optional[int] = None
    provider: Optional[str] = None  # GUID text
    version: int = 0
    group: Optional[int] = None  # system/perfinfo hook: group and type
    event_type: Optional[int] = None
    event_id: Optional[int] = None
    level: Optional[int] = None
    opcode: Optional[int] = None
    task: Optional[int] = None
    keyword: Optional[int] = None
    channel: Optional[int] = None
    flags: int = 0
    event_property: int = 0
    kernel_time: Optional[int] = None
    user_time: Optional[int] = None
    processor_time: Optional[int] = None
    activity_id: Optional[str] = None
    instance_id: Optional[int] = None
    parent_instance_id: Optional[int] = None
    parent_guid: Optional[str] = None
    extended: List[Tuple[int, bytes]] = field(default_factory=list)
    user_data: bytes = b""
    notes: List[str] = field(default_factory=list)

    def extended_item(self, ext_type: int) -> Optional[bytes]:
        return next((data for kind, data in self.extended if kind == ext_type), None)

    def summary(self) -> Dict[str, object]:
        """Header fields that identify the record (for display and comparison)."""
        keys = ("kind", "thread_id", "process_id", "timestamp", "provider", "event_id", "version")
        return {key: getattr(self, key) for key in keys}


def decode_record(raw: RawRecord) -> TraceRecord:
    decoder = _DECODERS.get(raw.kind, _unknown)
    return decoder(raw)


def _base(raw: RawRecord) -> TraceRecord:
    return TraceRecord(raw.kind, raw.header_type, raw.offset, len(raw.data))


def _unpack(raw: RawRecord, layout: struct.Struct, size: int = 0) -> Tuple[TraceRecord, Optional[tuple]]:
    """The record shell and its header fields, or None (noted) when the record is shorter."""
    record = _base(raw)
    if len(raw.data) < max(size, layout.size):
        record.notes.append(f"{raw.kind} header truncated")
        return record, None
    return record, layout.unpack_from(raw.data, 0)


def _system(raw: RawRecord) -> TraceRecord:
    record, values = _unpack(raw, fmt.SYSTEM_HEADER)
    if values is None:
        return record
    data = raw.data
    version, _, _, _, event_type, group, tid, pid, stamp = values
    record.version, record.event_type, record.group = version, event_type, group
    record.thread_id, record.process_id, record.timestamp = tid, pid, stamp
    start = fmt.SYSTEM_HEADER.size
    if raw.kind == "system":
        if len(data) < start + fmt.SYSTEM_TIMES.size:
            record.notes.append("system header times truncated")
            return record
        record.kernel_time, record.user_time = fmt.SYSTEM_TIMES.unpack_from(data, start)
        start += fmt.SYSTEM_TIMES.size
    record.user_data = data[start:]
    return record


def _perfinfo(raw: RawRecord) -> TraceRecord:
    record, values = _unpack(raw, fmt.PERFINFO_HEADER)
    if values is None:
        return record
    version, _, _, _, event_type, group, stamp = values
    record.version, record.event_type, record.group, record.timestamp = version, event_type, group, stamp
    record.user_data = raw.data[fmt.PERFINFO_HEADER.size :]
    return record


def _full(raw: RawRecord) -> TraceRecord:
    size = fmt.FULL_HEADER.size + (fmt.INSTANCE_TAIL.size if raw.kind == "instance" else 0)
    record, values = _unpack(raw, fmt.FULL_HEADER, size)
    if values is None:
        return record
    data = raw.data
    _, _, _, event_type, level, version, tid, pid, stamp, guid, cpu = values
    record.event_type, record.level, record.version = event_type, level, version
    record.thread_id, record.process_id, record.timestamp = tid, pid, stamp
    record.provider, record.processor_time = fmt.guid_text(guid), cpu
    if raw.kind == "instance":
        instance, parent, parent_guid = fmt.INSTANCE_TAIL.unpack_from(data, fmt.FULL_HEADER.size)
        record.instance_id, record.parent_instance_id = instance, parent
        record.parent_guid = fmt.guid_text(parent_guid)
    record.user_data = data[size:]
    return record


def _event(raw: RawRecord) -> TraceRecord:
    record, values = _unpack(raw, fmt.EVENT_HEADER)
    if values is None:
        return record
    data = raw.data
    (_, _, _, flags, prop, tid, pid, stamp, provider, event_id, version, channel, level, opcode, task,
     keyword, cpu, activity) = values  # fmt: skip
    record.flags, record.event_property = flags, prop
    record.thread_id, record.process_id, record.timestamp = tid, pid, stamp
    record.provider, record.event_id, record.version = fmt.guid_text(provider), event_id, version
    record.channel, record.level, record.opcode, record.task, record.keyword = (
        channel, level, opcode, task, keyword,
    )  # fmt: skip
    record.processor_time, record.activity_id = cpu, fmt.guid_text(activity)
    at = fmt.EVENT_HEADER.size
    if flags & fmt.EVENT_HEADER_FLAG_EXTENDED_INFO:
        at = _extended_items(record, data, at)
    record.user_data = data[at:]
    return record


def _extended_items(record: TraceRecord, data: bytes, at: int) -> int:
    """Items follow the header while each one's Linkage bit says another follows (bounded by bytes)."""
    while True:
        if at + fmt.EXTENDED_ITEM.size > len(data):
            record.notes.append("extended data item runs past the record")
            return len(data)
        _, ext_type, linkage, data_size = fmt.EXTENDED_ITEM.unpack_from(data, at)
        start = at + fmt.EXTENDED_ITEM.size
        if start + data_size > len(data):
            record.notes.append(f"extended data item of {data_size} bytes runs past the record")
            return len(data)
        record.extended.append((ext_type, data[start : start + data_size]))
        at = start + fmt.align(data_size)
        if not linkage & 1:
            return min(at, len(data))


def _message(raw: RawRecord) -> TraceRecord:
    record = _base(raw)
    data = raw.data
    if len(data) >= fmt.MESSAGE_HEADER.size:
        _, marker, number, flags, guid, tid, pid = fmt.MESSAGE_HEADER.unpack_from(data, 0)
        record.flags, record.event_id, record.provider = marker, number, fmt.guid_text(guid)
        record.thread_id, record.process_id = tid, pid
        record.user_data = data[fmt.MESSAGE_HEADER.size :]
    else:
        record.notes.append("message header truncated")
    return record


def _unknown(raw: RawRecord) -> TraceRecord:
    record = _base(raw)
    record.user_data = raw.data
    record.notes.append(f"header type {raw.header_type:#x} is not decoded")
    return record


_DECODERS = {
    "system": _system,
    "compact": _system,
    "perfinfo": _perfinfo,
    "full": _full,
    "instance": _full,
    "event": _event,
    "message": _message,
}
