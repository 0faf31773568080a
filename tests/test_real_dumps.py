"""The minidump reader against real third-party dumps, checked by readers we did not write.

Every ``.dmp`` under ``../shared/dumps/real`` is listed below with what it is. For the Windows dumps
the reader's modules, threads, declared memory ranges, exception, system and misc info must equal
what LLVM's ``obj2yaml`` prints, and its module list, thread instruction pointers, memory regions
and memory bytes must equal what LLDB's minidump plugin reports. Non-Windows dumps must be refused
with an :class:`InputError` that names the platform; malformed ones with a :class:`MinidumpError`.
"""

from __future__ import annotations

import struct
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from functools import cache
from pathlib import Path
from typing import Any, Optional

import pytest

from tests.independent import (
    SYSTEM_PYTHON,
    ToolFailed,
    codeview_pdb70,
    context_ip_sp,
    hex_bytes,
    lldb_python,
    lldb_report,
    lldb_uuid_of_pdb70,
    minidump_string,
    number,
    obj2yaml,
    obj2yaml_path,
    stream,
)
from wmiforensics.errors import InputError, MinidumpError
from wmiforensics.minidump import MemoryNotCaptured, Minidump

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "dumps" / "real"

#: Windows dumps and the processor architecture their SystemInfo names.
WINDOWS = {
    "breakpad/ascii_read_av.dmp": "x86",
    "breakpad/ascii_read_av_block_write.dmp": "x86",
    "breakpad/ascii_read_av_clobber_write.dmp": "x86",
    "breakpad/ascii_read_av_conditional.dmp": "x86",
    "breakpad/ascii_read_av_then_jmp.dmp": "x86",
    "breakpad/ascii_read_av_xchg_write.dmp": "x86",
    "breakpad/ascii_write_av.dmp": "x86",
    "breakpad/ascii_write_av_arg_to_call.dmp": "x86",
    "breakpad/exec_av_on_stack.dmp": "x86",
    "breakpad/minidump2.dmp": "x86",
    "breakpad/minidump_32bit_crash_addr.dmp": "x86",
    "breakpad/null_read_av.dmp": "x86",
    "breakpad/null_write_av.dmp": "x86",
    "breakpad/read_av_clobber_write.dmp": "x86",
    "breakpad/read_av_conditional.dmp": "x86",
    "breakpad/read_av_non_null.dmp": "x86",
    "breakpad/stack_exhaustion.dmp": "x86",
    "breakpad/thread_name_list.dmp": "x86",
    "breakpad/tiny-exe-fastfail.dmp": "x64",
    "breakpad/tiny-exe-with-cet-xsave-x86.dmp": "x86",
    "breakpad/write_av_non_canonical.dmp": "x64",
    "breakpad/write_av_non_null.dmp": "x86",
    "llvm-lldb/fizzbuzz_no_heap.dmp": "x86",
    # Despite its name, a well-formed x64 Windows 10 dump of a process that hit an invalid-parameter
    # handler (rust-minidump uses it for its assertion-info stream), not a malformed file.
    "rust-minidump/invalid-parameter.dmp": "x64",
    "rust-minidump/test.dmp": "x86",
}

#: Dumps written on other platforms: the platform name the refusal must give, and the OS part of
#: the target triple LLDB derives from the same SystemInfo.
FOREIGN = {
    "breakpad/minidump_crashpad_annotation.dmp": ("iOS", "PlatformId 0x8102", "-apple-ios"),
    "llvm-lldb/regions-memlist64.dmp": ("macOS", "PlatformId 0x8101", "-apple-macosx"),
    "rust-minidump/linux-mini.dmp": ("Linux", "PlatformId 0x8201", "-linux"),
    "rust-minidump/pipeline-inlines-macos-segv.dmp": ("macOS", "PlatformId 0x8101", "-apple-macosx"),
    "rust-minidump/simple-crashpad.dmp": ("macOS", "PlatformId 0x8101", "-apple-macosx"),
}

#: Fuzzer-made files: the problem the reader's message must name.
MALFORMED = {
    "rust-minidump/invalid-range.dmp": "the stream directory (RVA 0x2) overlaps the 32-byte header",
    "rust-minidump/invalid-record-count.dmp": "the stream directory (RVA 0x1E) overlaps the 32-byte header",
}

#: Architecture as obj2yaml names it, and the LLDB triple prefix, for each reader architecture.
ARCH = {"x86": ("X86", "i386-pc-windows"), "x64": ("AMD64", "x86_64-pc-windows")}

