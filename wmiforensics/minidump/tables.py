"""Compact, typed tables for the minidump's long lists: regions and memory ranges.

A dump can declare millions of MemoryInfoList entries and memory ranges. Holding each as a Python
object costs 400-700 bytes; these tables keep one machine-sized column per field (``array``), about
40 bytes an entry, and hand out the same typed records (:class:`~.model.MemoryInfo`,
:class:`~.segments.MemoryRange`) on access, so callers keep iterating, indexing and slicing as with
a list.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from itertools import accumulate
from typing import (
    Callable,
    Iterable,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
    overload,
)

from .model import MemoryInfo
from .segments import MemoryRange, MergeReport, SameBytes

# Fixed-size unsigned columns: 'Q' is 8 bytes and 'I' 4 bytes wherever CPython runs.
_U64, _U32, _U8 = "Q", "I", "B"


class _Table(Sequence):
    """Shared list behaviour: equality with any sequence of the same records, no hashing."""

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, tuple, _Table)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {len(self):,} entries>"


class MemoryInfoTable(_Table):
    """MemoryInfoList entries, sorted by base address once :meth:`finish` has run."""

    def __init__(self) -> None:
        self.bases = array(_U64)
        self.allocation_bases = array(_U64)
        self.sizes = array(_U64)
        self.allocation_protects = array(_U32)
        self.states = array(_U32)
        self.protects = array(_U32)
        self.types = array(_U32)

    def _columns(self) -> tuple:
        return (
            self.bases,
            self.allocation_bases,
            self.allocation_protects,
            self.sizes,
            self.states,
            self.protects,
            self.types,
        )

    def append(
        self,
        base: int,
        allocation_base: int,
        allocation_protect: int,
        size: int,
        state: int,
        protect: int,
        type_: int,
    ) -> None:
        for column, value in zip(
            self._columns(),
            (base, allocation_base, allocation_protect, size, state, protect, type_),
        ):
            column.append(value)

    def extend_columns(self, columns: Sequence[array]) -> None:
        """Append whole columns, in :class:`MemoryInfo` field order."""
        for column, values in zip(self._columns(), columns):
            column.extend(values)

    def keep(self, wanted: Iterable[int]) -> None:
        """Keep only the entries at the given positions, in that order (used to drop and to sort)."""
        order = list(wanted)
        for name in (
            "bases",
            "allocation_bases",
            "sizes",
            "allocation_protects",
            "states",
            "protects",
            "types",
        ):
            column = getattr(self, name)
            setattr(self, name, array(column.typecode, map(column.__getitem__, order)))

    def is_sorted(self) -> bool:
        bases = self.bases
        return all(map(int.__le__, bases, bases[1:]))

    def sort(self) -> None:
        self.keep(sorted(range(len(self.bases)), key=self.bases.__getitem__))

    def __len__(self) -> int:
        return len(self.bases)

    @overload
    def __getitem__(self, index: int) -> MemoryInfo: ...

    @overload
    def __getitem__(self, index: slice) -> List[MemoryInfo]: ...

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[position] for position in range(*index.indices(len(self)))]
        return MemoryInfo(*(column[index] for column in self._columns()))

    def __iter__(self) -> Iterator[MemoryInfo]:
        return map(MemoryInfo, *self._columns())

    def sorted_bases(self) -> array:
        """The base addresses in table order, which is address order (for bisecting)."""
        return self.bases


class RangeTable(_Table):
    """Memory ranges (start, size, file offset, source list) in four columns."""

    def __init__(self) -> None:
        self.starts = array(_U64)
        self.sizes = array(_U64)
        self.file_offsets = array(_U64)
        self.source_ids = array(_U8)
        self.source_names: List[str] = []

    @classmethod
    def from_ranges(cls, ranges: Iterable[MemoryRange]) -> RangeTable:
        table = cls()
        for item in ranges:
            table.append(item.start, item.size, item.file_offset, item.source)
        return table

    def source_id(self, source: str) -> int:
        try:
            return self.source_names.index(source)
        except ValueError:
            self.source_names.append(source)
            return len(self.source_names) - 1

    def append(self, start: int, size: int, file_offset: int, source: str) -> None:
        self.starts.append(start)
        self.sizes.append(size)
        self.file_offsets.append(file_offset)
        self.source_ids.append(self.source_id(source))

    def extend(self, other: RangeTable) -> None:
        mapping = [self.source_id(name) for name in other.source_names]
        self.starts.extend(other.starts)
        self.sizes.extend(other.sizes)
        self.file_offsets.extend(other.file_offsets)
        self.source_ids.extend(mapping[ident] for ident in other.source_ids)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[position] for position in range(*index.indices(len(self)))]
        return MemoryRange(
            self.starts[index],
            self.sizes[index],
            self.file_offsets[index],
            self.source_names[self.source_ids[index]],
        )

    def __iter__(self) -> Iterator[MemoryRange]:
        names = self.source_names
        return map(
            MemoryRange,
            self.starts,
            self.sizes,
            self.file_offsets,
            (names[ident] for ident in self.source_ids),
        )

    def end(self, index: int) -> int:
        return self.starts[index] + self.sizes[index]

    def sorted_run_length(self) -> int:
        """How many leading ranges are in address order without overlapping each other."""
        starts, sizes = self.starts, self.sizes
        previous_end = -1
        for index in range(len(starts)):
            start = starts[index]
            if start < previous_end or sizes[index] == 0:
                return index
            previous_end = start + sizes[index]
        return len(starts)

    def head(self, count: int) -> RangeTable:
        table = RangeTable()
        table.starts = self.starts[:count]
        table.sizes = self.sizes[:count]
        table.file_offsets = self.file_offsets[:count]
        table.source_ids = self.source_ids[:count]
        table.source_names = list(self.source_names)
        return table


class SegmentTable(RangeTable):
    """Sorted, non-overlapping segments with a prefix sum of their sizes.

    Any "how many bytes of [start, end) are captured" question costs two bisects, whatever the
    number of segments or the size of the range: listings stay O(n log n) in regions + segments.
    """

    def __init__(self) -> None:
        super().__init__()
        self._prefix = array(_U64, [0])

    def seal(self) -> SegmentTable:
        """Build the prefix sums; call once after the last append."""
        self._prefix = array(_U64, [0])
        self._prefix.extend(accumulate(self.sizes))
        return self

    @property
    def total_bytes(self) -> int:
        return self._prefix[-1]

    def index_of(self, address: int) -> int:
        """Position of the segment holding ``address``, or -1."""
        index = bisect_right(self.starts, address) - 1
        if index >= 0 and address < self.starts[index] + self.sizes[index]:
            return index
        return -1

    def find(self, address: int) -> Optional[MemoryRange]:
        index = self.index_of(address)
        return self[index] if index >= 0 else None

    def _captured_below(self, address: int) -> int:
        """Captured bytes at addresses lower than ``address``."""
        index = bisect_right(self.starts, address) - 1
        if index < 0:
            return 0
        return self._prefix[index] + min(address - self.starts[index], self.sizes[index])

    def captured_within(self, start: int, end: int) -> int:
        if end <= start:
            return 0
        return self._captured_below(end) - self._captured_below(start)

    def layer_tuple(self, index: int) -> Tuple[int, int, int, int]:
        """Volatility's ``SegmentedLayer`` form: (address, file offset, length, mapped length)."""
        size = self.sizes[index]
        return (self.starts[index], self.file_offsets[index], size, size)


