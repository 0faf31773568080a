"""DCOM request bodies of WMI calls: [MS-DCOM] ORPCTHIS followed by [MS-WMI] method arguments (NDR).

A request body is anchored by its ORPCTHIS COMVERSION (5.x) and accepted only when the arguments
that follow parse exactly as one of these shapes:

* ``BSTR BSTR lFlags pCtx ...``: ``IWbemServices::ExecQuery``/``ExecNotificationQuery`` (first string
  is the query language) or ``ExecMethod`` (object path, method name, then ``pInParams``);
* ``BSTR lFlags pCtx ...``: a call that names one object path or namespace (``GetObject``,
  ``OpenNamespace``, ``DeleteInstance``, ``CreateInstanceEnum``, ...);
* ``LPWSTR LPWSTR pCtx``: ``IWbemLevel1Login::NTLMLogin`` (namespace, locale);
* ``MInterfacePointer lFlags pCtx``: ``PutInstance``/``PutClass`` (an OBJREF_CUSTOM object).

ORPCTHIS may carry extensions ([MS-DCOM] 2.2.13.2 ORPC_EXTENT_ARRAY, deferred after the
ORPCTHIS as NDR lays out a top-level argument's pointees): at most :data:`MAX_EXTENTS` extents of at
most :data:`MAX_EXTENT_BYTES` each are accepted, every count checked against the bytes.

References: [MS-DCOM] 2.2.13 ORPCTHIS, 2.2.18 OBJREF; [MS-WMI] 3.1.4.3 IWbemServices,
3.1.4.1 IWbemLevel1Login; [MS-OAUT] 2.2.23 BSTR (FLAGGED_WORD_BLOB); [C706] NDR conformant arrays.
"""

from __future__ import annotations

import re
import struct
import uuid
from dataclasses import dataclass
from typing import Optional, Tuple

from construct import Int16ul, Int32ul, Padding, Struct

from ..minidump.structs import FlatRecord

# [MS-DCOM] 2.2.13.1 ORPCTHIS (COMVERSION, flags, reserved1, cid, extensions pointer)
ORPCTHIS_LAYOUT = Struct(
    "MajorVersion" / Int16ul,
    "MinorVersion" / Int16ul,
    "flags" / Int32ul,
    "reserved1" / Int32ul,
    "cid" / Padding(16),  # causality id: not needed here
    "extensions" / Int32ul,
)
ORPCTHIS = FlatRecord(ORPCTHIS_LAYOUT, "Orpcthis")
ORPCTHIS_SIZE = ORPCTHIS.size
ANCHOR = b"\x05\x00\x07\x00"
MAX_EXTENTS = 16
MAX_EXTENT_BYTES = 64 << 10
ORPC_EXTENT_HEADER = 4 + 16 + 4  # conformance (hoisted), id, size
MAX_STRING_CHARS = 32768
OBJREF_SIGNATURE = b"MEOW"
OBJREF_CUSTOM_DATA = 4 + 4 + 16 + 16 + 4 + 4  # [MS-DCOM] 2.2.18.6: signature .. ObjectReferenceSize
_U32 = struct.Struct("<I")
_PRINTABLE = re.compile(r"^[\x20-\x7e\u00a0-\uffff\t\r\n]*$")


@dataclass
class Request:
    """One recognised request body: which call, and its string arguments."""

    address: int
    size: int
    operation: str
    strings: Tuple[str, ...]
    flags: Optional[int]
    #: Offset of an OBJREF_CUSTOM's encoding unit inside the body (ExecMethod, PutInstance).
    unit_offset: Optional[int] = None
    #: ORPCTHIS extensions: (GUID, data size) of each ORPC_EXTENT.
    extensions: Tuple[Tuple[str, int], ...] = ()


def _u32(data: bytes, pos: int) -> Optional[int]:
    return _U32.unpack_from(data, pos)[0] if pos + 4 <= len(data) else None


def _align(pos: int) -> int:
    return (pos + 3) & ~3


def _bstr(data: bytes, pos: int) -> Optional[Tuple[str, int]]:
    """A unique pointer to a FLAGGED_WORD_BLOB: referent, MaxCount, cBytes, clSize, UTF-16 chars."""
    if pos + 16 > len(data):
        return None
    referent, maximum, byte_count, count = struct.unpack_from("<4I", data, pos)
    if not referent or maximum != count or byte_count != 2 * count or not 0 < count <= MAX_STRING_CHARS:
        return None
    return _utf16(data, pos + 16, count)


def _utf16(data: bytes, start: int, count: int) -> Optional[Tuple[str, int]]:
    """``count`` UTF-16 characters at ``start`` if they are printable text, and the aligned end."""
    end = start + 2 * count
    if end > len(data):
        return None
    text = data[start:end].decode("utf-16-le", "replace").rstrip("\0")
    if not text or not _PRINTABLE.match(text) or "\ufffd" in text:
        return None
    return text, _align(end)


def _lpwstr(data: bytes, pos: int) -> Optional[Tuple[str, int]]:
    """A unique pointer to a conformant varying string: referent, MaxCount, Offset, ActualCount."""
    if pos + 16 > len(data):
        return None
    referent, maximum, offset, actual = struct.unpack_from("<4I", data, pos)
    if not referent or offset != 0 or not 0 < actual <= maximum <= MAX_STRING_CHARS:
        return None
    return _utf16(data, pos + 16, actual)


