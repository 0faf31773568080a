"""[MS-WMI] 2.2.14 ObjectArray: the packet IWbemWCOSmartEnum::Next and IWbemObjectSink::Indicate use
to carry query results and events. Its signature ``WBEMDATA`` anchors it; each
WBEM_DATAPACKET_OBJECT (2.2.14.1) holds a class (2.2.14.2) or an instance (2.2.14.3) as a bare
[MS-WMIO] ObjectBlock, or an instance without its class part (2.2.14.4, [MS-WMIO] 2.2.3
EncodingUnitInstanceNoClass), decoded against the CurrentClass of the earlier instance in the same
packet with the same classID; when the packet holds no such instance it is reported with that reason.

https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-wmi/3685744a-4f8e-44f4-88db-c1013cb616e3
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from construct import Int8ul, Int32ul, Padding, Struct

from ..minidump.structs import FlatRecord
from ..wmio import WmiObject, WmioError, decode_instance_without_class, decode_object_block

ANCHOR = b"WBEMDATA"
MAX_OBJECTS = 100_000

# 2.2.14 ObjectArray header (dwByteOrdering .. dwNumObjects)
OBJECT_ARRAY_LAYOUT = Struct(
    "dwByteOrdering" / Int32ul,
    "abSignature" / Padding(8),
    "dwSizeOfHeader1" / Int32ul,
    "dwDataSize1" / Int32ul,
    "dwFlags" / Int32ul,
    "bVersion" / Int8ul,
    "bPacketType" / Int8ul,
    "dwSizeOfHeader2" / Int32ul,
    "dwDataSize2" / Int32ul,
    "dwSizeOfHeader3" / Int32ul,
    "dwDataSize3" / Int32ul,
    "dwNumObjects" / Int32ul,
)
# 2.2.14.1 WBEM_DATAPACKET_OBJECT header
DATAPACKET_LAYOUT = Struct("dwSizeOfHeader" / Int32ul, "dwSizeOfData" / Int32ul, "bObjectType" / Int8ul)
# 2.2.14.2-4 WBEMOBJECT_CLASS / _INSTANCE / _INSTANCE_NOCLASS headers (the first two fields)
OBJECT_HEADER_LAYOUT = Struct("dwSizeOfHeader" / Int32ul, "dwSizeOfData" / Int32ul)
OBJECT_ARRAY = FlatRecord(OBJECT_ARRAY_LAYOUT, "ObjectArray")
DATAPACKET = FlatRecord(DATAPACKET_LAYOUT, "DataPacket")
OBJECT_HEADER = FlatRecord(OBJECT_HEADER_LAYOUT, "ObjectHeader")
CLASS, INSTANCE, INSTANCE_NOCLASS = 1, 2, 3
INSTANCE_HEADER_SIZE = 0x18  # 2.2.14.3/2.2.14.4: dwSizeOfHeader, dwSizeOfData, classID


@dataclass
class ObjectPacket:
    """One ObjectArray: the objects it holds (decoded or with the reason they are not)."""

    address: int
    size: int
    objects: List[Tuple[int, Optional[WmiObject], Optional[str]]] = field(default_factory=list)
    #: Instances sent without their class part (decoded or not).
    without_class: int = 0


def _read(record: FlatRecord, data: bytes, pos: int):
    return record.tuple_type._make(record.codec.unpack_from(data, pos))


def parse_object_array(data: bytes, signature_pos: int, address: int) -> Optional[ObjectPacket]:
    """The ObjectArray whose ``WBEMDATA`` signature is at ``data[signature_pos]``, or None."""
    pos = signature_pos - 4
    if pos < 0 or pos + OBJECT_ARRAY.size > len(data):
        return None
    header = _read(OBJECT_ARRAY, data, pos)
    if header.dwByteOrdering != 0 or header.dwSizeOfHeader1 != 0x1A or header.dwSizeOfHeader2 != 8:
        return None
    if header.dwSizeOfHeader3 != 12 or header.dwNumObjects > MAX_OBJECTS:
        return None
    cursor = pos + OBJECT_ARRAY.size
    end = min(len(data), cursor + header.dwDataSize3) if header.dwDataSize3 else len(data)
    packet = ObjectPacket(address - 4, 0)
    instances: Dict[bytes, Tuple[int, int]] = {}  # classID -> the first instance block carrying it
    for _ in range(header.dwNumObjects):
        if cursor + DATAPACKET.size > end:
            break
        item = _read(DATAPACKET, data, cursor)
        if item.dwSizeOfHeader != DATAPACKET.size or item.bObjectType not in (
            CLASS,
            INSTANCE,
            INSTANCE_NOCLASS,
        ):
            break
        body = cursor + DATAPACKET.size
        cursor = body + item.dwSizeOfData
        if cursor > end:
            break
        inner = _read(OBJECT_HEADER, data, body) if body + OBJECT_HEADER.size <= cursor else None
        if inner is None or inner.dwSizeOfHeader > item.dwSizeOfData:
            break
        expected_header = INSTANCE_HEADER_SIZE if item.bObjectType != CLASS else OBJECT_HEADER.size
        if inner.dwSizeOfHeader != expected_header:
            break
        start = body + inner.dwSizeOfHeader
        stop = min(start + inner.dwSizeOfData, cursor)
        class_id = bytes(data[body + OBJECT_HEADER.size : start])
        at = address - 4 + start - pos
        try:
            if item.bObjectType == INSTANCE_NOCLASS:
                packet.without_class += 1
                if class_id not in instances:
                    raise WmioError(
                        f"instance without its class part (2.2.14.4): no earlier instance in the packet "
                        f"has classID {uuid.UUID(bytes_le=class_id)}"
                    )
                obj = decode_instance_without_class(data, instances[class_id], start, stop)
            else:
                obj = decode_object_block(data[start:stop])
                if item.bObjectType == INSTANCE and not obj.is_class:
                    instances.setdefault(class_id, (start, stop))
            packet.objects.append((at, obj, None))
        except WmioError as error:
            packet.objects.append((at, None, str(error)))
    packet.size = cursor - pos
    return packet if packet.objects or packet.without_class else None
