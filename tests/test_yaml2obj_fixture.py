"""A minidump written by LLVM's yaml2obj, read by our reader, by Volatility and by LLDB.

``tests/data/yaml2obj_x64_process.yaml`` is turned into a dump at test time by ``yaml2obj``, a
writer we did not write; every expectation below is read from that YAML document (the raw streams
it carries as hex are decoded here), with a few literal values as a check on the decoding.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import vol_json
from tests.independent import (
    PROTECTION_BITS,
    STATE_BITS,
    SYSTEM_PYTHON,
    TYPE_BITS,
    bitset,
    codeview_pdb70,
    context_ip_sp,
    hex_bytes,
    lldb_python,
    lldb_region_flags,
    lldb_report,
    lldb_uuid_of_pdb70,
    load_yaml,
    number,
    stream,
    yaml2obj,
    yaml2obj_path,
)
from wmiforensics.minidump import MemoryNotCaptured, Minidump

SOURCE = Path(__file__).resolve().parent / "data" / "yaml2obj_x64_process.yaml"

pytestmark = pytest.mark.skipif(
    yaml2obj_path() is None, reason="yaml2obj (LLVM 20 or later) is not installed"
)
needs_lldb = pytest.mark.skipif(
    lldb_python() is None, reason=f"LLDB's Python module is not importable from {SYSTEM_PYTHON}"
)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return load_yaml(SOURCE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("yaml2obj") / "x64_process.dmp"
    yaml2obj(SOURCE, output)
    return output


@pytest.fixture
def dump(built):
    with Minidump.open(built) as opened:
        yield opened


def _raw(document: dict[str, Any], stream_type: str) -> bytes:
    return hex_bytes(stream(document, stream_type)["Content"])


def _threads(document):
    return stream(document, "ThreadList")["Threads"]


def _ranges(document, stream_type):
    return [
        (number(item["Start of Memory Range"]), hex_bytes(item["Content"]))
        for item in stream(document, stream_type)["Memory Ranges"]
    ]


def _stacks(document):
    return [
        (number(item["Stack"]["Start of Memory Range"]), hex_bytes(item["Stack"]["Content"]))
        for item in _threads(document)
    ]


def test_header_and_streams(dump, document):
    assert dump.header.version == number(document["Version"]) == 0xA793
    assert dump.header.flags == number(document["Flags"]) == 0x1826
    assert dump.header.number_of_streams == len(document["Streams"]) == 9
    assert [info.note for info in dump.streams] == [""] * 9
    assert list(dump.warnings) == []
    dump.require_windows()
    dump.require_usable()


def test_system_info(dump, document):
    info = stream(document, "SystemInfo")
    system = dump.system_info
    assert info["Processor Arch"] == "AMD64" and dump.arch == "x64"
    assert info["Platform ID"] == "Win32NT" and system.platform_id == 2
    assert (system.major_version, system.minor_version, system.build_number) == (
        number(info["Major Version"]),
        number(info["Minor Version"]),
        number(info["Build Number"]),
    )
    assert system.csd_version == info["CSD Version"] == "Service Pack 0"
    assert system.version_text == "10.0.19045 Service Pack 0"
    assert system.processor_level == number(info["Processor Level"])
    assert system.processor_revision == number(info["Processor Revision"])
    assert system.number_of_processors == number(info["Number of Processors"]) == 8
    assert system.product_type == number(info["Product type"])
    assert system.suite_mask == number(info["Suite Mask"])


def test_misc_info(dump, document):
    size, flags, pid, created, user, kernel = struct.unpack("<6I", _raw(document, "MiscInfo"))
    misc = dump.misc_info
    assert (misc.size_of_info, misc.flags1, misc.process_id) == (size, flags, pid) == (24, 3, 0x1F40)
    assert (misc.process_create_time, misc.process_user_time, misc.process_kernel_time) == (
        created,
        user,
        kernel,
    )
    assert dump.process_id == 8000


def test_modules(dump, document):
    expected = []
    for item in stream(document, "ModuleList")["Modules"]:
        version = item.get("Version Info", {})
        high, low = number(version.get("File Version High", 0)), number(version.get("File Version Low", 0))
        expected.append(
            (
                item["Module Name"],
                number(item["Base of Image"]),
                number(item["Size of Image"]),
                number(item.get("Checksum", 0)),
                number(item.get("Time Date Stamp", 0)),
                f"{high >> 16}.{high & 0xFFFF}.{low >> 16}.{low & 0xFFFF}" if version else None,
                *codeview_pdb70(hex_bytes(item["CodeView Record"])),
            )
        )
    actual = [
        (m.path, m.base, m.size, m.checksum, m.timestamp, m.file_version, m.pdb_name, m.pdb_guid, m.pdb_age)
        for m in dump.modules
    ]
    assert actual == expected
    assert [m.name for m in dump.modules] == ["WmiPrvSE.exe", "ntdll.dll", "wbemcore.dll"]
    assert dump.main_module.base == 0x7FF6A0B20000 and dump.main_module.end == 0x7FF6A0B9B000
    assert actual[0][5:] == ("10.0.19041.3256", "wmiprvse.pdb", "D8D2F4C38A6B4F1E9C3D2B7A6E5F4C1D", 2)


def test_threads_and_registers_from_the_context(dump, document):
    expected = []
    for item in _threads(document):
        context = hex_bytes(item["Context"])
        expected.append(
            (
                number(item["Thread Id"]),
                number(item.get("Suspend Count", 0)),
                number(item.get("Priority Class", 0)),
                number(item.get("Priority", 0)),
                number(item["Environment Block"]),
                number(item["Stack"]["Start of Memory Range"]),
                len(hex_bytes(item["Stack"]["Content"])),
                len(context),
                *context_ip_sp("AMD64", context),
            )
        )
    actual = [
        (
            t.thread_id,
            t.suspend_count,
            t.priority_class,
            t.priority,
            t.teb,
            t.stack_start,
            t.stack_size,
            t.context_size,
            t.instruction_pointer,
            t.stack_pointer,
        )
        for t in dump.threads
    ]
    assert actual == expected
    assert [(t.thread_id, t.context_size) for t in dump.threads] == [(0x1A2C, 1232), (0x2F44, 1232)]
    assert [t.instruction_pointer for t in dump.threads] == [0x7FFB2D94D0C4, 0x1F0A0010040]
    assert [t.stack_pointer for t in dump.threads] == [0xD5A1AFFF28, 0xD5A1CFF840]


def test_thread_info_list_raw_stream(dump, document):
    raw = _raw(document, "0x11")
    header, entry, count = struct.unpack_from("<3I", raw)
    expected = {}
    for index in range(count):
        tid, flags, _error, status, created, _exited, _kernel, _user, start, _affinity = struct.unpack_from(
            "<4I6Q", raw, header + index * entry
        )
        expected[tid] = (start, created, status, flags)
    actual = {
        t.thread_id: (t.start_address, t.create_time, t.exit_status, t.dump_flags) for t in dump.threads
    }
    assert actual == expected
    assert actual[0x2F44][0] == 0x1F0A0010000
    assert dump.threads[0].created_at.isoformat() == "2024-02-09T19:28:34.654984+00:00"


def test_handle_data_raw_stream(dump, document):
    raw = _raw(document, "HandleData")
    header, stride, count, _reserved = struct.unpack_from("<4I", raw)
    expected = []
    for index in range(count):
        handle, type_rva, name_rva, attributes, access, handles, pointers = struct.unpack_from(
            "<Q6I", raw, header + index * stride
        )
        assert (type_rva, name_rva) == (0, 0)
        expected.append((handle, None, None, attributes, access, handles, pointers))
    assert stride == 40
    assert [
        (
            h.handle,
            h.type_name,
            h.object_name,
            h.attributes,
            h.granted_access,
            h.handle_count,
            h.pointer_count,
        )
        for h in dump.handles
    ] == expected


def test_memory_ranges_and_bytes(dump, document):
    memory64, memory, stacks = (
        _ranges(document, "Memory64List"),
        _ranges(document, "MemoryList"),
        _stacks(document),
    )
    assert [(r.start, r.size, r.source) for r in dump.memory_ranges] == [
        (start, len(content), source)
        for source, ranges in (("Memory64List", memory64), ("MemoryList", memory), ("thread stack", stacks))
        for start, content in ranges
    ]
    for start, content in memory64 + memory + stacks:
        assert dump.read(start, len(content)) == content
    assert [(s.start, s.size) for s in dump.segments] == sorted(
        (start, len(content)) for start, content in memory64 + memory + stacks
    )
    assert dump.read(0x7FF6A0B20000, 2) == b"MZ"
    # ret after the syscall in the first thread's ntdll stub; nops in the injected code
    assert dump.read(dump.threads[0].instruction_pointer, 1) == b"\xc3"
    assert dump.read(dump.threads[1].instruction_pointer, 4) == b"\x90" * 4
    assert dump.read(0x1F0A0010000, 5) == bytes.fromhex("FC4883E4F0")
    assert dump.captured_bytes == sum(len(content) for _, content in memory64 + memory + stacks) == 0x2C0
    with pytest.raises(MemoryNotCaptured) as missing:
        dump.read(0x1F0A0010070, 0x20)
    assert missing.value.address == 0x1F0A0010080


def test_memory_info(dump, document):
    expected = []
    for item in stream(document, "MemoryInfoList")["Memory Ranges"]:
        base = number(item["Base Address"])
        allocation_protect = bitset(item["Allocation Protect"], PROTECTION_BITS)
        protect = bitset(item["Protect"], PROTECTION_BITS) if "Protect" in item else allocation_protect
        expected.append(
            (
                base,
                number(item.get("Allocation Base", base)),
                allocation_protect,
                number(item["Region Size"]),
                bitset(item["State"], STATE_BITS),
                protect,
                bitset(item["Type"], TYPE_BITS),
            )
        )
    actual = [
        (i.base, i.allocation_base, i.allocation_protect, i.size, i.state, i.protect, i.type)
        for i in dump.memory_info
    ]
    assert actual == expected
    assert [(i.state_name, i.protect_name, i.type_name) for i in dump.memory_info[:6]] == [
        ("MEM_RESERVE", "-", "MEM_PRIVATE"),
        ("MEM_COMMIT", "PAGE_READWRITE|PAGE_GUARD", "MEM_PRIVATE"),
        ("MEM_COMMIT", "PAGE_READWRITE", "MEM_PRIVATE"),
        ("MEM_COMMIT", "PAGE_READWRITE", "MEM_PRIVATE"),
        ("MEM_COMMIT", "PAGE_EXECUTE_READWRITE", "MEM_PRIVATE"),
        ("MEM_FREE", "PAGE_NOACCESS", "-"),
    ]


# -- Volatility ------------------------------------------------------------------------------------


def test_vol_modules_lists_the_yaml_modules(built, document):
    rows = vol_json(built, "wmi.modules")
    modules = stream(document, "ModuleList")["Modules"]
    assert [(row["Path"], row["Base"], row["Size"], row["Loaded"]) for row in rows] == [
        (item["Module Name"], number(item["Base of Image"]), number(item["Size of Image"]), True)
        for item in modules
    ]
    assert [row["Name"] for row in rows] == ["WmiPrvSE.exe", "ntdll.dll", "wbemcore.dll"]
    assert [row["HeaderCaptured"] for row in rows] == [True, True, False]
    assert [row["PdbName"] for row in rows] == ["wmiprvse.pdb", "ntdll.pdb", None]


def test_vol_threads_reports_the_instruction_pointers(built, document):
    rows = vol_json(built, "wmi.threads")
    assert [(row["TID"], row["InstructionPointer"], row["StackPointer"], row["Teb"]) for row in rows] == [
        (
            number(item["Thread Id"]),
            *context_ip_sp("AMD64", hex_bytes(item["Context"])),
            number(item["Environment Block"]),
        )
        for item in _threads(document)
    ]
    assert rows[0]["IpLocation"].startswith("ntdll.dll+0x9d0c4")
    assert rows[0]["StartAddress"] == 0x7FF6A0B41230
    assert rows[1]["IpLocation"].startswith("unbacked")
    assert rows[1]["StartAddress"] == 0x1F0A0010000


# -- LLDB reading the same file --------------------------------------------------------------------


@needs_lldb
def test_lldb_reads_the_same_modules_threads_regions_and_bytes(built, dump, document):
    captured = _ranges(document, "Memory64List") + _ranges(document, "MemoryList")
    reads = [(start, len(content)) for start, content in captured]
    reads += [(t.instruction_pointer, 4) for t in dump.threads]
    report = lldb_report(built, reads)
    assert report["loaded"], report["error"]
    assert report["triple"] == "x86_64-pc-windows"

    assert [(m["path"], m["base"], m["size"], m["uuid"]) for m in report["modules"]] == [
        (m.path, m.base, m.size, lldb_uuid_of_pdb70(m.pdb_guid, m.pdb_age) if m.pdb_guid else None)
        for m in dump.modules
    ]
    assert [(t["tid"], t["pc"]) for t in report["threads"]] == [
        (t.thread_id, t.instruction_pointer) for t in dump.threads
    ]
    # With a MemoryInfoList, LLDB's regions are its entries, with permissions derived from Protect.
    assert report["regions"] == [
        {"base": i.base, "end": i.end, **lldb_region_flags(i.protect, i.state)} for i in dump.memory_info
    ]
    for read in report["reads"]:
        assert read["error"] is None
        assert read["hex"] == dump.read(read["address"], read["length"]).hex()