_EVENT_QUERY = re.compile(r"\b(__\w*Event|WITHIN\s+\d)", re.IGNORECASE)


def _interface_pointer(data: bytes, pos: int) -> Optional[int]:
    """Offset of the encoding unit in a unique pointer to MInterfacePointer holding OBJREF_CUSTOM."""
    if pos + 12 + OBJREF_CUSTOM_DATA > len(data):
        return None
    referent, count, maximum = struct.unpack_from("<3I", data, pos)
    if not referent or count != maximum or data[pos + 12 : pos + 16] != OBJREF_SIGNATURE:
        return None
    return pos + 12 + OBJREF_CUSTOM_DATA


def _extent_array(data: bytes, pos: int) -> Optional[Tuple[Tuple[Tuple[str, int], ...], int]]:
    """[MS-DCOM] 2.2.13.2 ORPC_EXTENT_ARRAY at ``pos`` (size, reserved, unique pointer to a conformant
    array of unique pointers to ORPC_EXTENT {id, size, byte data[(size + 7) & ~7]}): the extents and
    the offset after them, or None when any count or size does not fit."""
    if pos + 12 > len(data):
        return None
    size, _reserved, array_ref = struct.unpack_from("<3I", data, pos)
    cursor = pos + 12
    if not array_ref:
        return ((), cursor) if size == 0 else None
    if not 0 < size <= MAX_EXTENTS or _u32(data, cursor) != (size + 1) & ~1:
        return None
    count = (size + 1) & ~1
    if cursor + 4 + 4 * count > len(data):
        return None
    pointers = struct.unpack_from(f"<{count}I", data, cursor + 4)
    cursor += 4 + 4 * count
    extents = []
    for pointer in pointers:
        if not pointer:
            continue
        if cursor + ORPC_EXTENT_HEADER > len(data):
            return None
        conformance, extent_size = _U32.unpack_from(data, cursor)[0], _U32.unpack_from(data, cursor + 20)[0]
        if extent_size > MAX_EXTENT_BYTES or conformance != (extent_size + 7) & ~7:
            return None
        end = cursor + ORPC_EXTENT_HEADER + conformance
        if end > len(data):
            return None
        extents.append((str(uuid.UUID(bytes_le=bytes(data[cursor + 4 : cursor + 20]))), extent_size))
        cursor = _align(end)
    return tuple(extents), cursor


def parse_request(data: bytes, pos: int, address: int) -> Optional[Request]:
    """The request body whose ORPCTHIS starts at ``data[pos]``, or None if no known shape fits."""
    if pos + ORPCTHIS_SIZE + 16 > len(data) or data[pos : pos + 4] != ANCHOR:
        return None
    header = ORPCTHIS.tuple_type._make(ORPCTHIS.codec.unpack_from(data, pos))
    if header.reserved1 != 0 or header.flags > 1:
        return None
    cursor = pos + ORPCTHIS_SIZE
    extensions: Tuple[Tuple[str, int], ...] = ()
    if header.extensions:
        parsed = _extent_array(data, cursor)
        if parsed is None:
            return None
        extensions, cursor = parsed
    request = _arguments(data, pos, cursor, address)
    if request is not None:
        request.extensions = extensions
    return request


def _arguments(data: bytes, pos: int, cursor: int, address: int) -> Optional[Request]:
    """The call whose NDR arguments start at ``data[cursor]`` (its ORPCTHIS at ``data[pos]``)."""
    first = _bstr(data, cursor)
    if first is not None:
        text, cursor = first
        second = _bstr(data, cursor)
        if second is not None:
            other, cursor = second
            flags = _u32(data, cursor)
            if text.upper() == "WQL":
                operation = "ExecNotificationQuery" if _EVENT_QUERY.search(other) else "ExecQuery"
                return Request(address, cursor + 8 - pos, operation, (text, other), flags)
            if not re.match(r"^[A-Za-z_]\w*$", other):
                return None
            unit = None
            context = _u32(data, cursor + 4)
            if context == 0:
                unit = _interface_pointer(data, cursor + 8)
            return Request(
                address,
                cursor + 12 - pos,
                "ExecMethod",
                (text, other),
                flags,
                None if unit is None else unit - pos,
            )
        flags = _u32(data, cursor)
        if flags is None or flags & ~0x000FFFFF:
            return None
        operation = "OpenNamespace" if re.match(r"^(root|//|\\\\)", text, re.IGNORECASE) else "GetObject"
        return Request(address, cursor + 8 - pos, operation, (text,), flags)
    login = _lpwstr(data, cursor)
    if login is not None:
        resource, after = login
        if re.search(r"root", resource, re.IGNORECASE):
            locale = _lpwstr(data, after)
            strings = (resource,) if locale is None else (resource, locale[0])
            return Request(
                address, (after if locale is None else locale[1]) - pos, "NTLMLogin", strings, None
            )
        return None
    unit = _interface_pointer(data, cursor)
    if unit is not None:
        return Request(address, unit - pos, "PutInstance", (), None, unit - pos)
    return None
