"""Hostile input, round 2: scans, dumps and output that follow the bytes that exist, never the claims.

Each test builds its own damaged input with ``tests/mdmp_bytes.py`` (which shares no code with the
reader) and would hang, amplify, crash or forge output without the fix it covers.
"""

from __future__ import annotations

import contextlib
import signal
import struct
from pathlib import Path

import pytest

from tests import mdmp_bytes as mb
from wmiforensics import captured
from wmiforensics.backends.minidump import facts_from_minidump
from wmiforensics.minidump import BytesSource, Minidump
from wmiforensics.minidump import constants as c
from wmiforensics.yarascan import RulePack, scan_process

MARK = b"HOSTILE-MARKER-0123456789"
RULE = 'rule marker { strings: $m = "HOSTILE-MARKER-0123456789" condition: $m }'


@contextlib.contextmanager
def deadline(seconds: float):
    """Fail (instead of hanging CI) when the block runs longer than ``seconds``."""

    def expire(*_):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def dump_bytes(memory_info, ranges, payloads, *, modules=(), arch=9, extra_streams=()) -> bytes:
    """A dump with SystemInfo, MemoryInfoList, Memory64List (+ optional module list / streams)."""
    streams = [
        mb.Stream(mb.SYSTEM_INFO, mb.system_info(arch=arch)),
        mb.Stream(mb.MEMORY_INFO_LIST, mb.memory_info_list(memory_info)),
        mb.Stream(mb.MEMORY64_LIST, mb.memory64_list(ranges, 0)),
        *extra_streams,
    ]
    dump = mb.Dump(streams)
    dump.streams[2].data = mb.memory64_list(ranges, dump.offset_of_tail())
    dump.tail = b"".join(payloads)
    return dump.build()


def thread_streams(threads) -> list:
    """ThreadList (48-byte MINIDUMP_THREAD, no stack or context) + ThreadInfoList with start addresses."""
    listing = struct.pack("<I", len(threads)) + b"".join(
        struct.pack("<IIIIQQIIII", tid, 0, 0x20, 0, 0, 0, 0, 0, 0, 0) for tid, _ in threads
    )
    infos = struct.pack("<III", 12, 64, len(threads)) + b"".join(
        struct.pack("<IIIIQQQQQQ", tid, 0, 0, 0x103, 0, 0, 0, 0, start, 1) for tid, start in threads
    )
    return [mb.Stream(mb.THREAD_LIST, listing), mb.Stream(mb.THREAD_INFO_LIST, infos)]


def open_dump(data: bytes) -> Minidump:
    return Minidump(BytesSource(data), name="hostile.dmp")


def private_entry(base, size, protect=c.PAGE_EXECUTE_READWRITE, allocation_base=None):
    return (
        base,
        base if allocation_base is None else allocation_base,
        protect,
        size,
        c.MEM_COMMIT,
        protect,
        c.MEM_PRIVATE,
    )


# -- class 1: scan cost follows captured bytes ---------------------------------------------------


def test_scan_of_a_region_reaching_the_top_of_the_address_space_visits_only_captured_bytes():
    base = 0x10000
    page = bytes(0x100) + MARK + bytes(0x1000 - 0x100 - len(MARK))
    data = dump_bytes([private_entry(base, (1 << 64) - base)], [(base, 0x1000)], [page])
    facts = facts_from_minidump(open_dump(data))
    region = facts.regions[0]
    assert region.end == 1 << 47  # cut to the x64 user address space, and said so
    assert any("impossible for this architecture" in note and "0x10000" in note for note in facts.notes)
    with deadline(10):
        hits = list(scan_process(facts, RulePack.from_source(RULE)))
    assert [(hit.rule.identifier, hit.address) for hit in hits] == [("marker", base + 0x100)]


