"""A tiny MDMP assembler for hostile-input tests, written with ``struct`` from the documented layout.

It deliberately shares nothing with the reader's construct definitions: each stream is given as
raw bytes and this module only lays out the header, the directory and the blobs.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import List, Optional

THREAD_LIST, MODULE_LIST, MEMORY_LIST, SYSTEM_INFO, MEMORY64_LIST = 3, 4, 5, 7, 9
HANDLE_DATA, MISC_INFO, MEMORY_INFO_LIST, THREAD_INFO_LIST = 12, 15, 16, 17


@dataclass
class Stream:
    stream_type: int
    data: bytes
    #: Override the directory's DataSize / Rva to lie about the stream.
    declared_size: Optional[int] = None
    rva: Optional[int] = None


@dataclass
class Dump:
    streams: List[Stream] = field(default_factory=list)
    number_of_streams: Optional[int] = None
    directory_rva: Optional[int] = None
    signature: bytes = b"MDMP"
    version: int = 0xA793
    flags: int = 0x461826
    #: Bytes appended after the streams (memory data for Memory64List lives here).
    tail: bytes = b""

    def build(self) -> bytes:
        header_size, entry_size = 32, 12
        directory_size = entry_size * len(self.streams)
        cursor = header_size + directory_size
        directory, blobs = b"", b""
        for stream in self.streams:
            rva = stream.rva if stream.rva is not None else cursor
            size = stream.declared_size if stream.declared_size is not None else len(stream.data)
            directory += struct.pack("<III", stream.stream_type, size, rva)
            blobs += stream.data
            cursor += len(stream.data)
        count = self.number_of_streams if self.number_of_streams is not None else len(self.streams)
        rva = self.directory_rva if self.directory_rva is not None else header_size
        header = self.signature + struct.pack("<IIIIIQ", self.version, count, rva, 0, 0x5F000000, self.flags)
        return header + directory + blobs + self.tail

    def offset_of_tail(self) -> int:
        return 32 + 12 * len(self.streams) + sum(len(stream.data) for stream in self.streams)


def system_info(arch: int = 9, build: int = 19045, platform: int = 2, csd_rva: int = 0) -> bytes:
    """MINIDUMP_SYSTEM_INFO: arch 9 = AMD64, 0 = x86; platform 2 = Windows NT."""
    return struct.pack(
        "<HHHBBIIIIIHH", arch, 6, 0x5504, 8, 1, 10, 0, build, platform, csd_rva, 0x100, 0
    ) + bytes(24)


def memory64_list(ranges: List[tuple], base_rva: int) -> bytes:
    """ranges: (start, size) pairs; their data must lie contiguously from base_rva."""
    body = struct.pack("<QQ", len(ranges), base_rva)
    return body + b"".join(struct.pack("<QQ", start, size) for start, size in ranges)


def memory_list(ranges: List[tuple]) -> bytes:
    """ranges: (start, size, rva) triples."""
    return struct.pack("<I", len(ranges)) + b"".join(struct.pack("<QII", *item) for item in ranges)


def module_list(modules: List[tuple]) -> bytes:
    """modules: (base, size, name_rva) triples; 108-byte MINIDUMP_MODULE entries."""
    body = struct.pack("<I", len(modules))
    for base, size, name_rva in modules:
        body += (
            struct.pack("<QIIII", base, size, 0, 0, name_rva) + bytes(52) + bytes(8) + bytes(8) + bytes(16)
        )
    return body


def minidump_string(text: str) -> bytes:
    encoded = text.encode("utf-16-le")
    return struct.pack("<I", len(encoded)) + encoded + b"\x00\x00"


def memory_info_list(entries: List[tuple]) -> bytes:
    """entries: (base, alloc_base, alloc_protect, size, state, protect, type)."""
    body = [struct.pack("<IIQ", 16, 48, len(entries))]
    for base, alloc_base, alloc_protect, size, state, protect, kind in entries:
        body.append(
            struct.pack("<QQIIQIIII", base, alloc_base, alloc_protect, 0, size, state, protect, kind, 0)
        )
    return b"".join(body)
