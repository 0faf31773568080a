"""Cost at the floor: one parse per run, O(1) per address, compact tables, n log n listings, honest caps.

Costs are asserted as operation counts (parses, executed lines, calls, traced bytes), never wall time.
"""

from __future__ import annotations

import dataclasses
import io
import random
import struct
import subprocess
import sys
import tracemalloc

import pytest
from volatility3.framework import renderers

from fixtures.labdump import build_wmiprvse, write_minidump
from fixtures.labdump.model import Region
from fixtures.labdump.scale import write_region_table
from tests import mdmp_bytes as mb
from tests.conftest import EXAMPLE_DUMP, REPO, vol_command
from wmiforensics.minidump import BytesSource, Minidump, model, reader
from wmiforensics.minidump.segments import MemoryRange, merge_ranges
from wmiforensics.minidump.tables import RangeTable, merge_table
from wmiforensics.vol import inspection
from wmiforensics.vol.grid import StreamingTreeGrid

MEM_COMMIT, PAGE_READWRITE, MEM_PRIVATE = 0x1000, 0x04, 0x20000


def parse(data: bytes) -> Minidump:
    return Minidump(BytesSource(data), name="cost.dmp")


def overlapping_regions_dump(count: int) -> bytes:
    """``count`` MemoryInfo entries that each span the same huge range, over ``count`` captured ranges:
    the input on which a per-region walk over segments costs regions x segments."""
    span = (0x10000, 0x10000 * (count + 2))
    regions = [(span[0], span[0], PAGE_READWRITE, span[1], MEM_COMMIT, PAGE_READWRITE, MEM_PRIVATE)] * count
    ranges = [(0x10000 * (index + 1), 16) for index in range(count)]
    dump = mb.Dump(
        [
            mb.Stream(mb.SYSTEM_INFO, mb.system_info()),
            mb.Stream(mb.MEMORY_INFO_LIST, mb.memory_info_list(regions)),
            mb.Stream(mb.MEMORY64_LIST, mb.memory64_list(ranges, 0)),
        ]
    )
    dump.streams[2].data = mb.memory64_list(ranges, dump.offset_of_tail())
    dump.tail = bytes(16 * count)
    return dump.build()


def executed_lines(function) -> int:
    """Python lines executed by ``function()``: a deterministic measure of work."""
    counter = [0]

    def tracer(frame, event, arg):
        if event == "line":
            counter[0] += 1
        return tracer

    sys.settrace(tracer)
    try:
        function()
    finally:
        sys.settrace(None)
    return counter[0]


def listing_work(count: int) -> int:
    dump = parse(overlapping_regions_dump(count))

    def listings() -> None:
        list(inspection.summary_rows(dump, dump.file_size))
        list(inspection.region_rows(dump))

    return executed_lines(listings)


def test_listings_cost_n_log_n_in_regions_and_segments():
    small, large = listing_work(500), listing_work(1000)
    # Twice the regions and twice the segments: about twice the work, not four times.
    assert large < 2.4 * small, (small, large)
    assert large < 200 * 1000, large


def test_20000_regions_by_20000_segments_lists_with_bounded_work():
    dump = parse(overlapping_regions_dump(20_000))
    assert len(dump.memory_info) == 20_000 and len(dump.segments) == 20_000
    rows = list(inspection.region_rows(dump))
    assert len(rows) == 20_000 and all(row[1][8] == 20_000 * 16 for row in rows[:3])
    summary = {item: value for _, (_section, item, value) in inspection.summary_rows(dump, dump.file_size)}
    assert summary["Captured"].startswith("320,000 bytes")


def test_captured_within_matches_a_brute_force_count():
    rng = random.Random(7)
    for _ in range(150):
        items = [
            MemoryRange(rng.randrange(0, 400), rng.randrange(1, 50), rng.randrange(0, 4000), "Memory64List")
            for _ in range(rng.randint(0, 15))
        ]
        merged, _report = merge_ranges(items)
        table, _ = merge_table(RangeTable.from_ranges(items))
        assert list(table) == merged
        for start in range(0, 460, 11):
            for end in range(start, 470, 17):
                expected = sum(max(0, min(end, s.end) - max(start, s.start)) for s in merged)
                assert table.captured_within(start, end) == expected


def test_address_width_is_decided_once_not_per_address(monkeypatch):
    calls = [0]
    original = model.SystemInfo.arch

    def counted(self):
        calls[0] += 1
        return original.fget(self)

    monkeypatch.setattr(model.SystemInfo, "arch", property(counted))
    buffer = io.BytesIO()
    write_region_table(buffer, 2_000)
    dump = parse(buffer.getvalue())
    for index in range(2_000):
        dump.read_prefix(0x10000 * (index + 1), 8)
        assert dump.address_bits == 64 and dump.arch == "x64"
    assert calls[0] <= 2, calls[0]


def stacked_layer(path):
    """The layer stack a plugin gets: Volatility's FileLayer with the minidump layer on top."""
    from volatility3.framework import contexts
    from volatility3.framework.layers import physical

    from wmiforensics.minidump.layer import MinidumpStacker

    context = contexts.Context()
    context.config["FileLayer.location"] = path.as_uri()
    context.add_layer(physical.FileLayer(context, "FileLayer", "FileLayer"))
    return MinidumpStacker.stack(context, "FileLayer")


