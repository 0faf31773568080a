"""Merging memory ranges: earlier sources win, output is sorted, disjoint and complete."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from wmiforensics.minidump.segments import MemoryRange, merge_ranges


def test_later_range_only_fills_gaps():
    first = MemoryRange(0x1000, 0x1000, 100, "Memory64List")
    second = MemoryRange(0x800, 0x2000, 5000, "MemoryList")  # covers 0x800-0x2800
    segments, report = merge_ranges([first, second])
    assert [(s.start, s.size, s.file_offset) for s in segments] == [
        (0x800, 0x800, 5000),
        (0x1000, 0x1000, 100),
        (0x2000, 0x800, 5000 + 0x1800),
    ]
    assert report.overlapping_ranges == 1
    assert report.overlapping_bytes == 0x1000
    assert report.conflicting_bytes == 0x1000


def test_identical_duplicate_is_not_a_conflict():
    stack = MemoryRange(0x5000, 0x100, 700, "MemoryList")
    segments, report = merge_ranges([stack, MemoryRange(0x5000, 0x100, 700, "thread stack")])
    assert segments == [stack]
    assert report.overlapping_ranges == 1
    assert report.conflicting_ranges == 0


def test_adjacent_ranges_contiguous_in_file_are_coalesced():
    segments, _ = merge_ranges(
        [MemoryRange(0x1000, 0x1000, 64, "a"), MemoryRange(0x2000, 0x1000, 64 + 0x1000, "a")]
    )
    assert [(s.start, s.size, s.file_offset) for s in segments] == [(0x1000, 0x2000, 64)]


def test_adjacent_ranges_apart_in_file_stay_separate():
    segments, _ = merge_ranges([MemoryRange(0x1000, 0x1000, 64, "a"), MemoryRange(0x2000, 0x1000, 9000, "a")])
    assert len(segments) == 2


ranges = st.lists(
    st.tuples(st.integers(0, 1 << 14), st.integers(0, 1 << 10), st.integers(0, 1 << 30)), max_size=40
)


@settings(max_examples=300, deadline=None)
@given(ranges)
def test_merge_is_sorted_disjoint_and_maps_each_byte_to_the_first_range(items):
    declared = [
        MemoryRange(start, size, offset, str(index)) for index, (start, size, offset) in enumerate(items)
    ]
    segments, _ = merge_ranges(declared)
    for left, right in zip(segments, segments[1:]):
        assert left.end <= right.start
    covered = {}
    for item in declared:
        for address in range(item.start, item.end):
            covered.setdefault(address, item.file_offset + address - item.start)
    for address, offset in covered.items():
        owner = [s for s in segments if s.start <= address < s.end]
        assert len(owner) == 1
        assert owner[0].file_offset + address - owner[0].start == offset
    assert sum(s.size for s in segments) == len({a for item in declared for a in range(item.start, item.end)})


def test_overlap_with_identical_bytes_elsewhere_in_the_file_is_not_a_conflict():
    stack = MemoryRange(0x3DF288, 0xD78, 0x2521, "MemoryList")
    around_ip = MemoryRange(0x3DF8C4, 0x100, 0x2221, "MemoryList")
    compared = []

    def same_bytes(first, second, length):
        compared.append((first, second, length))
        return True

    _, report = merge_ranges([stack, around_ip], same_bytes)
    assert compared == [(0x2221, 0x2521 + (0x3DF8C4 - 0x3DF288), 0x100)]
    assert report.overlapping_ranges == 1 and report.conflicting_ranges == 0
    _, report = merge_ranges([stack, around_ip], lambda *_: False)
    assert report.conflicting_ranges == 1 and report.conflicting_bytes == 0x100