def test_chunks_never_read_holes_and_report_a_boundary_hit_once():
    reads = []
    memory = {0x1000: b"a" * 100, 0x2000: b"b" * 50}

    def read(address, length):
        reads.append((address, length))
        for start, data in memory.items():
            if start <= address < start + len(data):
                return data[address - start : address - start + length]
        return b""

    def spans(start, end):
        return [(s, s + len(d)) for s, d in sorted(memory.items())]

    got = list(captured.chunks(read, spans, 0, 1 << 64, chunk=40, overlap=8))
    assert [(item.address, len(item.data), item.fresh_end) for item in got] == [
        (0x1000, 48, 0x1028),
        (0x1028, 48, 0x1050),
        (0x1050, 20, 0x1064),
        (0x2000, 48, 0x2028),
        (0x2028, 10, 0x2032),
    ]
    assert all(length <= 48 for _, length in reads)
    assert captured.existing_bytes(spans, 0x1010, 0x2010) == 100 - 0x10 + 0x10


def test_full_image_scans_follow_valid_pages_not_a_vad_spanning_user_space():
    from wmiforensics.backends.kernel import valid_pages
    from wmiforensics.backends.paging import PageTableWalker, SoftwarePteLayout

    tables = {0x1000: {0: 0x2000 | 7}, 0x2000: {0: 0x3000 | 7}, 0x3000: {0: 0x4000 | 7}}
    tables[0x4000] = {0x10: 0x5000 | 1, 0x11: 0x6000 | 1 << 11, 0x12: 1 << 10 | 0x7000}

    def physical(address, length):
        entries = tables.get(address)
        if entries is None:
            return b""
        return b"".join(entries.get(index, 0).to_bytes(8, "little") for index in range(512))

    present = valid_pages(PageTableWalker(physical, 0x1000), SoftwarePteLayout())
    with deadline(5):
        runs = list(captured.present_runs(present, 0, 1 << 47))
    assert runs == [(0x10000, 0x12000)]  # present + transition; the prototype PTE is not readable


# -- class 4: impossible ranges are normalised at the backend, with a note -----------------------


def test_impossible_ranges_are_normalised_with_notes():
    from wmiforensics.engine import Severity, analyse

    entries = [
        private_entry(0x10000, 0),  # size 0
        private_entry(0x20000, 0x1000, allocation_base=0x90000),  # allocation base above the region
        private_entry(0x900000000000, 0x1000),  # above the user address space
    ]
    data = dump_bytes(entries, [(0x20000, 0x1000)], [b"\xcc" * 0x1000])
    dump = open_dump(data)
    facts = facts_from_minidump(dump)
    assert [(region.base, region.size, region.allocation_base) for region in facts.regions] == [
        (0x20000, 0x1000, 0x20000)
    ]
    assert "MemoryInfoList: 1 entries declare a RegionSize of 0 and are ignored" in list(dump.warnings)
    notes = " | ".join(facts.notes)
    assert "allocation base above the region" in notes and "0x90000" in notes
    assert "above the user address space" in notes
    for finding in analyse(facts, min_severity=Severity.INFO).findings:
        assert finding.start <= finding.end and finding.size >= 0


def test_modules_that_wrap_are_cut_with_a_note():
    from wmiforensics.backends.bounds import normalise_modules
    from wmiforensics.engine.facts import ModuleFact

    notes = []
    kept = normalise_modules(
        [ModuleFact(0x7FF000000000, (1 << 64) - 0x1000, "C:\\x.dll"), ModuleFact(0x10000, 0, "C:\\y.dll")],
        1 << 47,
        notes,
        "ModuleList",
    )
    assert [(m.base, m.end) for m in kept] == [(0x7FF000000000, 1 << 47), (0x10000, 0x11000)]
    assert len(notes) == 2 and all(note.startswith("ModuleList: ") for note in notes)