pytestmark = pytest.mark.skipif(
    not REAL.is_dir(), reason=f"the real third-party dumps are not present at {REAL}"
)
needs_lldb = pytest.mark.skipif(
    lldb_python() is None, reason=f"LLDB's Python module is not importable from {SYSTEM_PYTHON}"
)
needs_obj2yaml = pytest.mark.skipif(obj2yaml_path() is None, reason="obj2yaml (LLVM) is not installed")


def _params(table: dict[str, Any]) -> list:
    return [pytest.param(name, id=name) for name in sorted(table)]


def _open(relative: str) -> Minidump:
    return Minidump.open(REAL / relative)


@cache
def _yaml(relative: str) -> dict[str, Any]:
    return obj2yaml(REAL / relative)


@cache
def _file_bytes(relative: str) -> bytes:
    return (REAL / relative).read_bytes()


def _declared(document: dict[str, Any], stream_type: str) -> list[tuple[int, bytes]]:
    found = stream(document, stream_type)
    if not found:
        return []
    return [
        (number(item["Start of Memory Range"]), hex_bytes(item.get("Content")))
        for item in found["Memory Ranges"]
    ]


def _stacks(document: dict[str, Any]) -> list[tuple[int, bytes]]:
    threads = (stream(document, "ThreadList") or {}).get("Threads", [])
    return [
        (number(item["Stack"]["Start of Memory Range"]), hex_bytes(item["Stack"].get("Content")))
        for item in threads
    ]


def _reads(relative: str) -> list[tuple[int, int]]:
    """Addresses to compare with LLDB: range starts, thread IPs and SPs, module headers.

    Each read stays inside one declared range, because LLDB returns the bytes of one range only.
    """
    with _open(relative) as dump:
        ranges = [item for item in dump.memory_ranges if item.source != "thread stack"]
        reads = [(item.start, min(16, item.size)) for item in ranges[:6]]
        for thread in dump.threads:
            for address in (thread.instruction_pointer, thread.stack_pointer):
                holder = next((item for item in ranges if item.start <= address < item.end), None)
                reads.append((address, min(16, holder.end - address) if holder else 16))
        reads += [(module.base, 2) for module in dump.modules[:8]]
    return reads


@cache
def _lldb(relative: str) -> dict[str, Any]:
    return lldb_report(REAL / relative, _reads(relative))


@pytest.fixture(scope="module", autouse=True)
def _run_oracles_in_parallel():
    """Start obj2yaml and LLDB for every Windows dump at once; each test then reads the cache."""
    jobs = []
    if obj2yaml_path():
        jobs += [(_yaml, name) for name in WINDOWS]
    if lldb_python():
        jobs += [(_lldb, name) for name in WINDOWS]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for future in [pool.submit(function, name) for function, name in jobs]:
            with suppress(ToolFailed):  # the test that needs the result reports the failure
                future.result()
    yield


def test_every_real_dump_is_classified():
    found = {path.relative_to(REAL).as_posix() for path in REAL.rglob("*.dmp")}
    known = set(WINDOWS) | set(FOREIGN) | set(MALFORMED)
    assert found == known, f"unclassified: {sorted(found - known)}; missing: {sorted(known - found)}"


# -- Windows dumps ---------------------------------------------------------------------------------


@pytest.mark.parametrize("relative", _params(WINDOWS))
def test_windows_dump_opens(relative):
    with _open(relative) as dump:
        dump.require_windows()
        dump.require_usable()
        assert dump.arch == WINDOWS[relative]
        assert dump.system_info.platform_id == 2
        assert dump.modules and dump.threads and dump.segments


@pytest.mark.parametrize("relative", _params(WINDOWS))
def test_windows_dump_reads_without_warnings(relative):
    with _open(relative) as dump:
        assert list(dump.warnings) == []


