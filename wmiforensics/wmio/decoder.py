"""A bounded [MS-WMIO] decoder: encoding units and object blocks to plain Python objects.

Nothing in a blob is trusted. Every offset, length and count is checked against the part that
contains it before it is used; strings end at their terminator or at a length ceiling; embedded
objects nest at most :data:`MAX_DEPTH` deep; and a work budget bounds the total cost of one object
whatever its heap references point at (a heap can make many properties share one long string).
A blob that is cut short (``truncated``) is decoded as far as its bytes go: every property that can
still be read is kept and each loss is recorded in ``notes``.

Section numbers refer to [MS-WMIO]:
https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-wmio/
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from . import structs as s

MAX_DEPTH = 8
MAX_STRING_BYTES = 1 << 20
MAX_ARRAY_ITEMS = 1 << 16
MAX_PROPERTIES = 4096
MAX_QUALIFIERS = 1024
MAX_METHODS = 1024
MAX_DERIVATION = 256
WORK_BUDGET = 32 << 20
MAX_NOTES = 32

_U32 = struct.Struct("<I")


class WmioError(ValueError):
    """The bytes are not a decodable MS-WMIO object; the message says why."""


@dataclass
class Property:
    """One property of a class or instance, with its value (``None`` when NULL or unreadable)."""

    name: str
    cim_type: int
    order: int
    value: Any = None
    qualifiers: Dict[str, Any] = field(default_factory=dict)

    @property
    def type_name(self) -> str:
        base = self.cim_type & ~(s.CIM_ARRAY_FLAG | s.CIM_INHERITED_FLAG)
        name = s.CIM_TYPES.get(base, (f"type{base}", ""))[0]
        return f"{name}[]" if self.cim_type & s.CIM_ARRAY_FLAG else name


@dataclass
class Method:
    name: str
    in_parameters: List[str] = field(default_factory=list)
    out_parameters: List[str] = field(default_factory=list)


@dataclass
class WmiObject:
    """A decoded CIM class or instance (2.2.5 ObjectBlock)."""

    is_class: bool
    class_name: str
    derivation: List[str] = field(default_factory=list)
    server: Optional[str] = None
    namespace: Optional[str] = None
    properties: Dict[str, Property] = field(default_factory=dict)
    qualifiers: Dict[str, Any] = field(default_factory=dict)
    methods: List[Method] = field(default_factory=list)
    size: int = 0
    truncated: bool = False
    notes: List[str] = field(default_factory=list)

    @property
    def superclass(self) -> Optional[str]:
        return self.derivation[0] if self.derivation else None

    def values(self) -> Dict[str, Any]:
        return {name: prop.value for name, prop in self.properties.items()}

    def get(self, name: str, default: Any = None) -> Any:
        """Property value by case-insensitive name (CIM names are case-insensitive)."""
        lowered = name.lower()
        for key, prop in self.properties.items():
            if key.lower() == lowered:
                return prop.value
        return default

    def to_dict(self) -> Dict[str, Any]:
        return {
            "kind": "class" if self.is_class else "instance",
            "class": self.class_name,
            "derivation": list(self.derivation),
            "server": self.server,
            "namespace": self.namespace,
            "properties": {name: _plain(prop.value) for name, prop in self.properties.items()},
            "types": {name: prop.type_name for name, prop in self.properties.items()},
            "methods": [
                {"name": m.name, "in": m.in_parameters, "out": m.out_parameters} for m in self.methods
            ],
            "size": self.size,
            "truncated": self.truncated,
            "notes": list(self.notes),
        }


def _plain(value: Any) -> Any:
    if isinstance(value, WmiObject):
        return value.to_dict()
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, bytes):
        return value.hex()
    return value


class _Context:
    """Per-top-level-object state: remaining work, notes, whether bounds may be clipped."""

    def __init__(self, lenient: bool, budget: int = WORK_BUDGET) -> None:
        self.work = budget
        self.lenient = lenient
        self.notes: List[str] = []

    def spend(self, amount: int) -> None:
        self.work -= max(amount, 1)
        if self.work < 0:
            raise WmioError("work budget exhausted (heap references repeat the same data too often)")

    def note(self, text: str) -> None:
        if len(self.notes) < MAX_NOTES:
            self.notes.append(text)
        elif len(self.notes) == MAX_NOTES:
            self.notes.append("further notes omitted")


def _u32(buf: bytes, pos: int, end: int, what: str) -> int:
    if pos < 0 or pos + 4 > end:
        raise WmioError(f"{what} at offset {pos} lies outside its {end}-byte part")
    return _U32.unpack_from(buf, pos)[0]


def _parse(record, buf: bytes, pos: int, end: int, what: str):
    if pos < 0 or pos + record.size > end:
        raise WmioError(f"{what} at offset {pos} needs {record.size} bytes; the part ends at {end}")
    return record.tuple_type._make(record.codec.unpack_from(buf, pos))


def read_encoded_string(buf: bytes, pos: int, end: int, ctx: _Context) -> Tuple[str, int]:
    """2.2.78 EncodedString: flag 0 = one byte a character, flag 1 = UTF-16LE; NUL-terminated."""
    if pos < 0 or pos >= end:
        raise WmioError(f"string at offset {pos} lies outside its {end}-byte part")
    flag = buf[pos]
    start = pos + 1
    limit = min(end, start + MAX_STRING_BYTES)
    if flag == 0:
        stop = buf.find(b"\0", start, limit)
        if stop < 0:
            raise WmioError(f"string at offset {pos} has no terminator within {limit - start} bytes")
        ctx.spend(stop - start)
        return bytes(buf[start:stop]).decode("latin-1"), stop + 1
    if flag == 1:
        stop = start
        while True:
            stop = buf.find(b"\0\0", stop, limit)
            if stop < 0:
                raise WmioError(
                    f"UTF-16 string at offset {pos} has no terminator within {limit - start} bytes"
                )
            if (stop - start) % 2 == 0:
                break
            stop += 1
        ctx.spend(stop - start)
        return bytes(buf[start:stop]).decode("utf-16-le", "replace"), stop + 2
    raise WmioError(f"string at offset {pos} has Encoded-String-Flag 0x{flag:02x} (expected 0 or 1)")


@dataclass
class _Region:
    """A heap or table inside the blob: absolute start and end offsets."""

    start: int
    end: int

    def at(self, ref: int, what: str) -> int:
        if ref >= self.end - self.start:
            raise WmioError(
                f"{what} heap reference 0x{ref:x} lies outside the {self.end - self.start}-byte heap"
            )
        return self.start + ref


def _heap_string(buf: bytes, heap: _Region, ref: int, ctx: _Context, what: str) -> str:
    if ref & s.DICTIONARY_FLAG and ref != s.HEAP_REF_NONE:
        index = ref & ~s.DICTIONARY_FLAG
        if index >= len(s.DICTIONARY):
            raise WmioError(f"{what} dictionary reference {index} is not in the dictionary (2.2.71)")
        return s.DICTIONARY[index]
    return read_encoded_string(buf, heap.at(ref, what), heap.end, ctx)[0]


def _heap_region(buf: bytes, pos: int, end: int, ctx: _Context, what: str) -> Tuple[_Region, int]:
    """2.2.66 Heap = HeapLength HeapItem; the length's top bit is set."""
    length = _u32(buf, pos, end, f"{what} length") & s.HEAP_LENGTH_MASK
    start = pos + 4
    if start + length > end:
        if not ctx.lenient:
            raise WmioError(f"{what} of {length} bytes runs past its part ({end - start} bytes left)")
        ctx.note(f"{what} cut short: {end - start} of {length} bytes present")
        length = end - start
    return _Region(start, start + length), start + length