class LayerSegments(Sequence):
    """A ``SegmentedLayer._segments`` view of a :class:`SegmentTable`: tuples made on access."""

    def __init__(self, table: SegmentTable) -> None:
        self._table = table

    def __len__(self) -> int:
        return len(self._table)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[position] for position in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self._table)
        if not 0 <= index < len(self._table):
            raise IndexError(index)
        return self._table.layer_tuple(index)


class _SortedSpans:
    """Sorted, non-overlapping ranges with bisectable starts: a table or a plain list of ranges."""

    def __init__(self, starts: Sequence[int], get: Callable[[int], MemoryRange]) -> None:
        self.starts = starts
        self.get = get


def _uncovered(
    spans: _SortedSpans, item: MemoryRange, same_bytes: Optional[SameBytes]
) -> Tuple[List[MemoryRange], int]:
    """The pieces of ``item`` no span covers, and how many covered bytes contradict the span's copy."""
    starts, get = spans.starts, spans.get
    end = item.end
    index = max(bisect_right(starts, item.start) - 1, 0)
    cursor, conflict, pieces = item.start, 0, []
    count = len(starts)
    while cursor < end:
        while index < count and get(index).end <= cursor:
            index += 1
        if index == count or get(index).start >= end:
            pieces.append(slice_range(item, cursor, end))
            break
        covering = get(index)
        if covering.start > cursor:
            pieces.append(slice_range(item, cursor, covering.start))
        if covering.file_offset - covering.start != item.file_offset - item.start:
            low, high = max(cursor, covering.start), min(end, covering.end)
            here = item.file_offset + (low - item.start)
            there = covering.file_offset + (low - covering.start)
            if same_bytes is None or not same_bytes(here, there, high - low):
                conflict += high - low
        cursor = covering.end
    return pieces, conflict


