"""Hostile and broken minidumps (RESEARCH.md §2): one clear message, or warnings plus what is readable."""

from __future__ import annotations

import struct
import time
import tracemalloc

import pytest

from tests import mdmp_bytes as mb
from wmiforensics.errors import MinidumpError, NotAMinidumpError
from wmiforensics.minidump import BytesSource, MemoryNotCaptured, Minidump


def parse(data: bytes) -> Minidump:
    return Minidump(BytesSource(data), name="hostile.dmp")


def with_memory64(ranges, payloads, *, truncate_to=None, arch=9):
    dump = mb.Dump([mb.Stream(mb.SYSTEM_INFO, mb.system_info(arch=arch)), mb.Stream(mb.MEMORY64_LIST, b"")])
    listing = mb.memory64_list(ranges, 0)
    dump.streams[1].data = listing
    base_rva = dump.offset_of_tail()
    dump.streams[1].data = mb.memory64_list(ranges, base_rva)
    dump.tail = b"".join(payloads)
    data = dump.build()
    return data[:truncate_to] if truncate_to is not None else data


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"PAGEDU64" + bytes(100), "kernel crash dump (PAGEDU64)"),
        (b"USERDU64" + bytes(100), "legacy 64-bit Windows user dump"),
        (b"\x7fELF\x02\x01\x01" + bytes(100), "ELF file"),
        (b"-----BEGIN BREAKPAD MICRODUMP-----\nO A arm64\n", "Breakpad text microdump"),
        (b"\x00\x00\x00\x00\x93\xa7\x00\x00" + bytes(40), "deliberately corrupted"),
        (b"hello world, not a dump at all" + bytes(10), "not a minidump"),
    ],
    ids=["pagedu64", "userdu64", "elf", "microdump", "nanodump-signature", "text"],
)
def test_foreign_files_are_named(head, expected):
    with pytest.raises(NotAMinidumpError, match="hostile.dmp") as error:
        parse(head)
    assert expected in str(error.value)


def test_header_cut_short():
    with pytest.raises(MinidumpError, match="shorter than the 32-byte MINIDUMP_HEADER"):
        parse(b"MDMP\x93\xa7\x00\x00\x01")


def test_no_streams():
    with pytest.raises(MinidumpError, match="declares no streams"):
        parse(mb.Dump(number_of_streams=0).build())


def test_directory_beyond_end_of_file():
    data = mb.Dump([mb.Stream(mb.SYSTEM_INFO, mb.system_info())], directory_rva=0x10000000).build()
    with pytest.raises(MinidumpError, match=r"stream directory \(RVA 0x10000000\) lies beyond the end"):
        parse(data)


def test_absurd_stream_count_in_a_tiny_file_is_bounded():
    data = mb.Dump([mb.Stream(mb.SYSTEM_INFO, mb.system_info())], number_of_streams=0xFFFFFFFF).build()[:60]
    tracemalloc.start()
    started = time.perf_counter()
    dump = parse(data)
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 1.0
    assert peak < 5 << 20
    assert any(
        "declares 4294967295 streams but only 2 directory entries are read" in w for w in dump.warnings
    )


def test_stream_past_end_of_file_keeps_the_entries_that_are_present():
    name = mb.minidump_string("C:\\Windows\\System32\\ntdll.dll")
    dump = mb.Dump([mb.Stream(mb.MODULE_LIST, b""), mb.Stream(0xBEEF, name)])
    modules = mb.module_list([(0x7FFB0B130000, 0x1F8000, 0), (0x7FFB0A320000, 0xBD000, 0)])
    dump.streams[0].data = modules
    name_rva = 32 + 24 + len(modules)
    dump.streams[0].data = mb.module_list(
        [(0x7FFB0B130000, 0x1F8000, name_rva), (0x7FFB0A320000, 0xBD000, 0)]
    )
    dump.streams[0].declared_size = len(modules) + 5000
    parsed = parse(dump.build())
    assert [hex(m.base) for m in parsed.modules] == ["0x7ffb0b130000", "0x7ffb0a320000"]
    assert parsed.modules[0].path == "C:\\Windows\\System32\\ntdll.dll"
    assert any("MODULE_LIST declares" in w and "only" in w for w in parsed.warnings)


def test_absurd_element_count_is_bounded_by_the_stream():
    modules = bytearray(mb.module_list([(0x10000, 0x1000, 0)]))
    struct.pack_into("<I", modules, 0, 0xFFFFFFFF)
    parsed = parse(mb.Dump([mb.Stream(mb.MODULE_LIST, bytes(modules))]).build())
    assert len(parsed.modules) == 1
    assert any("ModuleList declares 4,294,967,295 entries; only 1 are read" in w for w in parsed.warnings)


def test_memory64_truncated_mid_range_keeps_what_is_present():
    ranges = [(0x10000, 0x1000), (0x20000, 0x1000), (0x30000, 0x1000)]
    payloads = [b"A" * 0x1000, b"B" * 0x1000, b"C" * 0x1000]
    full = with_memory64(ranges, payloads)
    cut = len(full) - 0x1000 - 0x800  # half of range 2, none of range 3
    parsed = parse(full[:cut])
    assert parsed.read(0x10000, 4) == b"AAAA"
    assert parsed.read(0x207FC, 4) == b"BBBB"
    with pytest.raises(MemoryNotCaptured):
        parsed.read(0x20800, 1)
    with pytest.raises(MemoryNotCaptured):
        parsed.read(0x30000, 1)
    truncation = [w for w in parsed.warnings if "data truncated" in w]
    assert truncation == [
        "Memory64List: data truncated: 1 ranges lie wholly beyond the end of the file and 1 are cut short "
        "(6,144 bytes of memory lost); the bytes that are present are still read"
    ]