def test_listings_never_print_impossible_ranges(tmp_path):
    """Zero-sized regions, and modules or stacks that wrap 2^64, are fixed in the reader with a warning."""
    from tests import conftest

    module_path = mb.minidump_string("C:\\Windows\\System32\\wrap.dll")
    entries = [private_entry(0x10000, 0), private_entry(0x20000, 0x1000)]
    listing = struct.pack("<I", 1) + struct.pack(
        "<IIIIQQIIII", 7, 0, 0x20, 0, 0, 0xFFFFFFFFFFFFF000, 0x2000, 0, 0, 0
    )
    dump = mb.Dump(
        [
            mb.Stream(mb.SYSTEM_INFO, mb.system_info()),
            mb.Stream(mb.MEMORY_INFO_LIST, mb.memory_info_list(entries)),
            mb.Stream(mb.THREAD_LIST, listing),
            mb.Stream(mb.MODULE_LIST, b""),
            mb.Stream(mb.MEMORY64_LIST, mb.memory64_list([(0x20000, 0x1000)], 0)),
        ]
    )
    # The module's name string follows the streams; its list entry points at it.
    dump.streams[3].data = mb.module_list([(0xFFFFFFFFFFFF0000, 0x100000, 0)])
    name_rva = dump.offset_of_tail()
    dump.streams[3].data = mb.module_list([(0xFFFFFFFFFFFF0000, 0x100000, name_rva)])
    dump.streams[4].data = mb.memory64_list([(0x20000, 0x1000)], dump.offset_of_tail() + len(module_path))
    dump.tail = module_path + b"\xcc" * 0x1000
    path = tmp_path / "wrap.dmp"
    path.write_bytes(dump.build())

    warnings = list(open_dump(path.read_bytes()).warnings)
    assert any("RegionSize of 0" in message for message in warnings)
    assert any(message.startswith("module 0 (SizeOfImage): 0xFFFFFFFFFFFF0000") for message in warnings)
    assert any(message.startswith("thread 7 stack: 0xFFFFFFFFFFFFF000") for message in warnings)
    regions = conftest.vol_json(path, "wmi.regions")
    assert [(row["Base"], row["End"]) for row in regions] == [(0x20000, 0x20FFF)]
    modules = conftest.vol_json(path, "wmi.modules")
    assert [(row["Base"], row["Size"]) for row in modules] == [(0xFFFFFFFFFFFF0000, 0x10000)]
    threads = conftest.vol_json(path, "wmi.threads")
    assert [(row["StackBase"], row["StackSize"]) for row in threads] == [(0xFFFFFFFFFFFFF000, 0x1000)]


# -- class 3 and 5: --dump writes only captured bytes, within a budget, and never crashes ---------


class Output:
    """A stand-in for Volatility's direct file handler: real files in one folder."""

    def __init__(self, folder):
        self.folder = folder

    def __call__(self, name):
        assert "/" not in name
        return open(self.folder / name, "w+b")


def pe_page(size_of_image: int, nt_offset: int = 0x80, wipe_dos: bool = False) -> bytes:
    """A PE32+ header page written with struct from the PE/COFF spec: one .text section."""
    page = bytearray(0x1000)
    if not wipe_dos:
        page[0:2] = b"MZ"
        struct.pack_into("<I", page, 0x3C, nt_offset)
    page[nt_offset : nt_offset + 4] = b"PE\0\0"
    struct.pack_into("<HHIIIHH", page, nt_offset + 4, 0x8664, 1, 0, 0, 0, 0xF0, 0x2022)
    optional = nt_offset + 24
    struct.pack_into("<H", page, optional, 0x20B)
    struct.pack_into("<I", page, optional + 16, 0x1000)  # entry point
    struct.pack_into("<Q", page, optional + 24, 0x180000000)
    struct.pack_into("<II", page, optional + 56, size_of_image, 0x400)
    section = optional + 0xF0
    struct.pack_into("<8sIIII", page, section, b".text", 0x1000, 0x1000, 0x200, 0x400)
    struct.pack_into("<I", page, section + 36, 0x60000020)
    return bytes(page)