@dataclass
class _PropertyDef:
    name: str
    cim_type: int
    order: int
    value_offset: int
    qualifiers: Dict[str, Any]


@dataclass
class _ClassPart:
    name: str
    derivation: List[str]
    qualifiers: Dict[str, Any]
    properties: List[_PropertyDef]
    table: _Region
    heap: _Region
    end: int

    @property
    def nd_length(self) -> int:
        return (len(self.properties) - 1) // 4 + 1 if self.properties else 0


def _value_size(cim_type: int) -> int:
    if cim_type & s.CIM_ARRAY_FLAG:
        return 4
    base = cim_type & ~s.CIM_INHERITED_FLAG
    if base not in s.CIM_TYPES:
        raise WmioError(f"unknown CIM type {base} (2.2.82)")
    return struct.calcsize(s.CIM_TYPES[base][1])


def _qualifier_set(
    buf: bytes, pos: int, end: int, heap: _Region, ctx: _Context, depth: int, what: str
) -> Tuple[Dict[str, Any], int]:
    """2.2.59 QualifierSet = EncodingLength *Qualifier."""
    length = _u32(buf, pos, end, f"{what} qualifier set length")
    if length < 4 or pos + length > end:
        raise WmioError(f"{what} qualifier set of {length} bytes does not fit its part")
    qualifiers: Dict[str, Any] = {}
    cursor, stop = pos + 4, pos + length
    while cursor < stop:
        if len(qualifiers) >= MAX_QUALIFIERS:
            raise WmioError(f"{what} has more than {MAX_QUALIFIERS} qualifiers")
        header = _parse(s.QUALIFIER_HEADER, buf, cursor, stop, f"{what} qualifier")
        cursor += s.QUALIFIER_HEADER.size
        size = _value_size(header.QualifierType)
        if cursor + size > stop:
            raise WmioError(f"{what} qualifier value runs past its set")
        name = _heap_string(buf, heap, header.QualifierName, ctx, f"{what} qualifier name")
        try:
            value = _value(buf, header.QualifierType, cursor, heap, ctx, depth)
        except WmioError as error:
            ctx.note(f"qualifier {name!r} of {what}: {error}")
            value = None
        qualifiers[name] = value
        cursor += size
    return qualifiers, stop


