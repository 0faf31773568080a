"""Overlapping chunks of a process's existing bytes, for carvers that want ``(address, bytes)``.

Minidumps: only the captured segments are read. Full images: each committed region is read chunk
by chunk; where a page is not present the read stops and resumes at the next page, so invalid
pages cost one failed read each and nothing is ever zero-filled.
"""

from __future__ import annotations

from typing import Iterator, List, Tuple

from ..engine.facts import ProcessFacts

CHUNK = 16 << 20
OVERLAP = 64 << 10
PAGE = 0x1000


def spans(facts: ProcessFacts) -> List[Tuple[int, int]]:
    """Address ranges that hold bytes: captured segments if the input knows them, else regions."""
    if facts.captured_spans is not None:
        return list(facts.captured_spans())
    return [(region.base, region.end) for region in facts.regions if region.is_committed]


def process_chunks(
    facts: ProcessFacts, chunk: int = CHUNK, overlap: int = OVERLAP
) -> Iterator[Tuple[int, bytes]]:
    """``(address, bytes)`` chunks of at most ``chunk + overlap`` bytes covering every span."""
    for start, end in spans(facts):
        cursor = start
        while cursor < end:
            want = min(chunk + overlap, end - cursor)
            data = facts.read(cursor, want)
            if data:
                yield cursor, data
            if len(data) >= want or len(data) > chunk:
                cursor += chunk
                continue
            # a gap: step over the missing pages one small probe each, then read big chunks again
            cursor = ((cursor + len(data)) | (PAGE - 1)) + 1
            while cursor < end and not facts.read(cursor, 1):
                cursor += PAGE