def test_range_wrapping_past_2_64_is_dropped():
    data = with_memory64([(0xFFFFFFFFFFFFF000, 0x2000), (0x10000, 0x10)], [b"x" * 0x2000, b"y" * 0x10])
    parsed = parse(data)
    assert [(s.start, s.size) for s in parsed.segments] == [(0x10000, 0x10)]
    assert parsed.read(0x10000, 2) == b"yy"
    assert any("1 ranges wrap past 2^64" in w for w in parsed.warnings)


def test_x86_ranges_outside_32_bits_are_dropped_and_sign_extension_undone():
    data = with_memory64(
        [(0x1_0000_0000, 0x10), (0xFFFFFFFF80001000, 0x10), (0x400000, 0x10)],
        [b"a" * 16, b"k" * 16, b"e" * 16],
        arch=0,
    )
    parsed = parse(data)
    assert parsed.arch == "x86"
    assert [hex(s.start) for s in parsed.segments] == ["0x400000", "0x80001000"]
    assert parsed.read(0x80001000, 2) == b"kk"
    assert any("outside the 32-bit address space" in w for w in parsed.warnings)
    assert any("sign-extended" in w for w in parsed.warnings)


def test_overlap_across_lists_prefers_memory64():
    dump = mb.Dump([mb.Stream(mb.MEMORY64_LIST, b""), mb.Stream(mb.MEMORY_LIST, b"")])
    dump.streams[0].data = mb.memory64_list([(0x5000, 0x10)], 0)
    dump.streams[1].data = mb.memory_list([(0x4FF8, 0x20, 0)])
    tail_rva = dump.offset_of_tail()
    dump.streams[0].data = mb.memory64_list([(0x5000, 0x10)], tail_rva)
    dump.streams[1].data = mb.memory_list([(0x4FF8, 0x20, tail_rva + 0x10)])
    dump.tail = b"6" * 0x10 + b"L" * 0x20
    parsed = parse(dump.build())
    assert parsed.read(0x4FF8, 0x20) == b"L" * 8 + b"6" * 0x10 + b"L" * 8
    assert any("overlap earlier ones stored elsewhere" in w for w in parsed.warnings)


def test_duplicate_streams_use_the_first():
    dump = mb.Dump(
        [
            mb.Stream(mb.SYSTEM_INFO, mb.system_info(build=19045)),
            mb.Stream(mb.SYSTEM_INFO, mb.system_info(build=1)),
        ]
    )
    parsed = parse(dump.build())
    assert parsed.system_info.build_number == 19045
    assert any("SYSTEM_INFO appears more than once" in w for w in parsed.warnings)
    assert parsed.streams[1].note.startswith("duplicate of directory entry 0")


def test_bad_string_rvas_and_odd_lengths():
    odd = struct.pack("<I", 7) + "ntdll.dll".encode("utf-16-le")
    dump = mb.Dump([mb.Stream(mb.MODULE_LIST, b""), mb.Stream(0xBEEF, odd)])
    modules = mb.module_list([(0x10000, 0x1000, 0), (0x20000, 0x1000, 0)])
    odd_rva = 32 + 24 + len(modules)
    dump.streams[0].data = mb.module_list([(0x10000, 0x1000, 0x7FFFFFF0), (0x20000, 0x1000, odd_rva)])
    parsed = parse(dump.build())
    assert parsed.modules[0].path == "<unreadable name, module 0>"
    assert parsed.modules[1].path == "ntd"  # 7 bytes: the odd trailing byte is dropped
    assert any("string RVA 0x7FFFFFF0 lies outside the file" in w for w in parsed.warnings)
    assert any("odd byte length 7" in w for w in parsed.warnings)


def test_unknown_stream_types_are_listed_not_interpreted():
    dump = mb.Dump(
        [mb.Stream(mb.SYSTEM_INFO, mb.system_info()), mb.Stream(23, b"\x01" * 8), mb.Stream(25, b"\x02" * 8)]
    )
    parsed = parse(dump.build())
    assert [(s.type_name, s.note) for s in parsed.streams[1:]] == [
        ("IPT_TRACE", "not interpreted"),
        ("0x19", "not interpreted"),
    ]
    assert parsed.warnings.messages == [
        "the dump holds no process memory (no MemoryList or Memory64List data)"
    ]


def test_inconsistent_list_header_skips_only_that_stream():
    bad_info = struct.pack("<IIQ", 16, 7, 1) + bytes(48)
    dump = mb.Dump([mb.Stream(mb.SYSTEM_INFO, mb.system_info()), mb.Stream(mb.MEMORY_INFO_LIST, bad_info)])
    parsed = parse(dump.build())
    assert parsed.system_info is not None and parsed.system_info.build_number == 19045
    assert parsed.memory_info == []
    assert any(
        "MEMORY_INFO_LIST could not be read (entry size 7 is out of range" in w for w in parsed.warnings
    )


def test_nothing_usable_is_one_error():
    parsed = parse(mb.Dump([mb.Stream(0x4D7A0001, b"junk")]).build())
    with pytest.raises(MinidumpError, match="no usable data in this minidump"):
        parsed.require_usable()
