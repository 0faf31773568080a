"""PE headers and export tables read from process memory, with every field bounded.

Layouts follow the PE/COFF specification
(https://learn.microsoft.com/en-us/windows/win32/debug/pe-format). Only what detection needs is
parsed: machine, sizes, entry point, sections and exports of an image *as mapped* in memory.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

from construct import Bytes, Int16ul, Int32ul, Struct

IMAGE_DOS_SIGNATURE = b"MZ"
IMAGE_NT_SIGNATURE = b"PE\x00\x00"
MACHINES = {0x14C: "x86", 0x8664: "x64", 0xAA64: "arm64", 0x1C4: "arm"}
PE32_MAGIC, PE32_PLUS_MAGIC = 0x10B, 0x20B
MAX_SECTIONS = 96  # the loader's own limit
MAX_EXPORTS = 65_536
MAX_NAME = 512

# https://learn.microsoft.com/en-us/windows/win32/debug/pe-format#coff-file-header-object-and-image
IMAGE_FILE_HEADER = Struct(
    "Machine" / Int16ul,
    "NumberOfSections" / Int16ul,
    "TimeDateStamp" / Int32ul,
    "PointerToSymbolTable" / Int32ul,
    "NumberOfSymbols" / Int32ul,
    "SizeOfOptionalHeader" / Int16ul,
    "Characteristics" / Int16ul,
)
# https://learn.microsoft.com/en-us/windows/win32/debug/pe-format#section-table-section-headers
IMAGE_SECTION_HEADER = Struct(
    "Name" / Bytes(8),
    "VirtualSize" / Int32ul,
    "VirtualAddress" / Int32ul,
    "SizeOfRawData" / Int32ul,
    "PointerToRawData" / Int32ul,
    "PointerToRelocations" / Int32ul,
    "PointerToLinenumbers" / Int32ul,
    "NumberOfRelocations" / Int16ul,
    "NumberOfLinenumbers" / Int16ul,
    "Characteristics" / Int32ul,
)
# https://learn.microsoft.com/en-us/windows/win32/debug/pe-format#export-directory-table
IMAGE_EXPORT_DIRECTORY = Struct(
    "Characteristics" / Int32ul,
    "TimeDateStamp" / Int32ul,
    "MajorVersion" / Int16ul,
    "MinorVersion" / Int16ul,
    "Name" / Int32ul,
    "Base" / Int32ul,
    "NumberOfFunctions" / Int32ul,
    "NumberOfNames" / Int32ul,
    "AddressOfFunctions" / Int32ul,
    "AddressOfNames" / Int32ul,
    "AddressOfNameOrdinals" / Int32ul,
)
_SECTION_SIZE = IMAGE_SECTION_HEADER.sizeof()
_SECTION_CODEC = struct.Struct("<8sIIIIIIHHI")
assert _SECTION_CODEC.size == _SECTION_SIZE

Reader = Callable[[int, int], bytes]
#: Data directories read besides the export directory (index, PeHeader field).
_EXTRA_DIRECTORIES = (
    (1, "import_directory"),
    (3, "exception_directory"),
    (12, "iat_directory"),
    (14, "clr_directory"),
)


@dataclass(frozen=True)
class Section:
    name: str
    virtual_address: int
    virtual_size: int
    raw_size: int
    raw_pointer: int
    characteristics: int

    @property
    def is_executable(self) -> bool:
        return bool(self.characteristics & 0x20000000) or bool(self.characteristics & 0x20)


@dataclass
class PeHeader:
    """What the headers at ``base`` say; ``nt_offset`` is where ``PE\\0\\0`` was found."""

    base: int
    nt_offset: int
    machine: int
    characteristics: int
    timestamp: int
    magic: int
    entry_point: int
    image_base: int
    size_of_image: int
    size_of_headers: int
    sections: List[Section] = field(default_factory=list)
    export_directory: Tuple[int, int] = (0, 0)
    #: IMAGE_DIRECTORY_ENTRY_IMPORT (1), _EXCEPTION (3, the x64 .pdata table), _IAT (12) and
    #: _COM_DESCRIPTOR (14, the CLI header of a .NET assembly).
    import_directory: Tuple[int, int] = (0, 0)
    exception_directory: Tuple[int, int] = (0, 0)
    iat_directory: Tuple[int, int] = (0, 0)
    clr_directory: Tuple[int, int] = (0, 0)
    has_dos_header: bool = True

    @property
    def arch(self) -> str:
        return MACHINES.get(self.machine, f"machine 0x{self.machine:X}")

    @property
    def is_dll(self) -> bool:
        return bool(self.characteristics & 0x2000)


def _parse_nt(page: bytes, base: int, nt_offset: int, has_dos: bool) -> Optional[PeHeader]:
    """NT headers at ``nt_offset`` in the first page, or None when they are not plausible."""
    file_header_at = nt_offset + 4
    if file_header_at + IMAGE_FILE_HEADER.sizeof() > len(page):
        return None
    file_header = IMAGE_FILE_HEADER.parse(page[file_header_at:])
    if file_header.Machine not in MACHINES:
        return None
    optional_at = file_header_at + IMAGE_FILE_HEADER.sizeof()
    if optional_at + 2 > len(page):
        return None
    magic = struct.unpack_from("<H", page, optional_at)[0]
    if magic == PE32_PLUS_MAGIC and optional_at + 112 <= len(page):
        entry, image_base = (
            struct.unpack_from("<I", page, optional_at + 16)[0],
            struct.unpack_from("<Q", page, optional_at + 24)[0],
        )
        size_of_image, size_of_headers = struct.unpack_from("<II", page, optional_at + 56)
        directories_at = optional_at + 112
    elif magic == PE32_MAGIC and optional_at + 96 <= len(page):
        entry = struct.unpack_from("<I", page, optional_at + 16)[0]
        image_base = struct.unpack_from("<I", page, optional_at + 28)[0]
        size_of_image, size_of_headers = struct.unpack_from("<II", page, optional_at + 56)
        directories_at = optional_at + 96
    else:
        return None
    header = PeHeader(
        base,
        nt_offset,
        file_header.Machine,
        file_header.Characteristics,
        file_header.TimeDateStamp,
        magic,
        entry,
        image_base,
        size_of_image,
        size_of_headers,
        has_dos_header=has_dos,
    )
    if directories_at + 8 <= len(page):
        header.export_directory = struct.unpack_from("<II", page, directories_at)
    for index, name in _EXTRA_DIRECTORIES:
        if directories_at + 8 * index + 8 <= len(page):
            setattr(header, name, struct.unpack_from("<II", page, directories_at + 8 * index))
    sections_at = optional_at + file_header.SizeOfOptionalHeader
    count = min(
        file_header.NumberOfSections, MAX_SECTIONS, max(0, (len(page) - sections_at) // _SECTION_SIZE)
    )
    header.sections = list(_parse_sections(page, sections_at, count))
    return header


def _parse_sections(page: bytes, offset: int, count: int):
    for index in range(count):
        name, vsize, vaddr, raw_size, raw_ptr, _, _, _, _, chars = _SECTION_CODEC.unpack_from(
            page, offset + index * _SECTION_SIZE
        )
        yield Section(
            name.split(b"\x00", 1)[0].decode("ascii", "replace"), vaddr, vsize, raw_size, raw_ptr, chars
        )


def parse_headers(page: bytes, base: int) -> Optional[PeHeader]:
    """Intact headers: ``MZ`` at 0 and ``PE\\0\\0`` where ``e_lfanew`` points."""
    if len(page) < 0x40 or not page.startswith(IMAGE_DOS_SIGNATURE):
        return None
    e_lfanew = struct.unpack_from("<I", page, 0x3C)[0]
    if e_lfanew < 0x40 or e_lfanew + 24 > len(page) or page[e_lfanew : e_lfanew + 4] != IMAGE_NT_SIGNATURE:
        return None
    return _parse_nt(page, base, e_lfanew, has_dos=True)


def find_wiped_headers(page: bytes, base: int) -> Optional[Tuple[str, int, Optional[PeHeader]]]:
    """PE remains at the start of a region whose DOS header is gone.

    Returns (how, offset, header): ``("nt_headers", off, header)`` when ``PE\\0\\0`` and a sane COFF
    header survive, or ``("section_table", off, None)`` when only a run of section headers does.
    """
    for offset in range(0, min(len(page), 0x800) - 24, 4):
        if page[offset : offset + 4] == IMAGE_NT_SIGNATURE:
            header = _parse_nt(page, base, offset, has_dos=False)
            if header and header.sections and 0xE0 <= _optional_size(page, offset) <= 0x100:
                return "nt_headers", offset, header
    table = find_section_table(page)
    if table is not None:
        return "section_table", table, None
    return None


def _optional_size(page: bytes, nt_offset: int) -> int:
    return struct.unpack_from("<H", page, nt_offset + 4 + 16)[0]


_KNOWN_SECTION_NAMES = {
    b".text",
    b".rdata",
    b".data",
    b".pdata",
    b".rsrc",
    b".reloc",
    b"CODE",
    b"DATA",
    b".idata",
    b".tls",
    b".bss",
    b".didat",
    b".edata",
    b"INIT",
    b"PAGE",
}


def find_section_table(page: bytes) -> Optional[int]:
    """Offset of at least two consecutive plausible section headers (known names, ascending,
    page-aligned virtual addresses), or None."""
    limit = min(len(page), 0x1000) - 2 * _SECTION_SIZE
    for offset in range(0, max(limit, 0), 4):
        run, previous = 0, -1
        cursor = offset
        while cursor + _SECTION_SIZE <= len(page) and run < 8:
            name, vsize, vaddr, *_ = _SECTION_CODEC.unpack_from(page, cursor)
            if (
                name.rstrip(b"\x00") not in _KNOWN_SECTION_NAMES
                or vaddr % 0x1000
                or vaddr <= previous
                or not vsize
            ):
                break
            previous = vaddr
            run += 1
            cursor += _SECTION_SIZE
        if run >= 2:
            return offset
    return None


_FORWARDER = re.compile(rb"[A-Za-z0-9_.-]{1,200}\.[A-Za-z0-9_#@?$]{1,256}\x00")


def read_exports(
    header: PeHeader, read: Reader, wanted: Optional[set] = None, problems: Optional[List[str]] = None
) -> Dict[str, int]:
    """Named exports as absolute addresses; forwarders (``DLL.Name`` strings inside the export
    directory) map to -1.

    ``wanted`` limits the names returned, which keeps the walk cheap on large DLLs. Damage that
    can hide an export (a directory that claims the whole image, a name table that repeats
    itself) is described in ``problems`` so the caller can say which check could not run.
    """
    problems = problems if problems is not None else []
    rva, size = header.export_directory
    if not rva or size < IMAGE_EXPORT_DIRECTORY.sizeof() or rva >= header.size_of_image:
        if rva or size:
            problems.append(f"the export directory (RVA 0x{rva:x}, size 0x{size:x}) is not usable")
        return {}
    if rva + size > header.size_of_image or size > header.size_of_image // 2:
        problems.append(
            f"the export directory claims 0x{size:x} bytes of a 0x{header.size_of_image:x}-byte image; "
            "forwarders were told from code by their DLL.Name strings"
        )
    raw = read(header.base + rva, IMAGE_EXPORT_DIRECTORY.sizeof())
    if len(raw) < IMAGE_EXPORT_DIRECTORY.sizeof():
        problems.append("the export directory is not captured")
        return {}
    directory = IMAGE_EXPORT_DIRECTORY.parse(raw)
    functions = min(directory.NumberOfFunctions, MAX_EXPORTS)
    names = min(directory.NumberOfNames, MAX_EXPORTS)
    if not names or not functions:
        problems.append("the export directory lists no named functions")
        return {}
    name_rvas = read(header.base + directory.AddressOfNames, names * 4)
    ordinals = read(header.base + directory.AddressOfNameOrdinals, names * 2)
    function_rvas = read(header.base + directory.AddressOfFunctions, functions * 4)
    names = min(names, len(name_rvas) // 4, len(ordinals) // 2)
    result: Dict[str, int] = {}
    seen_names: set = set()
    repeats = 0
    for index in range(names):
        name_rva = struct.unpack_from("<I", name_rvas, index * 4)[0]
        if name_rva >= header.size_of_image:
            continue
        if name_rva in seen_names:
            repeats += 1
            continue
        seen_names.add(name_rva)
        name = read(header.base + name_rva, MAX_NAME).split(b"\x00", 1)[0].decode("ascii", "replace")
        if wanted is not None and name not in wanted:
            continue
        ordinal = struct.unpack_from("<H", ordinals, index * 2)[0]
        if ordinal * 4 + 4 > len(function_rvas):
            continue
        function_rva = struct.unpack_from("<I", function_rvas, ordinal * 4)[0]
        forwarded = rva <= function_rva < rva + size and _FORWARDER.match(
            read(header.base + function_rva, 458)
        )
        result[name] = -1 if forwarded else header.base + function_rva
    if repeats:
        problems.append(f"the export name table repeats {repeats:,} entries (a loop)")
    return result