def _value(buf: bytes, cim_type: int, slot: int, heap: _Region, ctx: _Context, depth: int) -> Any:
    """Decodes the value whose ValueTable/qualifier slot starts at ``slot`` (2.2.82 CimType)."""
    cim_type &= ~s.CIM_INHERITED_FLAG
    base = cim_type & ~s.CIM_ARRAY_FLAG
    if base not in s.CIM_TYPES:
        raise WmioError(f"unknown CIM type {base} (2.2.82)")
    fmt = s.CIM_TYPES[base][1]
    if cim_type & s.CIM_ARRAY_FLAG:
        ref = _U32.unpack_from(buf, slot)[0]
        if ref == s.HEAP_REF_NONE:
            return None
        return _array(buf, base, heap.at(ref, "array"), heap, ctx, depth)
    if base in s.CIM_STRING_TYPES:
        ref = _U32.unpack_from(buf, slot)[0]
        if ref == s.HEAP_REF_NONE:
            return None
        return _heap_string(buf, heap, ref, ctx, "value")
    if base == s.CIM_OBJECT:
        ref = _U32.unpack_from(buf, slot)[0]
        if ref == s.HEAP_REF_NONE:
            return None
        return _embedded(buf, heap.at(ref, "embedded object"), heap.end, ctx, depth)
    (raw,) = struct.unpack_from(fmt, buf, slot)
    if base == s.CIM_BOOLEAN:
        return raw != 0
    if base == s.CIM_CHAR16:
        return chr(raw) if not 0xD800 <= raw < 0xE000 else raw
    return raw


def _array(buf: bytes, base: int, pos: int, heap: _Region, ctx: _Context, depth: int) -> List[Any]:
    """An array in the heap: a 32-bit count, then the items (strings and objects by HeapRef)."""
    count = _u32(buf, pos, heap.end, "array count")
    fmt = "<I" if base in s.CIM_STRING_TYPES or base == s.CIM_OBJECT else s.CIM_TYPES[base][1]
    size = struct.calcsize(fmt)
    items_at = pos + 4
    if count > MAX_ARRAY_ITEMS or items_at + count * size > heap.end:
        raise WmioError(f"array count {count} does not fit the {heap.end - items_at} heap bytes after it")
    ctx.spend(count * size)
    values: List[Any] = []
    for index in range(count):
        slot = items_at + index * size
        values.append(_value(buf, base, slot, heap, ctx, depth))
    return values


def _embedded(buf: bytes, pos: int, end: int, ctx: _Context, depth: int) -> WmiObject:
    """An embedded object: ObjectEncodingLength then ObjectBlock (2.2.82 for CIM-TYPE-OBJECT)."""
    if depth + 1 > MAX_DEPTH:
        raise WmioError(f"embedded objects nest deeper than {MAX_DEPTH} levels")
    length = _u32(buf, pos, end, "embedded object length")
    if pos + 4 + length > end:
        raise WmioError(f"embedded object of {length} bytes runs past its heap")
    return _object_block(buf, pos + 4, pos + 4 + length, ctx, depth + 1)