def test_model_and_layer_hold_compact_tables_not_objects_per_range(tmp_path):
    count = 20_000
    path = tmp_path / "regions.dmp"
    with open(path, "wb") as out:
        write_region_table(out, count)
    tracemalloc.start()
    try:
        layer = stacked_layer(path)
        dump = layer.minidump
        retained, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(dump.memory_info) == count and len(dump.memory_ranges) == count == len(dump.segments)
    # The outcome asks for at most 600 bytes per range; per-entry objects cost about 560 here (one
    # region, one declared range, one segment and the layer's tuple each), the tables about 130.
    assert retained / count <= 200, retained / count
    # The typed API is unchanged: records come out of the tables on access.
    first = dump.memory_info[0]
    assert isinstance(first, model.MemoryInfo) and first.base == 0x10000 and first.is_committed
    assert dump.memory_info[1:3] == [dump.memory_info[1], dump.memory_info[2]]
    assert dump.segments[-1].end == 0x10000 * count + 64
    assert dump.captured_within(0x10000, 0x10000 * (count + 1)) == 64 * count
    assert layer.read(0x10000 * count, 8) == bytes(range(8))
    assert layer.maximum_address == 0x10000 * count + 63


def list_header_dump(declared: int, present: int) -> bytes:
    regions = [(0x10000 * (i + 1), 0, 0, 0x1000, 0x10000, 1, 0) for i in range(present)]
    listing = mb.memory_info_list(regions)
    listing = listing[:8] + struct.pack("<Q", declared) + listing[16:]
    return mb.Dump(
        [mb.Stream(mb.SYSTEM_INFO, mb.system_info()), mb.Stream(mb.MEMORY_INFO_LIST, listing)]
    ).build()


def test_a_list_cut_by_the_suites_ceiling_says_so(monkeypatch):
    monkeypatch.setattr(reader, "MAX_MEMORY_INFO_ENTRIES", 100)
    dump = parse(list_header_dump(150, 150))
    assert len(dump.memory_info) == 100
    assert (
        "MemoryInfoList declares 150 entries; only 100 are read (the suite keeps at most 100 entries of "
        "this list; the rest are not read)" in dump.warnings
    )
    truncated = parse(list_header_dump(150, 40))
    assert (
        "MemoryInfoList declares 150 entries; only 40 are read (the stream ends first)" in truncated.warnings
    )


def test_module_and_thread_lists_at_their_ceilings_say_so(monkeypatch):
    monkeypatch.setattr(reader, "MAX_MODULES", 3)
    monkeypatch.setattr(reader, "MAX_THREADS", 2)
    modules = mb.module_list([(0x400000 + 0x10000 * i, 0x1000, 0) for i in range(5)])
    threads = struct.pack("<I", 4) + b"".join(
        struct.pack("<IIIIQQIIII", i + 1, 0, 0, 0, 0, 0, 0, 0, 0, 0) for i in range(4)
    )
    dump = parse(
        mb.Dump(
            [
                mb.Stream(mb.SYSTEM_INFO, mb.system_info()),
                mb.Stream(mb.MODULE_LIST, modules),
                mb.Stream(mb.THREAD_LIST, threads),
            ]
        ).build()
    )
    assert len(dump.modules) == 3 and len(dump.threads) == 2
    assert any(
        "ModuleList declares 5 entries; only 3 are read (the suite keeps at most 3" in w
        for w in dump.warnings
    )
    assert any(
        "ThreadList declares 4 entries; only 2 are read (the suite keeps at most 2" in w
        for w in dump.warnings
    )


def test_ceiling_keeps_a_two_million_entry_memory_info_list():
    assert reader.MAX_MEMORY_INFO_ENTRIES >= 2_000_000 and reader.MAX_MEMORY_RANGES >= 2_000_000


PARSE_COUNTER = """
import atexit, sys
from wmiforensics.minidump.reader import Minidump
original, calls = Minidump._parse_streams, []
def counted(self):
    calls.append(self.name)
    return original(self)
Minidump._parse_streams = counted
atexit.register(lambda: sys.stderr.write(f"PARSES={len(calls)}\\n"))
from volatility3.cli import main
sys.argv = ["vol", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize("plugin", ["wmi.dumpinfo", "wmi.injection"])
def test_a_vol_run_parses_the_dump_once(plugin, tmp_path):
    assert vol_command()  # the same interpreter and installation as the CLI tests
    command = [sys.executable, "-c", PARSE_COUNTER, "-q", "--cache-path", str(tmp_path)]
    command += ["-p", str(REPO / "plugins"), "-f", str(EXAMPLE_DUMP), "-r", "json", plugin]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "PARSES=1\n" in result.stderr, result.stderr[-500:]


def test_streaming_grid_renders_the_same_rows_and_keeps_none():
    dump = Minidump.open(EXAMPLE_DUMP)
    with dump:
        kept = renderers.TreeGrid(inspection.REGION_COLUMNS, inspection.region_rows(dump))
        streamed = StreamingTreeGrid(inspection.REGION_COLUMNS, inspection.region_rows(dump))
        expected, seen = [], []
        kept.populate(lambda node, acc: acc.append((node.path, tuple(node.values))) or acc, expected)
        streamed.populate(lambda node, acc: acc.append((node.path, tuple(node.values))) or acc, seen)
    assert seen == expected and len(seen) > 10
    assert streamed.children(None) == [] and streamed.row_count == len(expected)


def test_builder_finds_each_threads_stack_with_one_lookup(monkeypatch):
    proc = build_wmiprvse(arch="x64", build=19045, seed=0)
    template = proc.threads[-1]
    extra = 4_096
    for index in range(extra):
        proc.threads.append(dataclasses.replace(template, thread_id=0x10000 + index))
    calls = [0]
    original = Region.contains

    def counted(self, address, length=1):
        calls[0] += 1
        return original(self, address, length)

    monkeypatch.setattr(Region, "contains", counted)
    out = io.BytesIO()
    write_minidump(proc, out)
    assert calls[0] <= len(proc.threads), (calls[0], len(proc.threads))
    assert len(parse(out.getvalue()).threads) == len(proc.threads)
