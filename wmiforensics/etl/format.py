"""On-disk and in-memory layouts of ETW buffers and trace records, one place, close to the sources.

- ``_WMI_BUFFER_HEADER`` (0x48 bytes on every 64-bit build from 7601 to 22000, same offsets in the
  ntoskrnl ISFs): https://www.geoffchappell.com/studies/windows/km/ntoskrnl/api/etw/tracelog/wmi_buffer_header.htm
- Trace header kinds (the byte at +2 of every record, with 0xC0 or 0x80 flags at +3):
  https://www.geoffchappell.com/studies/windows/km/ntoskrnl/api/etw/tracelog/trace_header_type.htm
- ``SYSTEM_TRACE_HEADER``, ``PERFINFO_TRACE_HEADER``, ``EVENT_TRACE_HEADER``,
  ``EVENT_INSTANCE_GUID_HEADER``, ``EVENT_HEADER`` (evntcons.h, evntrace.h):
  https://learn.microsoft.com/en-us/windows/win32/api/evntcons/ns-evntcons-event_header
- ``TRACE_LOGFILE_HEADER`` (evntrace.h), the first record of every ``.etl`` file:
  https://learn.microsoft.com/en-us/windows/win32/api/evntrace/ns-evntrace-trace_logfile_header
"""

from __future__ import annotations

import struct
import uuid

# _WMI_BUFFER_HEADER (offsets as in the ISFs: BufferSize +0, SavedOffset +4, CurrentOffset +8,
# ReferenceCount +0xC, TimeStamp +0x10, SequenceNumber +0x18, NextBuffer/SlistEntry/ClockType +0x20,
# ClientContext {ProcessorNumber, Alignment, LoggerId} +0x28, State +0x2C, Offset +0x30,
# BufferFlag +0x34, BufferType +0x36, GlobalEntry/ReferenceTime/Padding1 +0x38).
BUFFER_HEADER = struct.Struct("<IIIiqqQBBHIIHH16s")
BUFFER_HEADER_SIZE = 0x48
NEXT_BUFFER_OFFSET = 0x20
GLOBAL_ENTRY_OFFSET = 0x38

BUFFER_STATES = {
    0: "free",
    1: "general logging",
    2: "context swap",
    3: "flush",
    4: "pending compression",
    5: "compressed",
    6: "placeholder",
}
BUFFER_TYPES = {
    0: "generic",
    1: "rundown",
    2: "context swap",
    3: "reference time",
    4: "header",
    5: "batched",
    6: "empty marker",
    7: "debug info",
    8: "maximum",
}
BUFFER_FLAGS = {
    0x1: "flush marker",
    0x2: "events lost",
    0x4: "buffer lost",
    0x8: "real-time backup corrupt",
    0x10: "real-time backup",
    0x20: "processor index",
    0x40: "compressed",
}
BUFFER_FLAG_COMPRESSED = 0x40
BUFFER_TYPE_HEADER = 4

# Trace header kinds (byte +2 of a record).
SYSTEM32, SYSTEM64, COMPACT32, COMPACT64 = 0x01, 0x02, 0x03, 0x04
FULL_HEADER32, INSTANCE32, TIMED, ERROR, WNODE_HEADER, MESSAGE = 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F
PERFINFO32, PERFINFO64 = 0x10, 0x11
EVENT_HEADER32, EVENT_HEADER64 = 0x12, 0x13
FULL_HEADER64, INSTANCE64 = 0x14, 0x15
HEADER_KINDS = {
    SYSTEM32: "system",
    SYSTEM64: "system",
    COMPACT32: "compact",
    COMPACT64: "compact",
    FULL_HEADER32: "full",
    FULL_HEADER64: "full",
    INSTANCE32: "instance",
    INSTANCE64: "instance",
    PERFINFO32: "perfinfo",
    PERFINFO64: "perfinfo",
    EVENT_HEADER32: "event",
    EVENT_HEADER64: "event",
}
TRACE_HEADER_FLAG = 0x80  # bit 7 of byte +3: a header with a type in byte +2
# TraceMessage records: ULONG marker TRACE_HEADER_FLAG | TRACE_MESSAGE (0x90000000) | message flags | size.
MESSAGE_MARKER = 0x90  # byte +3