def _class_part(buf: bytes, pos: int, end: int, ctx: _Context, depth: int) -> _ClassPart:
    """2.2.15 ClassPart = ClassHeader DerivationList ClassQualifierSet PropertyLookupTable NdTable
    ValueTable ClassHeap."""
    header = _parse(s.CLASS_HEADER, buf, pos, end, "class header")
    part_end = pos + header.EncodingLength
    if header.EncodingLength < s.CLASS_HEADER.size or part_end > end:
        if not ctx.lenient or header.EncodingLength < s.CLASS_HEADER.size:
            raise WmioError(f"class part of {header.EncodingLength} bytes does not fit ({end - pos} left)")
        ctx.note(f"class part cut short: {end - pos} of {header.EncodingLength} bytes present")
        part_end = end
    cursor = pos + s.CLASS_HEADER.size
    # 2.2.17 DerivationList = EncodingLength *ClassNameEncoding (EncodedString + ClassNameLength)
    derivation_length = _u32(buf, cursor, part_end, "derivation list length")
    if derivation_length < 4 or cursor + derivation_length > part_end:
        raise WmioError(f"derivation list of {derivation_length} bytes does not fit its class part")
    derivation: List[str] = []
    entry, entries_end = cursor + 4, cursor + derivation_length
    while entry < entries_end:
        if len(derivation) >= MAX_DERIVATION:
            raise WmioError(f"derivation list longer than {MAX_DERIVATION} classes")
        name, entry = read_encoded_string(buf, entry, entries_end, ctx)
        entry += 4  # 2.2.18 ClassNameLength
        derivation.append(name)
    cursor = entries_end
    qualifier_pos = cursor
    qualifier_length = _u32(buf, cursor, part_end, "class qualifier set length")
    if qualifier_length < 4 or cursor + qualifier_length > part_end:
        raise WmioError(f"class qualifier set of {qualifier_length} bytes does not fit its class part")
    cursor += qualifier_length
    # 2.2.21 PropertyLookupTable = PropertyCount *PropertyLookup
    count = _u32(buf, cursor, part_end, "property count")
    cursor += 4
    if count > MAX_PROPERTIES or cursor + count * s.PROPERTY_LOOKUP.size > part_end:
        raise WmioError(
            f"property count {count} does not fit the {part_end - cursor} bytes of its class part"
        )
    lookups = [
        _parse(s.PROPERTY_LOOKUP, buf, cursor + i * 8, part_end, "property lookup") for i in range(count)
    ]
    cursor += count * s.PROPERTY_LOOKUP.size
    table_end = cursor + header.NdTableValueTableLength
    if table_end > part_end:
        if not ctx.lenient:
            raise WmioError(f"value table of {header.NdTableValueTableLength} bytes runs past its class part")
        ctx.note("class value table cut short")
        table_end = part_end
    table = _Region(cursor, table_end)
    heap, _ = _heap_region(buf, table_end, part_end, ctx, "class heap")
    name = (
        ""
        if header.ClassNameRef == s.HEAP_REF_NONE
        else _heap_string(buf, heap, header.ClassNameRef, ctx, "class name")
    )
    qualifiers, _ = _qualifier_set(buf, qualifier_pos, part_end, heap, ctx, depth, f"class {name!r}")
    properties: List[_PropertyDef] = []
    for lookup in lookups:
        ctx.spend(8)
        prop_name = _heap_string(buf, heap, lookup.PropertyNameRef, ctx, "property name")
        info_pos = heap.at(lookup.PropertyInfoRef, f"property {prop_name!r} info")
        info = _parse(s.PROPERTY_INFO_HEADER, buf, info_pos, heap.end, f"property {prop_name!r} info")
        try:
            prop_qualifiers, _ = _qualifier_set(
                buf,
                info_pos + s.PROPERTY_INFO_HEADER.size,
                heap.end,
                heap,
                ctx,
                depth,
                f"property {prop_name!r}",
            )
        except WmioError as error:
            ctx.note(f"qualifiers of property {prop_name!r}: {error}")
            prop_qualifiers = {}
        properties.append(
            _PropertyDef(
                prop_name, info.PropertyType, info.DeclarationOrder, info.ValueTableOffset, prop_qualifiers
            )
        )
    properties.sort(key=lambda item: item.order)
    return _ClassPart(name, derivation, qualifiers, properties, table, heap, part_end)


