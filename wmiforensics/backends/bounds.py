"""Impossible ranges stop at the backend boundary: normalised with a note, or dropped with a note.

Regions, modules and their allocation bases come from the input and may say anything: a size
of zero, a range that wraps 2^64 or reaches past the user address space of the process's
architecture, an allocation base above the region itself. Detectors and listings assume
``start <= end`` inside the process's address space, so every backend passes its facts through
here and the run's notes say what was wrong (one line per kind of damage, with a first example).
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Dict, List, Optional, Sequence, Tuple

from ..engine.facts import ModuleFact, RegionFact

#: User-mode address space limits (Windows Internals 7th ed., ch. 5): 128 TiB on x64 (the
#: 47-bit canonical lower half), 4 GiB for a 32-bit address space.
USER_LIMIT_64 = 1 << 47
USER_LIMIT_32 = 1 << 32


def user_limit(address_bits: int) -> int:
    return USER_LIMIT_32 if address_bits <= 32 else USER_LIMIT_64


#: Most regions (minidump MemoryInfoList entries, full-image VADs) of one process examined in detail.
#: Real processes hold a few thousand; hostile input can declare a million, and each examined region
#: costs Python objects, page-table walks and detector work. Past the budget each backend keeps the
#: most relevant regions first and one note (containing `REGION_BUDGET_MARK`) says what was skipped.
MAX_DETAILED_REGIONS = 50_000
#: Environment variable that replaces the budget (a positive integer), for tests and for analysts
#: who accept the cost of a larger one.
REGION_BUDGET_ENV = "WMIFORENSICS_MAX_DETAILED_REGIONS"
#: Every region budget note contains this (plugins that print only some notes look for it).
REGION_BUDGET_MARK = "(MAX_DETAILED_REGIONS)"
#: Largest value the environment variable may set: still a bound on cost.
MAX_REGION_BUDGET = 10_000_000


def detailed_region_budget(notes: Optional[List[str]] = None) -> int:
    """The region budget: `MAX_DETAILED_REGIONS`, or `REGION_BUDGET_ENV` when it holds a number in
    [1, MAX_REGION_BUDGET] (anything else is ignored with a note)."""
    text = os.environ.get(REGION_BUDGET_ENV, "").strip()
    if not text:
        return MAX_DETAILED_REGIONS
    if text.isdigit() and 1 <= int(text) <= MAX_REGION_BUDGET:
        return int(text)
    if notes is not None:
        notes.append(
            f"{REGION_BUDGET_ENV}={text[:40]!r} is not a number from 1 to {MAX_REGION_BUDGET:,}; "
            f"the default region budget {MAX_DETAILED_REGIONS:,} is used"
        )
    return MAX_DETAILED_REGIONS


def is_region_budget_note(note: str) -> bool:
    return REGION_BUDGET_MARK in note


class _Tally:
    """Counts each kind of damage and keeps its first example, for one bounded note per kind."""

    def __init__(self) -> None:
        self.kinds: Dict[str, Tuple[int, str]] = {}

    def add(self, kind: str, example: str) -> None:
        count, first = self.kinds.get(kind, (0, example))
        self.kinds[kind] = (count + 1, first)

    def notes(self, what: str) -> List[str]:
        return [
            f"{what}: {count} {kind} (first: {example})" if count > 1 else f"{what}: {kind} ({example})"
            for kind, (count, example) in self.kinds.items()
        ]


def normalise_regions(
    regions: Sequence[RegionFact], limit: int, notes: List[str], what: str
) -> List[RegionFact]:
    """Regions inside [0, limit) with size > 0 and an allocation base at or below their base."""
    tally = _Tally()
    kept: List[RegionFact] = []
    for region in regions:
        base, size = region.base, region.size
        if size <= 0:
            tally.add("regions of size 0 were dropped", f"at 0x{base:x}")
            continue
        if base >= limit:
            tally.add(
                f"regions lie above the user address space (limit 0x{limit:x}) and were dropped",
                f"0x{base:x}, 0x{size:x} bytes",
            )
            continue
        if base + size > limit:
            tally.add(
                f"regions declare sizes impossible for this architecture (past 0x{limit:x}) and were cut",
                f"0x{base:x} declares 0x{size:x} bytes",
            )
            region = replace(region, size=limit - base)
        if region.allocation_base > base:
            tally.add(
                "regions have an allocation base above the region; it was set to the region's base",
                f"0x{base:x} allocated at 0x{region.allocation_base:x}",
            )
            region = replace(region, allocation_base=base)
        kept.append(region)
    notes.extend(tally.notes(what))
    return kept


def normalise_modules(
    modules: Sequence[ModuleFact], limit: int, notes: List[str], what: str
) -> List[ModuleFact]:
    """Modules of size > 0 inside [0, limit); ranges that wrap or leave the space are cut there."""
    tally = _Tally()
    kept: List[ModuleFact] = []
    for module in modules:
        if module.base >= limit:
            tally.add(
                f"modules lie above the user address space (limit 0x{limit:x}) and were dropped",
                f"0x{module.base:x}",
            )
            continue
        if module.size <= 0:
            tally.add("modules of size 0 were given one page", f"0x{module.base:x}")
            module = replace(module, size=0x1000)
        if module.base + module.size > limit:
            tally.add(
                f"modules declare ranges past 0x{limit:x} (or wrapping 2^64) and were cut",
                f"0x{module.base:x} declares 0x{module.size:x} bytes",
            )
            module = replace(module, size=limit - module.base)
        kept.append(module)
    notes.extend(tally.notes(what))
    return kept


__all__ = [
    "MAX_DETAILED_REGIONS",
    "REGION_BUDGET_ENV",
    "USER_LIMIT_32",
    "USER_LIMIT_64",
    "detailed_region_budget",
    "is_region_budget_note",
    "normalise_modules",
    "normalise_regions",
    "user_limit",
]