def test_dump_of_a_huge_declared_region_writes_only_captured_bytes(tmp_path):
    from wmiforensics.vol.dumps import Dumper

    base = 0x7FF000000000
    code = b"\xfc\x48\x83\xe4\xf0\xe8" + bytes(0x1000 - 6)
    data = dump_bytes([private_entry(base, 0x40000000)], [(base, 0x1000)], [code])  # 1 GiB declared
    facts = facts_from_minidump(open_dump(data))
    dumper = Dumper(Output(tmp_path), limit=1 << 20)
    names = dumper.write_range(facts, "pid1.exec_rwx", base, 0x40000000)
    assert names[0].endswith(".cut.bin") and names[1].endswith(".missing.txt")
    written = tmp_path / names[0]
    assert written.read_bytes()[:6] == code[:6]
    assert written.stat().st_blocks * 512 < 1 << 20  # sparse: the missing 255 MiB take no space
    assert dumper.written == 0x1000
    assert "0x1000-0x10000000" in (tmp_path / names[1]).read_text()
    # The per-run budget: a second file that would pass it is refused, with the reason.
    over = Dumper(Output(tmp_path), limit=0x800).write_range(facts, "pid1.again", base, 0x2000)
    assert over[0].startswith("not dumped:") and "--dump-limit" in over[0]


def test_pe_whose_size_of_image_is_smaller_than_its_headers_is_dumped_without_a_crash(tmp_path):
    from wmiforensics.vol.dumps import Dumper

    base = 0x10000
    data = dump_bytes([private_entry(base, 0x1000)], [(base, 0x1000)], [pe_page(size_of_image=0x90)])
    facts = facts_from_minidump(open_dump(data))
    names = Dumper(Output(tmp_path)).write_pe(facts, "pid1.pe_injected.10000.image", base)
    assert names == ["pid1.pe_injected.10000.image.pe"]
    assert (tmp_path / names[0]).read_bytes() == pe_page(0x90)[:0x90]


def test_header_wiped_pe_is_rebuilt_and_thread_findings_dump_their_region(tmp_path):
    import pefile

    from wmiforensics.addressmap import AddressMap
    from wmiforensics.engine import Severity, analyse
    from wmiforensics.vol.dumps import Dumper
    from wmiforensics.vol.injection import dump_finding

    base = 0x20000
    image = pe_page(0x2000, wipe_dos=True) + b"\xcc" * 0x1000
    entries = [private_entry(base, 0x2000, c.PAGE_EXECUTE_READ, allocation_base=base)]
    data = dump_bytes(entries, [(base, 0x2000)], [image], extra_streams=thread_streams([(7, base + 0x1010)]))
    facts = facts_from_minidump(open_dump(data))
    findings = analyse(facts, min_severity=Severity.INFO).findings
    kinds = {finding.kind: finding for finding in findings}
    assert {"pe_headerless", "thread_start_unbacked"} <= set(kinds)
    dumper, address_map = Dumper(Output(tmp_path)), AddressMap(facts.regions, facts.modules)
    headerless = dump_finding(kinds["pe_headerless"], facts, dumper, address_map)
    rebuilt = next(name for name in headerless if name.endswith(".pe"))
    parsed = pefile.PE(str(tmp_path / rebuilt))
    assert parsed.FILE_HEADER.Machine == 0x8664 and parsed.sections[0].Name.rstrip(b"\0") == b".text"
    thread = dump_finding(kinds["thread_start_unbacked"], facts, dumper, address_map)
    assert thread == [
        f"pid{facts.pid}.thread_start_unbacked.20000-22000.bin".replace("pidNone", "pidunknown")
    ]
    assert (tmp_path / thread[0]).stat().st_size == 0x2000


@pytest.mark.parametrize("kind", ["empty", "device", "directory"])
def test_unusable_input_paths_end_in_one_line(tmp_path, kind):
    from tests.conftest import run_vol

    path = {"empty": tmp_path / "empty.dmp", "device": Path("/dev/zero"), "directory": tmp_path}[kind]
    if kind == "empty":
        path.write_bytes(b"")
    plugin = "wmi.modules" if kind != "directory" else "wmi.dumpinfo"
    result = run_vol(path, plugin, renderer="quick", timeout=120)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("wmi-forensics: error: ") and str(path) in last
    assert {"empty": "empty", "device": "not a regular file", "directory": "is a directory"}[kind] in last