def _nd_flags(buf: bytes, table: _Region, index: int) -> int:
    """2.2.27 NullAndDefaultFlag: bit 0 = NULL, bit 1 = inherited default (2 bits a property)."""
    pos = table.start + index // 4
    if index < 0 or pos >= table.end:
        return 0b01
    return (buf[pos] >> ((index % 4) * 2)) & 0b11


def _slot(prop: _PropertyDef, part: _ClassPart, table: _Region) -> int:
    size = _value_size(prop.cim_type)
    pos = table.start + part.nd_length + prop.value_offset
    if prop.value_offset > table.end or pos + size > table.end:
        raise WmioError(
            f"value of {prop.name!r} at table offset {prop.value_offset} lies outside the value table"
        )
    return pos


def _class_default(buf: bytes, part: _ClassPart, prop: _PropertyDef, ctx: _Context, depth: int) -> Any:
    if prop.order >= len(part.properties) or _nd_flags(buf, part.table, prop.order) & 0b11:
        return None
    return _value(buf, prop.cim_type, _slot(prop, part, part.table), part.heap, ctx, depth)


def _properties(
    buf: bytes,
    part: _ClassPart,
    ctx: _Context,
    depth: int,
    table: Optional[_Region] = None,
    heap: Optional[_Region] = None,
) -> Dict[str, Property]:
    """Each property's value: the instance's own (``table``/``heap``) or the class default."""
    result: Dict[str, Property] = {}
    for prop in part.properties:
        value = None
        try:
            if table is None:
                value = _class_default(buf, part, prop, ctx, depth)
            else:
                flags = _nd_flags(buf, table, prop.order)
                if flags & 0b01:
                    value = None
                elif flags & 0b10:
                    value = _class_default(buf, part, prop, ctx, depth)
                else:
                    value = _value(buf, prop.cim_type, _slot(prop, part, table), heap, ctx, depth)
        except WmioError as error:
            if "work budget" in str(error):
                raise
            ctx.note(f"property {prop.name!r}: {error}")
        result[prop.name] = Property(prop.name, prop.cim_type, prop.order, value, prop.qualifiers)
    return result


def _methods(buf: bytes, pos: int, end: int, ctx: _Context, depth: int) -> Tuple[List[Method], int]:
    """2.2.38 MethodsPart: method names and the parameter names of their signature objects."""
    header = _parse(s.METHODS_PART_HEADER, buf, pos, end, "methods part")
    part_end = pos + header.EncodingLength
    if header.EncodingLength < s.METHODS_PART_HEADER.size or part_end > end:
        raise WmioError(f"methods part of {header.EncodingLength} bytes does not fit ({end - pos} left)")
    count = header.MethodCount
    cursor = pos + s.METHODS_PART_HEADER.size
    size = s.METHOD_DESCRIPTION.size
    if count > MAX_METHODS or cursor + count * size > part_end:
        raise WmioError(f"method count {count} does not fit its methods part")
    descriptions = [
        _parse(s.METHOD_DESCRIPTION, buf, cursor + i * size, part_end, "method") for i in range(count)
    ]
    heap, _ = _heap_region(buf, cursor + count * size, part_end, ctx, "method heap")
    methods = []
    for description in descriptions:
        method = Method(_heap_string(buf, heap, description.MethodName, ctx, "method name"))
        for ref, names in (
            (description.InputSignature, method.in_parameters),
            (description.OutputSignature, method.out_parameters),
        ):
            if ref == s.HEAP_REF_NONE:
                continue
            try:
                at = heap.at(ref, "method signature")
                length = _u32(buf, at, heap.end, "method signature length")
                if length:
                    if depth + 1 > MAX_DEPTH:
                        raise WmioError(f"embedded objects nest deeper than {MAX_DEPTH} levels")
                    if at + 4 + length > heap.end:
                        raise WmioError("method signature runs past its heap")
                    signature = _object_block(buf, at + 4, at + 4 + length, ctx, depth + 1)
                    names.extend(signature.properties)
            except WmioError as error:
                ctx.note(f"signature of method {method.name!r}: {error}")
        methods.append(method)
    return methods, part_end


