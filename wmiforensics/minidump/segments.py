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
    confirms both copies hold the same bytes (writers often store a stack twice). The work is done
    on compact tables by :func:`.tables.merge_table`; this form takes and returns plain lists.
    """
    from .tables import RangeTable, merge_table

    table = RangeTable.from_ranges(item for item in ranges if item.size > 0)
    merged, report = merge_table(table, same_bytes)
    return list(merged), report
