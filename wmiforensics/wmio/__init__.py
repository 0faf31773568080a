"""[MS-WMIO] decoding: WMI objects (classes and instances) from their binary encoding."""

from .decoder import (
    Method,
    Property,
    WmiObject,
    WmioError,
    decode_encoding_unit,
    decode_instance_without_class,
    decode_object_block,
)

__all__ = [
    "Method",
    "Property",
    "WmiObject",
    "WmioError",
    "decode_encoding_unit",
    "decode_instance_without_class",
    "decode_object_block",
]