def _instance(
    buf: bytes, part: _ClassPart, start: int, end: int, ctx: _Context, depth: int
) -> Tuple[WmiObject, int]:
    """2.2.53 InstanceType after its CurrentClass (``part``, which may lie elsewhere in ``buf``):
    EncodingLength InstanceFlags InstanceClassName NdTable InstanceData InstanceQualifierSet
    InstanceHeap, from ``start``; the object and where the instance ends."""
    header = _parse(s.INSTANCE_HEADER, buf, start, end, "instance header")
    instance_end = start + header.EncodingLength
    if instance_end > end or header.EncodingLength < s.INSTANCE_HEADER.size:
        if not ctx.lenient:
            raise WmioError(f"instance of {header.EncodingLength} bytes does not fit ({end - start} left)")
        ctx.note(f"instance cut short: {end - start} of {header.EncodingLength} bytes present")
        instance_end = end
    table_start = start + s.INSTANCE_HEADER.size
    table_end = table_start + (part.table.end - part.table.start)
    if table_end > instance_end:
        if not ctx.lenient:
            raise WmioError("instance value table runs past the instance")
        table_end = instance_end
    table = _Region(table_start, table_end)
    # 2.2.57 InstanceQualifierSet = QualifierSet InstancePropQualifierSet, then 2.2.58 InstanceHeap
    heap = _Region(instance_end, instance_end)
    qualifier_pos = table_end
    try:
        qualifier_length = _u32(buf, qualifier_pos, instance_end, "instance qualifier set length")
        if qualifier_length < 4 or qualifier_pos + qualifier_length >= instance_end:
            raise WmioError(f"instance qualifier set of {qualifier_length} bytes does not fit")
        cursor = qualifier_pos + qualifier_length
        flag = buf[cursor]
        cursor += 1
        if flag == s.INSTANCE_PROP_QUALIFIERS_PRESENT:
            for _ in part.properties:
                length = _u32(buf, cursor, instance_end, "instance property qualifier set length")
                if length < 4:
                    raise WmioError("instance property qualifier set shorter than its length field")
                cursor += length
        elif flag != s.INSTANCE_PROP_QUALIFIERS_NONE:
            raise WmioError(f"InstPropQualSetFlag 0x{flag:02x} is neither 1 nor 2 (2.2.65)")
        heap, _ = _heap_region(buf, cursor, instance_end, ctx, "instance heap")
        qualifiers, _ = _qualifier_set(buf, qualifier_pos, instance_end, heap, ctx, depth, "instance")
    except WmioError as error:
        if not ctx.lenient:
            raise
        ctx.note(f"instance heap unreadable: {error}")
        qualifiers = {}
    name = part.name
    if header.InstanceClassName != s.HEAP_REF_NONE:
        try:
            name = _heap_string(buf, heap, header.InstanceClassName, ctx, "instance class name") or name
        except WmioError as error:
            ctx.note(f"instance class name: {error}")
    obj = WmiObject(False, name, part.derivation, None, None, _properties(buf, part, ctx, depth, table, heap))
    obj.qualifiers = qualifiers
    return obj, instance_end


def _flags_and_decoration(
    buf: bytes, pos: int, end: int, ctx: _Context
) -> Tuple[int, Optional[str], Optional[str], int]:
    """2.2.6 ObjectFlags and the optional 2.2.7 Decoration: flags, server, namespace, next offset."""
    ctx.spend(64)
    if pos >= end:
        raise WmioError("empty object block")
    flags = buf[pos]
    if flags & ~s.OBJECT_FLAGS_KNOWN or bool(flags & s.OBJECT_FLAG_CLASS) == bool(
        flags & s.OBJECT_FLAG_INSTANCE
    ):
        raise WmioError(f"ObjectFlags 0x{flags:02x} name neither a class nor an instance (2.2.6)")
    cursor = pos + 1
    server = namespace = None
    if flags & s.OBJECT_FLAG_DECORATION:
        # 2.2.7 Decoration = DecServerName DecNamespaceName
        server, cursor = read_encoded_string(buf, cursor, end, ctx)
        namespace, cursor = read_encoded_string(buf, cursor, end, ctx)
    return flags, server, namespace, cursor


