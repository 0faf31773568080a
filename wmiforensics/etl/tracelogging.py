"""TraceLogging events decoded from their own self-describing metadata (extended item type 11).

Metadata layout (TraceLoggingProvider.h, "TraceLogging metadata" in the Windows SDK):
``UINT16 Size; UINT8 Tags[] (while bit 7); CHAR EventName[]; fields*`` where each field is
``CHAR Name[]; UINT8 InType; [UINT8 OutType if InType bit 7; UINT8 Tags[] while OutType bit 7];
[UINT16 Count if InType & 0x60 == 0x20 (constant count)]; [UINT16 Size + info if custom (0x60)]``.
InType bits 0x60: 0x20 constant-count array, 0x40 variable-count array (UINT16 count in the data).
A STRUCT's OutType byte is the number of fields that belong to it.
https://learn.microsoft.com/en-us/windows/win32/api/traceloggingprovider/
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from .format import guid_text
from .manifests import sid_text

IN_TYPE_MASK = 0x1F
IN_FLAG_MASK = 0x60
IN_CCOUNT, IN_VCOUNT, IN_CUSTOM = 0x20, 0x40, 0x60
CHAIN = 0x80
STRUCT = 24
MAX_FIELDS = 1024
MAX_ARRAY = 65_535
MAX_DEPTH = 32  # nested STRUCTs followed
MAX_VALUES = 100_000  # values decoded per event (empty structs in arrays cost no bytes)

_FIXED = {
    3: "<b", 4: "<B", 5: "<h", 6: "<H", 7: "<i", 8: "<I", 9: "<q", 10: "<Q", 11: "<f", 12: "<d",
    13: "<i", 17: "<Q", 20: "<I", 21: "<Q",
}  # fmt: skip
IN_TYPE_NAMES = {
    0: "null", 1: "unicode string", 2: "ansi string", 3: "int8", 4: "uint8", 5: "int16", 6: "uint16",
    7: "int32", 8: "uint32", 9: "int64", 10: "uint64", 11: "float", 12: "double", 13: "bool32",
    14: "binary", 15: "guid", 16: "pointer", 17: "filetime", 18: "systemtime", 19: "sid",
    20: "hexint32", 21: "hexint64", 22: "counted string", 23: "counted ansi string", 24: "struct",
    25: "counted binary",
}  # fmt: skip


@dataclass
class TlField:
    name: str
    in_type: int
    out_type: int = 0
    count: int = 0  # constant count (IN_CCOUNT)
    members: List[TlField] = field(default_factory=list)  # STRUCT


@dataclass
class TlSchema:
    event_name: str
    fields: List[TlField]


class TlError(ValueError):
    pass


def _cstring(data: bytes, at: int) -> Tuple[str, int]:
    end = data.find(b"\0", at)
    if end < 0:
        raise TlError("unterminated name in TraceLogging metadata")
    return data[at:end].decode("utf-8", "replace"), end + 1


def _byte(data: bytes, at: int) -> int:
    if at >= len(data):
        raise TlError("TraceLogging metadata ends inside a field")
    return data[at]


def parse_schema(meta: bytes) -> TlSchema:
    if len(meta) < 3:
        raise TlError("TraceLogging metadata shorter than its header")
    size = min(int.from_bytes(meta[:2], "little"), len(meta))
    data = meta[:size]
    at = 2
    while _byte(data, at) & CHAIN:
        at += 1
    at += 1
    name, at = _cstring(data, at)
    flat: List[TlField] = []
    while at < len(data) and len(flat) < MAX_FIELDS:
        field_name, at = _cstring(data, at)
        in_type = _byte(data, at)
        at += 1
        out_type = 0
        if in_type & CHAIN:
            out_type = _byte(data, at)
            at += 1
            if out_type & CHAIN:
                while _byte(data, at) & CHAIN:
                    at += 1
                at += 1
        item = TlField(field_name, in_type & 0x7F, out_type & 0x7F)
        if item.in_type & IN_FLAG_MASK == IN_CCOUNT:
            item.count = int.from_bytes(data[at : at + 2], "little")
            at += 2
        elif item.in_type & IN_FLAG_MASK == IN_CUSTOM:
            info = int.from_bytes(data[at : at + 2], "little")
            at += 2 + info
        flat.append(item)
    return TlSchema(name, _nest(flat))


def _nest(flat: List[TlField]) -> List[TlField]:
    """Give each STRUCT the fields that follow it (its OutType is their number)."""
    items = list(flat)
    out: List[TlField] = []

    def take(depth: int) -> TlField:
        item = items.pop(0)
        if item.in_type & IN_TYPE_MASK == STRUCT and depth < MAX_DEPTH:
            for _ in range(min(item.out_type, len(items))):
                item.members.append(take(depth + 1))
        return item

    while items:
        out.append(take(0))
    return out


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0
        self.values = 0

    def count(self) -> None:
        self.values += 1
        if self.values > MAX_VALUES:
            raise TlError(f"more than {MAX_VALUES} values in one event")

    def take(self, size: int) -> bytes:
        if self.at + size > len(self.data):
            raise TlError("TraceLogging user data ends inside a field")
        chunk = self.data[self.at : self.at + size]
        self.at += size
        return chunk

    def until(self, terminator: bytes, step: int) -> bytes:
        at = self.at
        while True:
            if at + step > len(self.data):
                raise TlError("unterminated string in TraceLogging user data")
            if self.data[at : at + step] == terminator:
                value = self.data[self.at : at]
                self.at = at + step
                return value
            at += step


def _value(reader: _Reader, item: TlField) -> object:
    reader.count()
    base = item.in_type & IN_TYPE_MASK
    if base == STRUCT:
        return {member.name: _field(reader, member) for member in item.members}
    if base in _FIXED:
        code = _FIXED[base]
        (value,) = struct.unpack(code, reader.take(struct.calcsize(code)))
        return bool(value) if base == 13 else value
    if base == 1:
        return reader.until(b"\0\0", 2).decode("utf-16-le", "replace")
    if base == 2:
        return reader.until(b"\0", 1).decode("latin-1")
    if base in (22, 23, 25, 14):
        length = int.from_bytes(reader.take(2), "little")
        raw = reader.take(length)
        if base == 22:
            return raw.decode("utf-16-le", "replace")
        if base == 23:
            return raw.decode("latin-1")
        return raw
    if base == 15:
        return guid_text(reader.take(16))
    if base == 18:
        return list(struct.unpack("<8h", reader.take(16)))
    if base == 19:
        head = reader.take(8)
        return sid_text(head + reader.take(4 * head[1]))
    raise TlError(f"TraceLogging in-type {base} is not decoded")


def _field(reader: _Reader, item: TlField) -> object:
    flag = item.in_type & IN_FLAG_MASK
    if flag in (IN_CCOUNT, IN_VCOUNT):
        count = item.count if flag == IN_CCOUNT else int.from_bytes(reader.take(2), "little")
        base = item.in_type & IN_TYPE_MASK
        if base in (4, 14) and flag == IN_VCOUNT:  # a byte array: keep it as bytes
            return reader.take(count)
        return [_value(reader, item) for _ in range(min(count, MAX_ARRAY))]
    if flag == IN_CUSTOM:
        length = int.from_bytes(reader.take(2), "little")
        return reader.take(length)
    return _value(reader, item)


@dataclass
class TlEvent:
    provider_name: Optional[str]
    event_name: str
    fields: Dict[str, object]
    note: Optional[str] = None


def provider_name(traits: Optional[bytes]) -> Optional[str]:
    """Provider name from the provider-traits item (type 12): UINT16 size, then a nul-terminated name."""
    if not traits or len(traits) < 3:
        return None
    try:
        return _cstring(traits, 2)[0]
    except TlError:
        return None


def decode(meta: bytes, user_data: bytes, traits: Optional[bytes] = None) -> TlEvent:
    schema = parse_schema(meta)
    reader = _Reader(user_data)
    values: Dict[str, object] = {}
    note = None
    for item in schema.fields:
        try:
            values[item.name] = _field(reader, item)
        except TlError as error:
            note = f"{item.name}: {error}"
            break
    return TlEvent(provider_name(traits), schema.event_name, values, note)
