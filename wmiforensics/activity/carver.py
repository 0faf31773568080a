"""Find WMI objects, WMI request bodies, WMI result packets and WMI strings in raw memory by anchors.

The carver reads an iterable of ``(address, bytes)`` chunks (consecutive chunks may overlap so an
item that straddles a boundary is seen whole in one of them) and finds its anchors in one YARA-X
pass (:mod:`.anchors`): the [MS-WMIO] EncodingUnit signature ``78 56 34 12``, the [MS-DCOM]
ORPCTHIS version ``05 00 07 00``, the [MS-WMI] ObjectArray signature ``WBEMDATA`` (query results
and events, whose objects are bare object blocks) and the markers of free-standing UTF-16LE strings
and BSTRs of WMI operations (:mod:`.strings`), which are extended and reported outside what was
decoded already. A string that runs to a chunk's last byte is held until the next chunk: reported
(``cut``) if that chunk does not start inside this one (the captured memory ends there), else left
to the next chunk, which sees it again. Its cost is linear in the bytes it is given.
Items found twice in an overlap are reported once (by address). An object too long for its
chunk is read whole through the optional ``read`` callable, up to :data:`MAX_UNIT` bytes and at
most a chunk's worth of such reads per chunk. Each object's decoding work is bounded in
proportion to its length, and anchors inside an object already decoded are skipped, so hostile
memory full of anchors stays linear.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, List, Optional, Set, Tuple

from ..wmio import WmiObject, WmioError, decode_encoding_unit
from ..wmio.structs import OBJECT_FLAG_CLASS, OBJECT_FLAG_INSTANCE, OBJECT_FLAGS_KNOWN
from .anchors import Anchors, find_anchors
from .packets import parse_object_array
from .requests import Request, parse_request
from .strings import Covered, FoundString, find_strings

MIN_UNIT = 8 + 1 + 13 + 8  # header, flags, a class header, the smallest lists
MAX_UNIT = 16 << 20
WORK_PER_OBJECT = 1 << 20
WORK_PER_BYTE = 32
Chunk = Tuple[int, bytes]
Reader = Callable[[int, int], bytes]


@dataclass
class Carved:
    """One anchored item: a decoded object, a request (maybe carrying an object), a WMI string, or
    an object that could not be decoded (``error`` says why)."""

    address: int
    form: str  # "object", "request", "result" (an object in an ObjectArray packet) or "string"
    size: int
    obj: Optional[WmiObject] = None
    request: Optional[Request] = None
    error: Optional[str] = None
    #: A string's text, whether a consistent BSTR length prefix precedes it, and whether it runs to
    #: the end of the captured memory (its terminator and maybe more text were not captured).
    text: Optional[str] = None
    bstr: bool = False
    cut: bool = False


def _plausible_header(data: bytes, pos: int) -> Optional[int]:
    """The unit's ObjectEncodingLength if the header can start an object block, else None."""
    if pos + 9 > len(data):
        return None
    length = int.from_bytes(data[pos + 4 : pos + 8], "little")
    flags = data[pos + 8]
    if not MIN_UNIT - 8 <= length <= MAX_UNIT or flags & ~OBJECT_FLAGS_KNOWN:
        return None
    if bool(flags & OBJECT_FLAG_CLASS) == bool(flags & OBJECT_FLAG_INSTANCE):
        return None
    return length


class _Budget:
    """Bytes the carver may still read beyond its chunks for objects that straddle their end."""

    def __init__(self) -> None:
        self.extra = 0


def _decode_unit(data: bytes, pos: int, address: int, read: Optional[Reader], budget: _Budget) -> Carved:
    length = _plausible_header(data, pos)
    assert length is not None
    blob, offset = data, pos
    if pos + 8 + length > len(data) and read is not None and budget.extra >= 8 + length:
        budget.extra -= 8 + length
        more = read(address, 8 + length)
        if len(more) > len(data) - pos:
            blob, offset = more, 0
    try:
        # decoding work follows the object's size, so many hostile anchors cost what they cover
        obj = decode_encoding_unit(blob, offset, budget=max(WORK_PER_OBJECT, WORK_PER_BYTE * length))
    except WmioError as error:
        return Carved(address, "object", 8 + length, error=str(error))
    return Carved(address, "object", 8 + obj.size, obj=obj)


def carve(chunks: Iterable[Chunk], read: Optional[Reader] = None) -> Iterator[Carved]:
    """Every request body, object block and WMI string in ``chunks``, each once; per chunk requests
    first, strings last (a string inside a decoded object or request is not reported again)."""
    seen: Set[int] = set()
    string_ends: Set[int] = set()  # a string cut by a chunk's start ends where the whole one does
    budget = _Budget()
    explained = Covered()
    cut: List[FoundString] = []  # strings running to the previous chunk's last byte
    previous_end = None
    for base, data in chunks:
        if previous_end is not None and base >= previous_end:
            yield from _strings(cut, string_ends)  # no chunk repeats those bytes: captured memory ends
        cut = []  # else this chunk starts inside the previous one and sees them again
        previous_end = base + len(data)
        explained.forget_before(base)
        anchors = find_anchors(data)
        for item in _structured(data, base, anchors, read, budget, seen):
            if item.obj is not None or item.request is not None:
                explained.add(item.address, item.address + item.size)
            yield item
        found = find_strings(data, base, explained, anchors.string)
        cut = [item for item in found if item.cut]
        yield from _strings([item for item in found if not item.cut], string_ends)
    yield from _strings(cut, string_ends)


def _strings(found: List[FoundString], string_ends: Set[int]) -> Iterator[Carved]:
    for item in found:
        if item.end not in string_ends:
            string_ends.add(item.end)
            yield Carved(item.address, "string", item.size, text=item.text, bstr=item.bstr, cut=item.cut)


def _structured(
    data: bytes, base: int, anchors: Anchors, read: Optional[Reader], budget: _Budget, seen: Set[int]
) -> Iterator[Carved]:
    """Request bodies, result packets and object blocks in one chunk."""
    budget.extra = max(len(data), MAX_UNIT)
    covered = 0  # anchors inside an object already decoded from this chunk are not new objects
    for pos in anchors.request:
        address = base + pos
        if address in seen:
            continue
        request = parse_request(data, pos, address)
        if request is None:
            continue
        seen.add(address)
        carved = Carved(address, "request", request.size, request=request)
        if request.unit_offset is not None and _plausible_header(data, pos + request.unit_offset):
            inner = _decode_unit(data, pos + request.unit_offset, address + request.unit_offset, read, budget)
            seen.add(inner.address)
            carved.obj, carved.error = inner.obj, inner.error
            carved.size = max(carved.size, request.unit_offset + inner.size)
        yield carved
    for pos in anchors.packet:
        packet = parse_object_array(data, pos, base + pos)
        if packet is None:
            continue
        for address, obj, error in packet.objects:
            if address not in seen:
                seen.add(address)
                yield Carved(address, "result", obj.size if obj else 0, obj=obj, error=error)
    for pos in anchors.unit:
        address = base + pos
        if address in seen or pos < covered or _plausible_header(data, pos) is None:
            continue
        seen.add(address)
        carved = _decode_unit(data, pos, address, read, budget)
        if carved.obj is not None:
            covered = pos + carved.size
        yield carved