@needs_obj2yaml
@pytest.mark.parametrize("relative", _params(WINDOWS))
def test_system_and_misc_info_match_obj2yaml(relative):
    document = _yaml(relative)
    info = stream(document, "SystemInfo")
    with _open(relative) as dump:
        system = dump.system_info
        assert info["Processor Arch"] == ARCH[dump.arch][0]
        assert info["Platform ID"] == "Win32NT"
        assert (system.major_version, system.minor_version, system.build_number) == (
            number(info.get("Major Version", 0)),
            number(info.get("Minor Version", 0)),
            number(info.get("Build Number", 0)),
        )
        assert system.csd_version == info.get("CSD Version", "")
        assert system.processor_level == number(info.get("Processor Level", 0))
        assert system.processor_revision == number(info.get("Processor Revision", 0))
        assert system.number_of_processors == number(info.get("Number of Processors", 0))
        assert system.product_type == number(info.get("Product type", 0))
        assert system.suite_mask == number(info.get("Suite Mask", 0))
        if dump.arch == "x86":
            assert system.vendor_id == info["CPU"]["Vendor ID"]

        raw = hex_bytes(stream(document, "MiscInfo")["Content"])
        size, flags, pid, created, user, kernel = struct.unpack_from("<6I", raw)
        misc = dump.misc_info
        assert (misc.size_of_info, misc.flags1) == (size, flags)
        assert misc.process_id == (pid if flags & 1 else None)
        assert (misc.process_create_time, misc.process_user_time, misc.process_kernel_time) == (
            (created, user, kernel) if flags & 2 else (None, None, None)
        )


def _expected_module(item: dict[str, Any]) -> tuple:
    version = item.get("Version Info") or {}
    file_version = None
    if number(version.get("Signature", 0)) == 0xFEEF04BD:
        high, low = number(version.get("File Version High", 0)), number(version.get("File Version Low", 0))
        file_version = f"{high >> 16}.{high & 0xFFFF}.{low >> 16}.{low & 0xFFFF}"
    return (
        number(item["Base of Image"]),
        number(item["Size of Image"]),
        number(item.get("Checksum", 0)),
        number(item.get("Time Date Stamp", 0)),
        item["Module Name"],
        file_version,
        *codeview_pdb70(hex_bytes(item.get("CodeView Record"))),
    )


@needs_obj2yaml
@pytest.mark.parametrize("relative", _params(WINDOWS))
def test_modules_match_obj2yaml(relative):
    expected = [_expected_module(item) for item in stream(_yaml(relative), "ModuleList")["Modules"]]
    with _open(relative) as dump:
        actual = [
            (
                m.base,
                m.size,
                m.checksum,
                m.timestamp,
                m.path,
                m.file_version,
                m.pdb_name,
                m.pdb_guid,
                m.pdb_age,
            )
            for m in dump.modules
        ]
    assert actual == expected


@needs_lldb
@pytest.mark.parametrize("relative", _params(WINDOWS))
def test_modules_match_lldb(relative):
    report = _lldb(relative)
    assert report["loaded"], report["error"]
    assert report["triple"] == ARCH[WINDOWS[relative]][1]
    with _open(relative) as dump:
        assert len(report["modules"]) == len(dump.modules)
        assert [(m["path"], m["base"], m["size"]) for m in report["modules"]] == [
            (m.path, m.base, m.size) for m in dump.modules
        ]
        assert [m["uuid"] for m in report["modules"]] == [
            lldb_uuid_of_pdb70(m.pdb_guid, m.pdb_age) if m.pdb_guid else None for m in dump.modules
        ]


@needs_obj2yaml
@pytest.mark.parametrize("relative", _params(WINDOWS))
def test_threads_match_obj2yaml(relative):
    document = _yaml(relative)
    arch = stream(document, "SystemInfo")["Processor Arch"]
    expected = []
    for item in stream(document, "ThreadList")["Threads"]:
        context = hex_bytes(item["Context"])
        expected.append(
            (
                number(item["Thread Id"]),
                number(item.get("Suspend Count", 0)),
                number(item.get("Priority Class", 0)),
                number(item.get("Priority", 0)),
                number(item.get("Environment Block", 0)),
                number(item["Stack"]["Start of Memory Range"]),
                len(hex_bytes(item["Stack"].get("Content"))),
                len(context),
                *context_ip_sp(arch, context),
            )
        )
    with _open(relative) as dump:
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


@needs_obj2yaml
@pytest.mark.parametrize("relative", _params(WINDOWS))
def test_thread_start_addresses_and_names_match_the_raw_streams(relative):
    """ThreadInfoList (0x11) and ThreadNames (0x18) are raw hex in obj2yaml: decode them here."""
    document = _yaml(relative)
    starts: dict[int, int] = {}
    info = stream(document, "ThreadInfoList")
    if info:
        raw = hex_bytes(info["Content"])
        header, entry, count = struct.unpack_from("<3I", raw)
        for index in range(count):
            tid = struct.unpack_from("<I", raw, header + index * entry)[0]
            starts[tid] = struct.unpack_from("<Q", raw, header + index * entry + 48)[0]
    names: dict[int, str] = {}
    listed = stream(document, "0x18")
    if listed:
        raw = hex_bytes(listed["Content"])
        for index in range(struct.unpack_from("<I", raw)[0]):
            tid, rva = struct.unpack_from("<IQ", raw, 4 + index * 12)
            names[tid] = minidump_string(_file_bytes(relative), rva)
    with _open(relative) as dump:
        assert {t.thread_id: t.start_address for t in dump.threads} == {
            t.thread_id: starts.get(t.thread_id) for t in dump.threads
        }
        assert {t.thread_id: t.name for t in dump.threads if t.name} == names