# -- class 7: strings from the input cannot forge rows or drive the terminal ----------------------

FORGED = "C:\\Windows\\System32\\evil.dll\r\n0x0\tforged row\x1b[2J\x1b]0;title\x07\u202eexe.txt"


def test_control_characters_from_the_input_are_escaped_as_text_and_exact_in_json(tmp_path):
    import json

    from tests.conftest import run_vol

    system = mb.system_info()
    modules = mb.module_list([(0x7FF000000000, 0x1000, 0)])
    name_rva = 32 + 12 * 3 + len(system) + len(modules)
    modules = mb.module_list([(0x7FF000000000, 0x1000, name_rva)])
    data = mb.Dump(
        [
            mb.Stream(mb.SYSTEM_INFO, system),
            mb.Stream(mb.MODULE_LIST, modules),
            mb.Stream(0xBEEF, mb.minidump_string(FORGED)),
        ]
    ).build()
    path = tmp_path / "forged.dmp"
    path.write_bytes(data)
    for renderer in ("quick", "csv", "pretty"):
        text = run_vol(path, "wmi.modules", renderer=renderer)
        assert text.returncode == 0, text.stderr
        assert not any(char in text.stdout for char in "\r\x1b\x07\u202e"), renderer
        shown = text.stdout.replace("\\\\", "\\")  # the CSV renderer doubles backslashes
        assert "evil.dll\\x0d\\x0a0x0\\x09forged row\\x1b[2J" in shown
        assert len([line for line in text.stdout.splitlines() if "forged" in line]) == 1
    rows = json.loads(run_vol(path, "wmi.modules").stdout)
    assert rows[0]["Path"] == FORGED


def test_escaping_covers_every_control_class():
    from wmiforensics.vol.common import DisplayText, display_row, escape_control

    assert escape_control("a\x00\x1f\x7f\x9b\u2028\u202e\u2066b") == (
        "a\\x00\\x1f\\x7f\\x9b\\u2028\\u202e\\u2066b"
    )
    level, values = display_row((0, ("plain", "bell\x07", 7)))
    assert level == 0 and type(values[0]) is str and isinstance(values[1], DisplayText)
    assert f"{values[1]}" == "bell\\x07" and values[1] == "bell\x07" and values[2] == 7


# -- class 9: a full image that begins with a valid MDMP header is still a full image ------------


def small_minidump() -> bytes:
    dump = mb.Dump([mb.Stream(mb.SYSTEM_INFO, mb.system_info()), mb.Stream(mb.MEMORY64_LIST, b"")])
    dump.streams[1].data = mb.memory64_list([(0x10000, 0x100)], 0)
    dump.streams[1].data = mb.memory64_list([(0x10000, 0x100)], dump.offset_of_tail())
    dump.tail = b"\x90" * 0x100
    return dump.build()


def test_structure_not_magic_decides_what_a_file_is():
    from wmiforensics.minidump.layer import FULL_IMAGE_MINIMUM, not_a_process_dump

    head = small_minidump()
    assert not_a_process_dump(open_dump(head)) is None
    padded = head + bytes(FULL_IMAGE_MINIMUM)
    decision = not_a_process_dump(open_dump(padded))
    assert decision and f"cover only the first {len(head):,} of {len(padded):,} bytes" in decision