# SYSTEM_TRACE_HEADER: Version USHORT, HeaderType UCHAR, Flags UCHAR, Size USHORT, HookId USHORT
# (Type UCHAR, Group UCHAR), ThreadId, ProcessId, SystemTime, [KernelTime, UserTime] (compact: none).
SYSTEM_HEADER = struct.Struct("<HBBHBBIIq")
SYSTEM_TIMES = struct.Struct("<II")
# PERFINFO_TRACE_HEADER: Version, HeaderType, Flags, Size, Type, Group, SystemTime.
PERFINFO_HEADER = struct.Struct("<HBBHBBq")
# EVENT_TRACE_HEADER (full): Size, HeaderType, Flags, Class {Type, Level, Version USHORT}, ThreadId,
# ProcessId, TimeStamp, Guid, ProcessorTime (or KernelTime + UserTime).
FULL_HEADER = struct.Struct("<HBBBBHIIq16sQ")
# EVENT_INSTANCE_GUID_HEADER: the full header, then InstanceId, ParentInstanceId, ParentGuid.
INSTANCE_TAIL = struct.Struct("<II16s")
# EVENT_HEADER: Size, HeaderType, Flags (MarkerFlags), Flags USHORT, EventProperty USHORT, ThreadId,
# ProcessId, TimeStamp, ProviderId, EventDescriptor {Id USHORT, Version, Channel, Level, Opcode UCHAR,
# Task USHORT, Keyword ULONGLONG}, ProcessorTime, ActivityId.
EVENT_HEADER = struct.Struct("<HBBHHIIq16sHBBBBHQQ16s")
# Extended data item in a buffer: ItemSize (8-aligned, with this header), ExtType, Linkage (bit 0: more
# items follow), DataSize.
EXTENDED_ITEM = struct.Struct("<HHHH")
# TraceMessage record: Size USHORT, Flags USHORT (0x9000 | ...), then MessageNumber, Flags, GUID, TID, PID
# (the layout etl-parser's WinTrace reads and Windows' TraceMessage writes for these flags).
MESSAGE_HEADER = struct.Struct("<HHHH16sII")

EVENT_HEADER_FLAG_EXTENDED_INFO = 0x0001
EVENT_HEADER_FLAG_32_BIT_HEADER = 0x0020

EXT_TYPES = {
    1: "related activity id",
    2: "sid",
    3: "terminal session id",
    4: "instance info",
    5: "stack trace 32",
    6: "stack trace 64",
    7: "pebs index",
    8: "pmc counters",
    9: "pstate",
    10: "event key",
    11: "event schema (TraceLogging)",
    12: "provider traits",
    13: "process start key",
    14: "control guid",
    15: "qpc delta",
    16: "container id",
    17: "stack key 32",
    18: "stack key 64",
}
EXT_TYPE_TRACELOGGING_SCHEMA = 11
EXT_TYPE_PROVIDER_TRAITS = 12

# TRACE_LOGFILE_HEADER with 64-bit pointers, as the header record (group 0, type 0, version 2) holds it.
LOGFILE_HEADER = struct.Struct("<IIIIqIIIIIIIIQQ176sqqqII")
LOGFILE_HEADER_HOOK = 0x0000
LOGFILE_HEADER_VERSION = 2

RECORD_ALIGNMENT = 8
MAX_BUFFER_SIZE = 16 * 1024 * 1024  # logger buffers are at most 16 MiB (BufferSize is in KiB, <= 16384)


def guid_text(raw: bytes) -> str:
    """A little-endian GUID as Windows prints it (upper case, no braces); '?' if short."""
    if len(raw) < 16:
        return "?"
    return str(uuid.UUID(bytes_le=bytes(raw[:16]))).upper()


def guid_bytes(text: str) -> bytes:
    return uuid.UUID(text.strip("{}")).bytes_le


def align(value: int, boundary: int = RECORD_ALIGNMENT) -> int:
    return (value + boundary - 1) & ~(boundary - 1)
