"""Overlapping chunks of a process's existing bytes, for carvers that want ``(address, bytes)``.

Only bytes the input holds are read (captured segments of a minidump, present pages of a full
image), through :mod:`wmiforensics.captured`: nothing is ever zero-filled and a region's declared
size costs nothing.
"""

from __future__ import annotations

from typing import Iterator, List, Tuple

from .. import captured
from ..engine.facts import ProcessFacts

CHUNK = captured.CHUNK
OVERLAP = captured.OVERLAP


def spans(facts: ProcessFacts) -> List[Tuple[int, int]]:
    """Ranges to carve: committed regions, or the whole address space where no region list exists."""
    if facts.has_region_list:
        return [(region.base, region.end) for region in facts.regions if region.is_committed]
    return [(0, 1 << 64)]


def process_chunks(
    facts: ProcessFacts, chunk: int = CHUNK, overlap: int = OVERLAP
) -> Iterator[Tuple[int, bytes]]:
    """``(address, bytes)`` chunks of at most ``chunk + overlap`` bytes covering every existing byte."""
    for start, end in spans(facts):
        for piece in captured.chunks(facts.read, facts.present_spans, start, end, chunk, overlap):
            yield piece.address, piece.data