@needs_obj2yaml
@pytest.mark.parametrize("relative", _params(WINDOWS))
def test_exception_matches_obj2yaml(relative):
    found = stream(_yaml(relative), "Exception")
    with _open(relative) as dump:
        if found is None:
            assert dump.exception is None
            return
        record = found["Exception Record"]
        assert (
            dump.exception.thread_id,
            dump.exception.code,
            dump.exception.flags,
            dump.exception.address,
        ) == (
            number(found["Thread ID"]),
            number(record["Exception Code"]),
            number(record.get("Exception Flags", 0)),
            number(record.get("Exception Address", 0)),
        )


@needs_obj2yaml
@pytest.mark.parametrize("relative", _params(WINDOWS))
def test_memory_ranges_and_bytes_match_obj2yaml(relative):
    document = _yaml(relative)
    memory64 = _declared(document, "Memory64List")
    memory = _declared(document, "MemoryList")
    stacks = _stacks(document)
    expected = [
        (start, len(content), source)
        for source, ranges in (("Memory64List", memory64), ("MemoryList", memory), ("thread stack", stacks))
        for start, content in ranges
        if content
    ]
    with _open(relative) as dump:
        assert [(r.start, r.size, r.source) for r in dump.memory_ranges] == expected
        assert len(dump.memory_ranges) == len(expected)
        for start, content in memory64 + memory + stacks:
            assert dump.read(start, len(content)) == content, hex(start)


def _lldb_regions_without_memory_info(dump: Minidump) -> list[tuple[int, int, bool]]:
    """The regions LLDB 22 lists for a dump without MemoryInfoList (ProcessMinidump.cpp).

    One readable region per non-empty MemoryList and Memory64List descriptor, as declared; then, for
    each module whose whole image lies in a gap between them, one readable and executable region for
    the image. Thread stack descriptors are not consulted.
    """
    declared = sorted((r.start, r.end) for r in dump.memory_ranges if r.source != "thread stack")
    regions = [(start, end, False) for start, end in declared]
    for module in dump.modules:
        if any(start <= module.base < end for start, end in declared):
            continue
        gap_start = max((end for start, end in declared if end <= module.base), default=0)
        gap_end = min((start for start, end in declared if start > module.base), default=1 << 64)
        if gap_start <= module.base and module.end <= gap_end:
            regions.append((module.base, module.end, True))
    return sorted(regions)


@needs_lldb
@pytest.mark.parametrize("relative", _params(WINDOWS))
def test_memory_regions_match_lldb(relative):
    report = _lldb(relative)
    with _open(relative) as dump:
        assert not dump.memory_info
        expected = _lldb_regions_without_memory_info(dump)
    assert [(r["base"], r["end"], r["executable"]) for r in report["regions"]] == expected
    assert all(r["readable"] and r["mapped"] and not r["writable"] for r in report["regions"])


def _read_or_none(dump: Minidump, address: int, length: int) -> Optional[bytes]:
    try:
        return dump.read(address, length)
    except MemoryNotCaptured:
        return None


@needs_lldb
@needs_obj2yaml
@pytest.mark.parametrize("relative", _params(WINDOWS))
def test_memory_bytes_match_lldb(relative):
    report = _lldb(relative)
    assert len(report["reads"]) == len(_reads(relative))
    document = _yaml(relative)
    declared = [
        (start, start + len(content))
        for start, content in _declared(document, "MemoryList") + _declared(document, "Memory64List")
    ]
    captured = []
    with _open(relative) as dump:
        for read in report["reads"]:
            ours = _read_or_none(dump, read["address"], read["length"])
            where = f"0x{read['address']:x}+{read['length']}"
            if ours is None:
                assert read["error"] is not None and read["hex"] == "", where
            else:
                assert read["error"] is None, where
                assert ours.hex() == read["hex"], where
                captured.append(read["address"])
    assert captured == [
        read["address"]
        for read in report["reads"]
        if any(start <= read["address"] < end for start, end in declared)
    ]
    assert len(captured) >= 4