def _looping_loader_lists(original):
    """Wrap the lab builder's loader_lists so each list's third entry links back to its first."""
    from fixtures.labdump.winstructs import OFFSETS

    def build(arch, ldr_address, *args, **kwargs):
        (ldr_base, ldr_data), (entries_base, entries_data) = original(arch, ldr_address, *args, **kwargs)
        offsets, data = OFFSETS[arch], bytearray(entries_data)
        width = offsets.pointer

        def flink(address):
            at = address - entries_base
            return int.from_bytes(data[at : at + width], "little")

        for index in range(3):
            head = offsets.ldr_in_load_order + index * offsets.list_entry
            first = int.from_bytes(ldr_data[head : head + width], "little")
            third = flink(flink(first))
            data[third - entries_base : third - entries_base + width] = first.to_bytes(width, "little")
        return [(ldr_base, ldr_data), (entries_base, bytes(data))]

    return build


def test_full_image_with_a_minidump_header_and_looping_loader_lists(tmp_path, symbol_cache, monkeypatch):
    """Class 9 (an MDMP header in front of a full image) and class 10 (loader lists that loop),
    in one image to keep CI fast."""
    import json

    from fixtures.labdump import wmiprvse
    from fixtures.winimage.__main__ import main as build_image
    from tests.conftest import run_vol

    monkeypatch.setattr(wmiprvse, "loader_lists", _looping_loader_lists(wmiprvse.loader_lists))
    image = tmp_path / "image.raw"
    assert build_image(["--build", "19041", "--plant-rwx", "--patch-etw", "-o", str(image)]) == 0
    with open(image, "r+b") as handle:  # physical page 0 is unused by the builder
        assert not any(handle.read(0x1000))
        handle.seek(0)
        handle.write(small_minidump())
    result = run_vol(image, "wmi.injection", "--min-severity", "info", symbols=symbol_cache)
    assert result.returncode == 0, result.stderr
    assert "begins with a minidump header" in result.stderr and "read as a full memory image" in result.stderr
    rows = json.loads(result.stdout)
    assert {"exec_rwx", "etw_patch"} <= {row["Kind"] for row in rows}
    for name in ("InLoadOrderModuleList", "InMemoryOrderModuleList", "InInitializationOrderModuleList"):
        assert f"{name} is cut after 3 entries" in result.stderr
    unlisted = [row for row in rows if row["Kind"] == "module_unlisted"]
    assert unlisted, "the modules past the loop have image mappings the lists no longer reach"
    for row in unlisted:
        assert row["Confidence"] == "low" and row["Severity"] == "medium"
        assert "all three PEB loader lists are cut short" in row["RankedDown"]


def test_identical_findings_from_repeated_list_entries_are_shown_once():
    from wmiforensics.engine import Severity, analyse

    base = 0x30000
    entries = [private_entry(base, 0x1000, c.PAGE_EXECUTE_READ)]
    threads = thread_streams([(9, base + 0x10), (9, base + 0x10), (9, base + 0x10)])
    data = dump_bytes(entries, [(base, 0x1000)], [b"\x90" * 0x1000], extra_streams=threads)
    findings = analyse(facts_from_minidump(open_dump(data)), min_severity=Severity.INFO).findings
    starts = [f for f in findings if f.kind == "thread_start_unbacked"]
    assert len(starts) == 1
    assert "reported 3 times by the input's lists; shown once" in starts[0].evidence


# -- class 6: a check that cannot run says so, per module ----------------------------------------


def _etw_dump_with_damaged_exports(tmp_path, damage) -> Minidump:
    """The ``etw_ret`` lab dump with ntdll's export table damaged in the file by ``damage``."""
    from fixtures.labdump import write_minidump
    from fixtures.labdump.scenarios import build_scenario

    proc, _ = build_scenario("etw_ret")
    path = tmp_path / "etw.dmp"
    with open(path, "wb") as out:
        write_minidump(proc, out)
    data = bytearray(path.read_bytes())
    dump = open_dump(bytes(data))
    ntdll = next(module for module in dump.modules if module.name.lower() == "ntdll.dll")

    def file_offset(address):
        segment = dump.find_segment(address)
        return segment.file_offset + address - segment.start

    head = dump.read(ntdll.base, 0x1000)
    nt = struct.unpack_from("<I", head, 0x3C)[0]
    directory_entry = file_offset(ntdll.base + nt + 24 + 112)  # PE32+: DataDirectory[0]
    export_rva, _ = struct.unpack_from("<II", data, directory_entry)
    damage(data, directory_entry, file_offset(ntdll.base + export_rva), ntdll, file_offset)
    return open_dump(bytes(data))


