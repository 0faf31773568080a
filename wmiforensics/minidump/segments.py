"""Merge memory ranges from several minidump sources into sorted, non-overlapping segments.

Volatility's ``SegmentedLayer`` bisects its segment list and assumes no overlap, while real dumps
can list the same bytes twice (lldb writes MemoryList *and* Memory64List; thread stacks repeat
memory-list ranges; hostile files overlap on purpose). The rule is simple and documented:

    A range given earlier wins. Callers pass Memory64List ranges first, then MemoryList ranges,
    then thread-stack descriptors; within a list, the earlier entry wins. A later range only
    contributes the bytes no earlier range covers.

Address-contiguous pieces that are also contiguous in the file are coalesced, so a full-memory
dump of N adjacent ranges costs as few bisect steps as possible.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Callable, Iterable, List, NamedTuple, Optional


class MemoryRange(NamedTuple):
    """Bytes of process memory at ``start`` stored at ``file_offset`` in the dump."""

    start: int
    size: int
    file_offset: int
    source: str

    @property
    def end(self) -> int:
        return self.start + self.size


@dataclass
class MergeReport:
    """What merging had to drop: shown to the user as a warning, never silently."""

    #: Ranges that repeat bytes an earlier range already gave (e.g. a stack listed twice).
    overlapping_ranges: int = 0
    overlapping_bytes: int = 0
    #: Overlaps whose bytes differ from the earlier range's (or could not be compared): the dump
    #: contradicts itself.
    conflicting_ranges: int = 0
    conflicting_bytes: int = 0


#: Compares ``length`` bytes at two file offsets; True when they are equal.
SameBytes = Callable[[int, int, int], bool]


def merge_ranges(
    ranges: Iterable[MemoryRange], same_bytes: Optional[SameBytes] = None
) -> tuple[List[MemoryRange], MergeReport]:
    """Return sorted, non-overlapping, coalesced segments; earlier ranges take priority.

    An overlap stored at a different file position counts as a conflict unless ``same_bytes``
    confirms both copies hold the same bytes (writers often store a stack twice).
    """
    starts: List[int] = []
    accepted: List[MemoryRange] = []
    report = MergeReport()
    for item in ranges:
        if item.size <= 0:
            continue
        end = item.end
        # Fast path: sorted, non-overlapping input (the normal full-memory dump) appends in O(1).
        if not accepted or accepted[-1].end <= item.start:
            starts.append(item.start)
            accepted.append(item)
            continue
        index = max(bisect_right(starts, item.start) - 1, 0)
        cursor = item.start
        conflict = 0
        pieces: List[MemoryRange] = []
        while cursor < end:
            while index < len(accepted) and accepted[index].end <= cursor:
                index += 1
            if index == len(accepted) or accepted[index].start >= end:
                pieces.append(_slice(item, cursor, end))
                break
            covering = accepted[index]
            if covering.start > cursor:
                pieces.append(_slice(item, cursor, covering.start))
            if covering.file_offset - covering.start != item.file_offset - item.start:
                low, high = max(cursor, covering.start), min(end, covering.end)
                here = item.file_offset + (low - item.start)
                there = covering.file_offset + (low - covering.start)
                if same_bytes is None or not same_bytes(here, there, high - low):
                    conflict += high - low
            cursor = covering.end
        covered = item.size - sum(piece.size for piece in pieces)
        if covered:
            report.overlapping_ranges += 1
            report.overlapping_bytes += covered
        if conflict:
            report.conflicting_ranges += 1
            report.conflicting_bytes += conflict
        for piece in pieces:
            position = bisect_right(starts, piece.start)
            starts.insert(position, piece.start)
            accepted.insert(position, piece)
    return _coalesce(accepted), report


def _slice(item: MemoryRange, start: int, end: int) -> MemoryRange:
    return MemoryRange(start, end - start, item.file_offset + (start - item.start), item.source)


def _coalesce(segments: List[MemoryRange]) -> List[MemoryRange]:
    merged: List[MemoryRange] = []
    for segment in segments:
        if merged:
            last = merged[-1]
            if last.end == segment.start and last.file_offset + last.size == segment.file_offset:
                merged[-1] = MemoryRange(last.start, last.size + segment.size, last.file_offset, last.source)
                continue
        merged.append(segment)
    return merged
