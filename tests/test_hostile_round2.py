"""Hostile input, round 2: scans, dumps and output that follow the bytes that exist, never the claims.

Each test builds its own damaged input with ``tests/mdmp_bytes.py`` (which shares no code with the
reader) and would hang, amplify, crash or forge output without the fix it covers.
"""

from __future__ import annotations

import contextlib
import signal

import pytest  # noqa: F401  (used by later tests)

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
    facts = facts_from_minidump(open_dump(data))
    assert [(region.base, region.size, region.allocation_base) for region in facts.regions] == [
        (0x20000, 0x1000, 0x20000)
    ]
    notes = " | ".join(facts.notes)
    assert "size 0 were dropped (at 0x10000)" in notes
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
