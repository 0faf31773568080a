"""[MS-WMIO] fixed-size structures, each declared once with the spec's names and section links.

Each layout is a ``construct`` Struct; the decoder uses the ``struct`` codec derived from it
(:class:`FlatRecord`), so the layout is written once and parsing stays fast.

Reference: [MS-WMIO] Windows Management Instrumentation Encoding Version 1.0,
https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-wmio/ (section numbers below).
All integers are little-endian and nothing is aligned. Variable-size parts (encoded strings, heaps,
qualifier sets, value tables) are walked by :mod:`wmiforensics.wmio.decoder`, which bounds every
offset and count by the enclosing blob before it reads.
"""

from __future__ import annotations

from construct import Int8ul, Int16ul, Int32ul, Padding, Struct

from ..minidump.structs import FlatRecord

SIGNATURE = 0x12345678
SIGNATURE_BYTES = SIGNATURE.to_bytes(4, "little")

# 2.2.1 EncodingUnit = Signature ObjectEncodingLength ObjectBlock
ENCODING_UNIT_HEADER_LAYOUT = Struct(
    "Signature" / Int32ul,  # 2.2.3 Signature (SIGNATURE)
    "ObjectEncodingLength" / Int32ul,  # 2.2.4 ObjectEncodingLength
)

# 2.2.6 ObjectFlags
OBJECT_FLAG_CLASS = 0x01
OBJECT_FLAG_INSTANCE = 0x02
OBJECT_FLAG_DECORATION = 0x04
OBJECT_FLAG_PROTOTYPE = 0x10
OBJECT_FLAG_KEYS_MISSING = 0x40
OBJECT_FLAGS_KNOWN = 0x01 | 0x02 | 0x04 | 0x10 | 0x40

# 2.2.16 ClassHeader = EncodingLength ReservedOctet ClassNameRef NdTableValueTableLength
CLASS_HEADER_LAYOUT = Struct(
    "EncodingLength" / Int32ul,
    "ReservedOctet" / Int8ul,
    "ClassNameRef" / Int32ul,  # 2.2.19 ClassNameRef (HeapStringRef)
    "NdTableValueTableLength" / Int32ul,
)

# 2.2.23 PropertyLookup = PropertyNameRef PropertyInfoRef
PROPERTY_LOOKUP_LAYOUT = Struct(
    "PropertyNameRef" / Int32ul,  # 2.2.24
    "PropertyInfoRef" / Int32ul,  # 2.2.25
)

# 2.2.30 PropertyInfo = PropertyType DeclarationOrder ValueTableOffset ClassOfOrigin PropertyQualifierSet
PROPERTY_INFO_HEADER_LAYOUT = Struct(
    "PropertyType" / Int32ul,  # 2.2.31 (2.2.82 CimType, 2.2.32 Inherited flag)
    "DeclarationOrder" / Int16ul,  # 2.2.33
    "ValueTableOffset" / Int32ul,  # 2.2.34
    "ClassOfOrigin" / Int32ul,  # 2.2.35
)

# 2.2.60 Qualifier = QualifierName QualifierFlavor QualifierType QualifierValue
QUALIFIER_HEADER_LAYOUT = Struct(
    "QualifierName" / Int32ul,  # 2.2.61 (HeapStringRef or DictionaryReference)
    "QualifierFlavor" / Int8ul,  # 2.2.62
    "QualifierType" / Int32ul,  # 2.2.63
)

# 2.2.38 MethodsPart = EncodingLength MethodCount MethodCountPadding *MethodDescription MethodHeap
METHODS_PART_HEADER_LAYOUT = Struct(
    "EncodingLength" / Int32ul,
    "MethodCount" / Int16ul,  # 2.2.39
    "MethodCountPadding" / Int16ul,  # 2.2.40
)