@needs_lldb
@needs_obj2yaml
@pytest.mark.parametrize("relative", _params(WINDOWS))
def test_thread_instruction_pointers_match_lldb(relative):
    """LLDB takes the faulting thread's registers from the Exception stream's context record."""
    report = _lldb(relative)
    exception = stream(_yaml(relative), "Exception")
    arch = ARCH[WINDOWS[relative]][0]
    with _open(relative) as dump:
        assert [t["tid"] for t in report["threads"]] == [t.thread_id for t in dump.threads]
        faulting = dump.exception.thread_id if dump.exception else None
        for thread, seen in zip(dump.threads, report["threads"]):
            if thread.thread_id == faulting:
                expected = context_ip_sp(arch, hex_bytes(exception["Thread Context"]))[0]
            else:
                expected = thread.instruction_pointer
            assert seen["pc"] == expected, thread.thread_id


# -- dumps from other platforms --------------------------------------------------------------------


@pytest.mark.parametrize("relative", _params(FOREIGN))
def test_foreign_dump_is_refused_naming_the_platform(relative):
    platform, platform_id, _ = FOREIGN[relative]
    with _open(relative) as dump:
        assert not dump.is_windows
        with pytest.raises(InputError) as raised:
            dump.require_windows()
    assert type(raised.value) is InputError
    message = str(raised.value)
    assert message.startswith(f"{Path(relative).name}: this minidump was written on {platform} ")
    assert platform_id in message
    assert message.endswith("wmi-forensics reads Windows process dumps only")


@needs_lldb
@pytest.mark.parametrize("relative", _params(FOREIGN))
def test_lldb_agrees_on_the_foreign_platform(relative):
    report = _lldb_plain(relative)
    assert report["loaded"], report["error"]
    assert report["triple"].endswith(FOREIGN[relative][2])


@cache
def _lldb_plain(relative: str) -> dict[str, Any]:
    return lldb_report(REAL / relative)


@needs_obj2yaml
@pytest.mark.parametrize("relative", _params(FOREIGN))
def test_foreign_dump_memory_lists_still_parse_exactly(relative):
    """The refusal comes from SystemInfo alone: the lists were read right (the only real Memory64List
    among these files is in the macOS-tagged regions-memlist64.dmp)."""
    document = _yaml(relative)
    declared = {
        "Memory64List": _declared(document, "Memory64List"),
        "MemoryList": _declared(document, "MemoryList"),
        "thread stack": _stacks(document),
    }
    with _open(relative) as dump:
        assert [(r.start, r.size, r.source) for r in dump.memory_ranges] == [
            (start, len(content), source)
            for source, ranges in declared.items()
            for start, content in ranges
            if content
        ]
        for ranges in declared.values():
            for start, content in ranges:
                assert dump.read(start, len(content)) == content, hex(start)


@needs_lldb
def test_lldb_reads_the_same_memory64_bytes():
    relative = "llvm-lldb/regions-memlist64.dmp"
    with _open(relative) as dump:
        ranges = [(r.start, r.size) for r in dump.memory_ranges]
        assert ranges == [(0x1000, 0x10), (0x2000, 0x20)]
        report = lldb_report(REAL / relative, ranges)
        assert [(r["base"], r["end"] - r["base"]) for r in report["regions"]] == ranges
        assert [read["hex"] for read in report["reads"]] == [dump.read(*item).hex() for item in ranges]
        assert dump.read(0x1000, 0x10) == b"1" * 0x10 and dump.read(0x2000, 0x20) == b"3" * 0x20


# -- malformed files -------------------------------------------------------------------------------


@pytest.mark.parametrize("relative", _params(MALFORMED))
def test_malformed_dump_is_unusable_with_a_clear_message(relative):
    with _open(relative) as dump:
        assert not dump.is_usable
        assert MALFORMED[relative] in list(dump.warnings)
        with pytest.raises(MinidumpError) as raised:
            dump.require_usable()
    message = str(raised.value)
    assert message.startswith(f"{Path(relative).name}: no usable data in this minidump: ")
    assert MALFORMED[relative] in message


@needs_lldb
@pytest.mark.parametrize("relative", _params(MALFORMED))
def test_lldb_also_rejects_the_malformed_dump(relative):
    report = _lldb_plain(relative)
    assert not report["loaded"]
    assert report["error"] == "Unexpected EOF"


@needs_obj2yaml
@pytest.mark.parametrize("relative", _params(MALFORMED))
def test_obj2yaml_also_rejects_the_malformed_dump(relative):
    with pytest.raises(ToolFailed, match="Unexpected EOF"):
        obj2yaml(REAL / relative)