def slice_range(item: MemoryRange, start: int, end: int) -> MemoryRange:
    return MemoryRange(start, end - start, item.file_offset + (start - item.start), item.source)


def merge_table(
    ranges: RangeTable, same_bytes: Optional[SameBytes] = None
) -> Tuple[SegmentTable, MergeReport]:
    """Sorted, non-overlapping, coalesced segments from ``ranges``; earlier ranges take priority.

    The leading run that is already sorted and disjoint (a writer's Memory64List) is taken as it is;
    only the ranges after it (MemoryList, thread stacks) are merged one by one against it and each
    other, so a million-range dump never becomes a million Python objects.
    """
    report = MergeReport()
    lead = ranges.sorted_run_length()
    base = ranges.head(lead)
    base_spans = _SortedSpans(base.starts, base.__getitem__)
    extras: List[MemoryRange] = []
    extra_starts: List[int] = []
    extra_spans = _SortedSpans(extra_starts, extras.__getitem__)
    for position in range(lead, len(ranges)):
        item = ranges[position]
        if item.size <= 0:
            continue
        pieces, conflict = _uncovered(base_spans, item, same_bytes)
        if extras:
            remaining: List[MemoryRange] = []
            for piece in pieces:
                uncovered, clash = _uncovered(extra_spans, piece, same_bytes)
                remaining += uncovered
                conflict += clash
            pieces = remaining
        covered = item.size - sum(piece.size for piece in pieces)
        if covered:
            report.overlapping_ranges += 1
            report.overlapping_bytes += covered
        if conflict:
            report.conflicting_ranges += 1
            report.conflicting_bytes += conflict
        for piece in pieces:
            where = bisect_right(extra_starts, piece.start)
            extra_starts.insert(where, piece.start)
            extras.insert(where, piece)
    return _coalesce(base, extras), report


def _coalesce(base: RangeTable, extras: List[MemoryRange]) -> SegmentTable:
    """Interleave two sorted, mutually disjoint range sets and join address- and file-contiguous pieces."""
    result = SegmentTable()
    starts, sizes, offsets, ids = (
        result.starts,
        result.sizes,
        result.file_offsets,
        result.source_ids,
    )
    base_ids = [result.source_id(name) for name in base.source_names]
    extra_index, extra_count = 0, len(extras)

    def add(start: int, size: int, offset: int, source_id: int) -> None:
        if starts and starts[-1] + sizes[-1] == start and offsets[-1] + sizes[-1] == offset:
            sizes[-1] += size
            return
        starts.append(start)
        sizes.append(size)
        offsets.append(offset)
        ids.append(source_id)

    for start, size, offset, ident in zip(base.starts, base.sizes, base.file_offsets, base.source_ids):
        while extra_index < extra_count and extras[extra_index].start < start:
            extra = extras[extra_index]
            add(
                extra.start,
                extra.size,
                extra.file_offset,
                result.source_id(extra.source),
            )
            extra_index += 1
        add(start, size, offset, base_ids[ident])
    for extra in extras[extra_index:]:
        add(extra.start, extra.size, extra.file_offset, result.source_id(extra.source))
    return result.seal()