# 2.2.41 MethodDescription
METHOD_DESCRIPTION_LAYOUT = Struct(
    "MethodName" / Int32ul,  # 2.2.42 HeapStringRef
    "MethodFlags" / Int8ul,  # 2.2.43
    "MethodPadding" / Padding(3),  # 2.2.44
    "MethodOrigin" / Int32ul,  # 2.2.45
    "MethodQualifiers" / Int32ul,  # 2.2.46 HeapQualifierSetRef
    "InputSignature" / Int32ul,  # 2.2.48 HeapMethodSignatureBlockRef
    "OutputSignature" / Int32ul,  # 2.2.49
)

# 2.2.53 InstanceType = CurrentClass EncodingLength InstanceFlags InstanceClassName NdTable InstanceData
#                       InstanceQualifierSet InstanceHeap (the header fields after CurrentClass)
INSTANCE_HEADER_LAYOUT = Struct(
    "EncodingLength" / Int32ul,
    "InstanceFlags" / Int8ul,  # 2.2.54
    "InstanceClassName" / Int32ul,  # 2.2.55 HeapStringRef
)

# Fast codecs derived from the layouts above (objects are carved by the thousand).
ENCODING_UNIT_HEADER = FlatRecord(ENCODING_UNIT_HEADER_LAYOUT, "EncodingUnitHeader")
CLASS_HEADER = FlatRecord(CLASS_HEADER_LAYOUT, "ClassHeader")
PROPERTY_LOOKUP = FlatRecord(PROPERTY_LOOKUP_LAYOUT, "PropertyLookup")
PROPERTY_INFO_HEADER = FlatRecord(PROPERTY_INFO_HEADER_LAYOUT, "PropertyInfoHeader")
QUALIFIER_HEADER = FlatRecord(QUALIFIER_HEADER_LAYOUT, "QualifierHeader")
METHODS_PART_HEADER = FlatRecord(METHODS_PART_HEADER_LAYOUT, "MethodsPartHeader")
METHOD_DESCRIPTION = FlatRecord(METHOD_DESCRIPTION_LAYOUT, "MethodDescription")
INSTANCE_HEADER = FlatRecord(INSTANCE_HEADER_LAYOUT, "InstanceHeader")

# 2.2.82 CimType: base types and the size of their slot in a ValueTable (strings, datetimes,
# references, objects and every array are 4-byte HeapRefs into the heap).
CIM_ARRAY_FLAG = 0x2000
CIM_INHERITED_FLAG = 0x4000  # 2.2.32 Inherited
CIM_TYPES = {
    16: ("sint8", "<b"),
    17: ("uint8", "<B"),
    2: ("sint16", "<h"),
    18: ("uint16", "<H"),
    3: ("sint32", "<i"),
    19: ("uint32", "<I"),
    20: ("sint64", "<q"),
    21: ("uint64", "<Q"),
    4: ("real32", "<f"),
    5: ("real64", "<d"),
    11: ("boolean", "<H"),
    8: ("string", "<I"),
    101: ("datetime", "<I"),
    102: ("reference", "<I"),
    103: ("char16", "<H"),
    13: ("object", "<I"),
}
CIM_STRING_TYPES = frozenset({8, 101, 102})
CIM_OBJECT = 13
CIM_BOOLEAN = 11
CIM_CHAR16 = 103

# 2.2.69 HeapRef; 2.2.71 DictionaryReference (high bit set: an index into this fixed list)
HEAP_REF_NONE = 0xFFFFFFFF
DICTIONARY_FLAG = 0x80000000
DICTIONARY = (
    '"',
    "key",
    "NADA",
    "read",
    "write",
    "volatile",
    "provider",
    "dynamic",
    "cimwin32",
    "DWORD",
    "CIMTYPE",
)

# 2.2.66 Heap: HeapLength has its most significant bit set; the length is the low 31 bits.
HEAP_LENGTH_MASK = 0x7FFFFFFF

# 2.2.65 InstancePropQualifierSet flag values
INSTANCE_PROP_QUALIFIERS_NONE = 1
INSTANCE_PROP_QUALIFIERS_PRESENT = 2
