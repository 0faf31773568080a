"""Buffers to events: every record of a buffer with its provider named and its fields decoded.

TraceLogging events decode from their own metadata; manifest events of the providers in `manifests`
from the layouts written there; kernel (system/perfinfo) events and everything else keep their raw user
data (hex). Provider names come from the TraceLogging provider traits, else the shared name table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional

from ..etw.knowledge import provider_name
from . import format as fmt
from . import manifests, tracelogging
from .buffer import walk_records
from .records import TraceRecord, decode_record

# EVENT_TRACE_GROUP_* of the kernel logger (evntrace.h), for system and perfinfo records.
KERNEL_GROUPS = {
    0x00: "Header", 0x01: "DiskIo", 0x02: "PageFault", 0x03: "Process", 0x04: "FileIo", 0x05: "Thread",
    0x06: "TcpIp", 0x07: "Job", 0x08: "UdpIp", 0x09: "Registry", 0x0A: "DbgPrint", 0x0B: "Config",
    0x0D: "Wnf", 0x0E: "Pool", 0x0F: "PerfInfo", 0x10: "Heap", 0x11: "Object", 0x12: "Power",
    0x13: "Modbound", 0x14: "Image", 0x15: "Dpc", 0x16: "Gdi", 0x17: "CritSec", 0x18: "StackWalk",
    0x19: "Ums", 0x1A: "Alpc", 0x1B: "SplitIo", 0x1C: "ThreadPool", 0x1D: "Hypervisor",
    0x1E: "HypervisorX",
}  # fmt: skip
MAX_RAW_SHOWN = 4096


@dataclass
class Event:
    record: TraceRecord
    provider_name: str
    event_name: str
    decoder: str  # "tracelogging", "manifest", "kernel", "raw"
    fields: Dict[str, object] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)

    @property
    def event_id(self) -> Optional[int]:
        return self.record.event_id


def name_provider(record: TraceRecord) -> str:
    if record.kind in ("system", "compact", "perfinfo"):
        group = KERNEL_GROUPS.get(record.group or 0, f"group {record.group:#x}")
        return f"NT Kernel Logger: {group}"
    if record.provider is None:
        return "-"
    return provider_name(record.provider) or "{" + record.provider + "}"


def decode_event(record: TraceRecord) -> Event:
    notes = list(record.notes)
    if record.kind == "event":
        schema = record.extended_item(fmt.EXT_TYPE_TRACELOGGING_SCHEMA)
        if schema is not None:
            traits = record.extended_item(fmt.EXT_TYPE_PROVIDER_TRAITS)
            try:
                decoded = tracelogging.decode(schema, record.user_data, traits)
            except tracelogging.TlError as error:
                notes.append(f"TraceLogging metadata: {error}")
            else:
                if decoded.note:
                    notes.append(decoded.note)
                name = decoded.provider_name or name_provider(record)
                return Event(record, name, decoded.event_name, "tracelogging", decoded.fields, notes)
    fields_layout = manifests.layout(record.provider, record.event_id, record.version)
    if record.kind == "event" and fields_layout is not None:
        values, note = manifests.decode(fields_layout, record.user_data)
        if note:
            notes.append(note)
        event_name = manifests.EVENT_NAMES.get((record.provider or "", record.event_id or 0), "")
        return Event(record, name_provider(record), event_name, "manifest", values, notes)
    decoder = "kernel" if record.kind in ("system", "compact", "perfinfo") else "raw"
    event_name = (
        f"type {record.event_type}" if decoder == "kernel" else f"event {record.event_id}"
        if record.event_id is not None else record.kind
    )  # fmt: skip
    raw = record.user_data[:MAX_RAW_SHOWN]
    if len(record.user_data) > MAX_RAW_SHOWN:
        notes.append(f"user data shown up to {MAX_RAW_SHOWN} of {len(record.user_data)} bytes")
    return Event(record, name_provider(record), event_name, decoder, {"UserData": raw}, notes)


def buffer_events(buffer: bytes, limit: Optional[int] = None) -> Iterator[Event]:
    """Every event of one buffer; walk problems come back as notes on a final marker-less event list."""
    walk = walk_records(buffer, limit)
    for raw in walk.records:
        yield decode_event(decode_record(raw))


def display_value(value: object, limit: int = 512) -> str:
    """A field value as one escaped line (strings from the input never reach a terminal raw)."""
    if isinstance(value, (bytes, bytearray)):
        text = bytes(value[:limit]).hex()
        return text + ("..." if len(value) > limit else "")
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={display_value(v, limit)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        shown = ", ".join(display_value(item, limit) for item in value[:64])
        return "[" + shown + ("...]" if len(value) > 64 else "]")
    escaped = escape_text(str(value))
    return escaped[:limit] + ("..." if len(escaped) > limit else "")


def escape_text(text: str) -> str:
    """Control and other non-printable characters as ``\\xNN``/``\\uNNNN``; paths keep their backslashes."""
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii") for char in text
    )