def _analyse(dump):
    from wmiforensics.engine import Severity, analyse

    return analyse(facts_from_minidump(dump), min_severity=Severity.INFO)


def test_export_directory_covering_the_whole_image_no_longer_hides_the_etw_patch(tmp_path):
    def whole_image(data, entry, directory, ntdll, file_offset):
        struct.pack_into("<I", data, entry + 4, ntdll.size)  # Size: the whole image

    analysis = _analyse(_etw_dump_with_damaged_exports(tmp_path, whole_image))
    assert any(f.kind == "etw_patch" and "EtwEventWrite" in f.reason for f in analysis.findings)
    assert any(note.startswith("ntdll.dll: ETW patch check may be incomplete") for note in analysis.notes)


def test_export_name_table_loop_is_a_note_for_the_module(tmp_path):
    def loop(data, entry, directory, ntdll, file_offset):
        names_rva = struct.unpack_from("<I", data, directory + 32)[0]
        count = struct.unpack_from("<I", data, directory + 24)[0]
        first = struct.unpack_from("<I", data, file_offset(ntdll.base + names_rva))[0]
        for index in range(count):  # every name slot points at the first name
            struct.pack_into("<I", data, file_offset(ntdll.base + names_rva + 4 * index), first)

    analysis = _analyse(_etw_dump_with_damaged_exports(tmp_path, loop))
    notes = [note for note in analysis.notes if note.startswith("ntdll.dll: ETW patch check")]
    assert notes and "repeats" in notes[0] and "(a loop)" in notes[0]


# -- class 10: a damaged list is noted, and what rests on it is de-duplicated and ranked down ----


def test_guid_bucket_cycle_reports_each_provider_once_with_a_note():
    from types import SimpleNamespace

    from wmiforensics.etw import reader as etw_reader

    # Two buckets whose lists run into each other: bucket 0 -> A -> B -> (bucket 1's) C -> A ...
    # and bucket 1 -> C -> A -> B -> C. Memory is a dict of 8-byte pointers; other heads are empty.
    table, a, b, c_entry = 0xFFFF800000100000, 0xFFFF800000200000, 0xFFFF800000200100, 0xFFFF800000200200
    memory = {table: a, a: b, b: c_entry, c_entry: a, table + 48: c_entry}
    reader = object.__new__(etw_reader.EtwReader)
    reader.kernel = SimpleNamespace(get_type=lambda name: SimpleNamespace(size=16))
    reader.kernel_floor = 0xFFFF800000000000
    reader.pointer_size = 8
    reader.read_pointer = lambda address: memory.get(address, address)  # other heads: empty lists
    reader.member_offset = lambda type_name, member: 0
    reader._provider = lambda entry, bucket, list_name: SimpleNamespace(guid_entry=entry, bucket=bucket)
    reader._walk_notes = []
    providers = reader._providers(table, 48)
    notes = reader._take_walk_notes()
    assert sorted(provider.guid_entry for provider in providers) == [a, b, c_entry]
    assert notes == [
        f"GUID list 0/trace at 0x{table:x} loops back to 0x{a:x} after 3 entries; the walk stopped",
        f"GUID list 1/trace reaches _ETW_GUID_ENTRY 0x{c_entry:x} listed before",
    ]
    silo = etw_reader.SiloEtw("host", None, [], None, "", [], providers, notes)
    assert silo.providers_damaged


# -- class 8: a flood of regions groups what cannot be examined -----------------------------------


