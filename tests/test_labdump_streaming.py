"""Scaled lab dumps: same layout at every size, and written without holding the file in memory."""

from __future__ import annotations

import hashlib
import struct
import tracemalloc

import pytest

from fixtures.labdump import build_scaled, write_minidump, write_minidump_file
from fixtures.labdump.scale import FILLER_SPAN
from fixtures.labdump.writer import CHUNK_SIZE


def _minidump_file():
    """The PyPI minidump package's reader class, or a skip when the package is missing."""
    module = pytest.importorskip("minidump.minidumpfile", reason="needs the PyPI minidump package (0.0.24)")
    return module.MinidumpFile


MIB = 1 << 20


class CountingSink:
    """A write-only, non-seekable output that keeps only a length and a digest."""

    def __init__(self) -> None:
        self.size = 0
        self.largest_write = 0
        self.digest = hashlib.sha256()

    def write(self, data) -> int:
        self.size += len(data)
        self.largest_write = max(self.largest_write, len(data))
        self.digest.update(data)
        return len(data)


def test_scaled_builds_keep_count_and_addresses_and_only_change_sizes():
    small = build_scaled(64 * MIB, 10_000, seed=0)
    large = build_scaled(2048 * MIB, 10_000, seed=0)
    small_ranges, large_ranges = small.captured_regions(), large.captured_regions()
    assert len(small_ranges) == len(large_ranges) == 10_000
    assert [r.base for r in small_ranges] == [r.base for r in large_ranges]
    assert [(r.type, r.protect) for r in small_ranges] == [(r.type, r.protect) for r in large_ranges]
    assert sum(r.size for r in small_ranges) == 64 * MIB
    assert sum(r.size for r in large_ranges) == 2048 * MIB
    assert sum(a.size != b.size for a, b in zip(small_ranges, large_ranges)) > 9_000


def test_writing_a_64_mib_dump_streams_instead_of_buffering():
    proc = build_scaled(64 * MIB, 10_000, seed=0)
    sink = CountingSink()
    tracemalloc.start()
    try:
        write_minidump(proc, sink)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sink.size > 64 * MIB
    assert peak < 8 * MIB, f"peak traced allocation {peak} bytes"
    assert sink.largest_write <= max(CHUNK_SIZE, sink.size - 64 * MIB)


def test_scaled_dump_reads_back_with_the_minidump_package(tmp_path):
    proc = build_scaled(64 * MIB, 2_000, seed=5)
    path = tmp_path / "scaled.dmp"
    write_minidump_file(proc, str(path))
    parsed = _minidump_file().parse(str(path))
    segments = parsed.memory_segments_64.memory_segments
    assert len(segments) == 2_000
    assert sum(segment.size for segment in segments) == 64 * MIB
    reader = parsed.get_reader()
    first_filler = FILLER_SPAN["x64"][0]
    region = proc.region_at(first_filler)
    assert reader.read(first_filler, 8) == struct.pack("<Q", first_filler)
    tail_offset = region.size - 24
    assert reader.read(first_filler + tail_offset, 24) == region.read(tail_offset, 24)