def _object_block(buf: bytes, pos: int, end: int, ctx: _Context, depth: int) -> WmiObject:
    """2.2.5 ObjectBlock = ObjectFlags [Decoration] Encoding."""
    flags, server, namespace, cursor = _flags_and_decoration(buf, pos, end, ctx)
    if flags & s.OBJECT_FLAG_CLASS:
        # 2.2.11 ClassType = ParentClass CurrentClass, each a ClassAndMethodsPart (2.2.14)
        parent = _class_part(buf, cursor, end, ctx, depth)
        _, cursor = _methods(buf, parent.end, end, ctx, depth)
        current = _class_part(buf, cursor, end, ctx, depth)
        try:
            methods, cursor = _methods(buf, current.end, end, ctx, depth)
        except WmioError as error:
            ctx.note(f"methods of {current.name!r}: {error}")
            methods = []
        obj = WmiObject(
            True,
            current.name or parent.name,
            current.derivation,
            server,
            namespace,
            _properties(buf, current, ctx, depth),
            current.qualifiers,
            methods,
        )
    else:
        part = _class_part(buf, cursor, end, ctx, depth)
        obj, cursor = _instance(buf, part, part.end, end, ctx, depth)
        obj.server, obj.namespace = server, namespace
    obj.size = cursor - pos
    return obj


def decode_object_block(buf: bytes, truncated: bool = False) -> WmiObject:
    """Decodes one ObjectBlock (2.2.5) filling ``buf``; ``truncated`` allows a cut-off tail."""
    ctx = _Context(truncated)
    obj = _object_block(buf, 0, len(buf), ctx, 0)
    obj.truncated = truncated
    obj.notes = ctx.notes
    return obj


def decode_encoding_unit(buf: bytes, offset: int = 0, budget: int = WORK_BUDGET) -> WmiObject:
    """Decodes the EncodingUnit (2.2.1) at ``offset``; a unit cut off by the end of ``buf`` yields
    what its bytes hold, marked ``truncated``."""
    if offset < 0:
        raise WmioError("negative offset")
    header = _parse(s.ENCODING_UNIT_HEADER, buf, offset, len(buf), "encoding unit")
    if header.Signature != s.SIGNATURE:
        raise WmioError(f"no encoding-unit signature at offset {offset} (2.2.3)")
    start = offset + s.ENCODING_UNIT_HEADER.size
    length = header.ObjectEncodingLength
    available = len(buf) - start
    truncated = length > available
    ctx = _Context(truncated, budget)
    if truncated:
        ctx.note(f"encoding unit cut short: {available} of {length} bytes present")
    if not isinstance(buf, bytes):
        buf = bytes(buf)
    # decoded in place (offsets in messages are from the start of ``buf``): no copy per candidate
    obj = _object_block(buf, start, start + min(length, available), ctx, 0)
    obj.truncated = truncated
    obj.notes = ctx.notes
    return obj


def decode_instance_without_class(
    buf: bytes, class_block: Tuple[int, int], start: int, end: int
) -> WmiObject:
    """Decodes the 2.2.3 EncodingUnitInstanceNoClass filling ``buf[start:end]``: ObjectFlags
    [Decoration] then an InstanceType without its CurrentClass, which is taken from the instance
    ObjectBlock at ``buf[class_block[0]:class_block[1]]`` (the earlier WBEMOBJECT_INSTANCE with the
    same classID in an [MS-WMI] 2.2.14 ObjectArray). Every offset stays inside its own block."""
    ctx = _Context(False)
    class_start, class_end = class_block
    if not 0 <= class_start < class_end <= len(buf) or not 0 <= start < end <= len(buf):
        raise WmioError("object block outside the buffer")
    flags, _, _, cursor = _flags_and_decoration(buf, class_start, class_end, ctx)
    if flags & s.OBJECT_FLAG_CLASS:
        raise WmioError("the object with the matching classID is a class, not an instance (2.2.14.4)")
    part = _class_part(buf, cursor, class_end, ctx, 0)
    flags, server, namespace, cursor = _flags_and_decoration(buf, start, end, ctx)
    if flags & s.OBJECT_FLAG_CLASS:
        raise WmioError(f"ObjectFlags 0x{flags:02x} of an instance without class name a class (2.2.3)")
    obj, cursor = _instance(buf, part, cursor, end, ctx, 0)
    obj.server, obj.namespace = server, namespace
    obj.size = cursor - start
    obj.notes = ctx.notes
    return obj