def test_executable_regions_without_captured_bytes_are_grouped():
    from wmiforensics.engine import Severity, analyse

    start = 0x10000000
    entries = [private_entry(start + index * 0x10000, 0x1000) for index in range(5000)]
    code = b"\xfc\x48\x83\xe4\xf0\xe8" + bytes(0xFFA)
    data = dump_bytes(entries, [(start, 0x1000)], [code])  # only the first region is captured
    with deadline(30):
        findings = analyse(facts_from_minidump(open_dump(data)), min_severity=Severity.INFO).findings
    rwx = [finding for finding in findings if finding.kind == "exec_rwx"]
    assert len(rwx) == 2
    captured, grouped = sorted(rwx, key=lambda finding: finding.start)
    assert captured.start == start and "shellcode prologue" in " ".join(captured.evidence)
    assert grouped.reason.startswith("4,999 regions like this one (20,475,904 bytes)")
    assert grouped.confidence.name == "LOW" and "and 4,983 more" in grouped.evidence[0]


# -- class 9: a huge MemoryInfoList costs at most the region budget --------------------------------


def test_a_region_list_past_the_budget_keeps_captured_regions_and_says_what_was_skipped():
    from wmiforensics.backends.minidump import MAX_DETAILED_REGIONS
    from wmiforensics.engine import Severity, analyse

    count, start, step = 100_000, 0x10000000, 0x10000
    assert count > MAX_DETAILED_REGIONS
    last = start + (count - 1) * step
    entries = [private_entry(start + index * step, 0x1000) for index in range(count)]
    data = dump_bytes(entries, [(start, 0x1000), (last, 0x1000)], [b"\xcc" * 0x2000])
    facts = facts_from_minidump(open_dump(data))
    # Only the budget becomes region facts: the captured region at the top comes first, the rest
    # are the lowest addresses.
    assert len(facts.regions) == MAX_DETAILED_REGIONS
    assert facts.regions[-1].base == last
    assert facts.regions[-2].base == start + (MAX_DETAILED_REGIONS - 2) * step
    skipped = count - MAX_DETAILED_REGIONS
    assert any(
        f"declares {count:,} regions, more than the {MAX_DETAILED_REGIONS:,} examined" in note
        and f"{skipped:,} regions were skipped, {skipped:,} of them executable and 0 with captured" in note
        for note in facts.notes
    )
    findings = analyse(facts, min_severity=Severity.INFO).findings
    examined = {finding.start for finding in findings if finding.kind == "exec_rwx"}
    assert {start, last} <= examined  # both captured regions are still examined in full
    grouped = [finding for finding in findings if "regions like this one" in finding.reason]
    assert len(grouped) == 1 and grouped[0].reason.startswith(f"{MAX_DETAILED_REGIONS - 2:,} regions")


def test_captured_positions_match_an_overlap_check_of_every_region():
    from wmiforensics.backends.minidump import captured_positions, regions_within_budget
    from wmiforensics.minidump.tables import MemoryInfoTable, SegmentTable

    regions = [(0x1000, 0x1000), (0x3000, 0x2000), (0x5000, 0x1000), (0x8000, 0x1000), (0xA000, 0x3000)]
    segments = [(0x1800, 0x100), (0x4000, 0x1800), (0x9000, 0x800), (0xC000, 0x10)]
    table, spans = MemoryInfoTable(), SegmentTable()
    for base, size in regions:
        table.append(base, base, c.PAGE_READWRITE, size, c.MEM_COMMIT, c.PAGE_READWRITE, c.MEM_PRIVATE)
    for segment_start, segment_size in segments:
        spans.starts.append(segment_start)
        spans.sizes.append(segment_size)
    expected = [
        index
        for index, (base, size) in enumerate(regions)
        if any(s < base + size and base < s + n for s, n in segments)
    ]
    got = [index for first, last in captured_positions(table, spans) for index in range(first, last)]
    assert got == expected == [0, 1, 2, 4]
    kept, note = regions_within_budget(table, spans, budget=4)
    assert kept == [0, 1, 2, 4] and "5 regions, more than the 4" in note and "1 regions were skipped" in note
    assert regions_within_budget(table, spans, budget=5) == (None, None)
