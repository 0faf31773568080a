"""Minidump backend: MemoryInfoList, ModuleList and ThreadList(+Info) as engine facts."""

from __future__ import annotations

import ntpath
from bisect import bisect_left, bisect_right
from collections import Counter
from typing import Iterator, List, Optional, Sequence, Tuple

from ..engine.facts import HandleFact, ModuleFact, ProcessFacts, RegionFact, ThreadFact
from ..minidump import constants
from ..minidump.reader import Minidump
from ..minidump.tables import MemoryInfoTable, SegmentTable
from .bounds import (
    MAX_DETAILED_REGIONS,
    REGION_BUDGET_MARK,
    detailed_region_budget,
    normalise_modules,
    normalise_regions,
    user_limit,
)


def captured_spans(dump: Minidump):
    """``present(start, end)`` for a minidump: its captured segments, found by bisection."""
    segments = list(dump.segments)
    starts = [segment.start for segment in segments]

    def present(start: int, end: int) -> Iterator[Tuple[int, int]]:
        index = max(bisect_right(starts, start) - 1, 0)
        while index < len(segments) and segments[index].start < end:
            segment = segments[index]
            if segment.end > start:
                yield segment.start, segment.end
            index += 1

    return present


#: The region budget (`bounds.MAX_DETAILED_REGIONS`) applied to MemoryInfoList entries: the format
#: allows a million (1 << 20 at 48 bytes each is a 48 MB file). Past the budget, regions with
#: captured bytes are kept first (they are the only ones whose bytes can be examined), then the
#: rest in address order; one note, beginning with `REGION_BUDGET_NOTE`, says what was skipped.
REGION_BUDGET_NOTE = "MemoryInfoList declares"


def _region_facts(table: MemoryInfoTable, positions: Optional[Sequence[int]]) -> List[RegionFact]:
    """Region facts straight from the table's columns (no intermediate MemoryInfo objects)."""
    columns = (
        table.bases,
        table.sizes,
        table.states,
        table.protects,
        table.allocation_bases,
        table.allocation_protects,
        table.types,
    )
    if positions is not None:
        columns = tuple(map(column.__getitem__, positions) for column in columns)
    return list(map(RegionFact, *columns))


def captured_positions(table: MemoryInfoTable, segments: SegmentTable) -> List[Tuple[int, int]]:
    """Ascending, disjoint table position ranges [first, last) of regions that hold captured bytes:
    two bisects per segment, never a walk over every region. A region counts when a segment starts
    inside it or it starts inside a segment (regions of a valid list do not overlap)."""
    bases, sizes = table.bases, table.sizes
    ranges: List[Tuple[int, int]] = []
    claimed = 0
    for start, size in zip(segments.starts, segments.sizes):
        first = max(bisect_right(bases, start) - 1, claimed)
        if first < len(bases) and bases[first] + sizes[first] <= start:
            first += 1
        last = bisect_left(bases, start + size)
        if first >= last:
            continue
        if ranges and ranges[-1][1] == first:
            ranges[-1] = (ranges[-1][0], last)
        else:
            ranges.append((first, last))
        claimed = last
    return ranges


def _take(ranges: Sequence[Tuple[int, int]], wanted: int) -> List[int]:
    """The first ``wanted`` positions of ``ranges``."""
    taken: List[int] = []
    for first, last in ranges:
        taken.extend(range(first, min(last, first + wanted - len(taken))))
        if len(taken) >= wanted:
            break
    return taken


def regions_within_budget(
    table: MemoryInfoTable, segments: SegmentTable, budget: int = MAX_DETAILED_REGIONS
) -> Tuple[Optional[List[int]], Optional[str]]:
    """Table positions to examine (None: all of them) and, past ``budget``, a note saying what was
    skipped: regions with captured bytes first, then the others from the lowest address."""
    count = len(table)
    if count <= budget:
        return None, None
    captured = captured_positions(table, segments)
    captured_count = sum(last - first for first, last in captured)
    kept = _take(captured, budget)
    bounds = [0, *(edge for pair in captured for edge in pair), count]
    gaps = [(bounds[index], bounds[index + 1]) for index in range(0, len(bounds), 2)]
    kept = sorted(kept + _take(gaps, budget - len(kept)))
    protects = table.protects
    skipped_protects = Counter(protects)
    skipped_protects.subtract(map(protects.__getitem__, kept))
    executable = sum(n for protect, n in skipped_protects.items() if constants.is_executable(protect))
    note = (
        f"{REGION_BUDGET_NOTE} {count:,} regions, more than the {budget:,} examined in detail per process "
        f"{REGION_BUDGET_MARK}: {count - len(kept):,} regions were skipped, {executable:,} of them "
        f"executable and {max(captured_count - budget, 0):,} with captured bytes (regions with captured "
        "bytes are kept first, then the lowest addresses); findings and scans cover only the regions kept"
    )
    return kept, note


def facts_from_minidump(dump: Minidump) -> ProcessFacts:
    main = dump.main_module
    limit = user_limit(dump.address_bits)
    notes = []
    positions, budget_note = regions_within_budget(
        dump.memory_info, dump.segments, detailed_region_budget(notes)
    )
    if budget_note:
        notes.append(budget_note)
    facts = ProcessFacts(
        pid=dump.process_id,
        name=ntpath.basename(main.path) if main else dump.name,
        image_path=main.path if main else None,
        arch="x86" if dump.arch == "x86" or dump.is_wow64 else "x64",
        regions=normalise_regions(
            _region_facts(dump.memory_info, positions),
            limit,
            notes,
            "MemoryInfoList",
        ),
        modules=normalise_modules(
            [ModuleFact(module.base, module.size, module.path) for module in dump.modules],
            limit,
            notes,
            "ModuleList",
        ),
        threads=[
            ThreadFact(
                thread.thread_id,
                thread.start_address,
                thread.instruction_pointer,
                thread.teb,
                stack_pointer=thread.stack_pointer,
                frame_pointer=thread.frame_pointer,
                stack_high=thread.stack_start + thread.stack_size if thread.stack_size else None,
            )
            for thread in dump.threads
        ],
        handles=[
            HandleFact(handle.handle, handle.type_name, handle.object_name, handle.granted_access)
            for handle in dump.handles
        ],
        read=dump.read_prefix,
        source="minidump",
        has_region_list=bool(dump.memory_info),
        notes=notes,
        present=captured_spans(dump),
        address_limit=limit,
    )
    if not dump.memory_info:
        facts.notes.append(
            "the dump has no MemoryInfoList: protections and region types are unknown, so only module, "
            "thread and ETW checks ran"
        )
    if not any(thread.start_address for thread in dump.threads):
        facts.notes.append("the dump has no ThreadInfoList: thread start addresses are unknown")
    return facts
