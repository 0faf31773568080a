"""Iterate the bytes that actually exist in a process, whatever the input, in bounded chunks.

A region's declared size says nothing about what the input holds: a minidump captures only some
ranges, a full image only has the pages that are valid in the page tables. Scanners (YARA, object
carvers) must cost what exists, never what is declared, so every one of them walks memory through
this module instead of stepping through ``[base, base + size)`` itself.

Backends provide one function, :data:`PresentSpans`: the runs of existing bytes inside a range, in
address order (captured segments on a minidump, valid pages on a full image). On top of it:

* :func:`present_runs` merges touching spans into maximal runs, clipped to the range;
* :func:`chunks` reads each run in chunks of at most ``chunk + overlap`` bytes. Consecutive chunks
  of one run overlap by ``overlap`` bytes so a pattern that straddles a chunk boundary is seen
  whole; a match that *starts* at or after :attr:`Chunk.fresh_end` lies in the overlap and is
  seen again (and should be reported) by the next chunk. Bytes that do not exist are never
  materialised: runs separated by a hole are read separately.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, NamedTuple, Tuple

#: ``spans(start, end)`` -> (span_start, span_end) of existing bytes inside [start, end), sorted.
PresentSpans = Callable[[int, int], Iterable[Tuple[int, int]]]
#: ``read(address, length)`` -> the existing bytes from ``address`` on (maybe fewer, maybe none).
Reader = Callable[[int, int], bytes]

CHUNK = 16 << 20
OVERLAP = 64 << 10


class Chunk(NamedTuple):
    """Bytes read from ``address``; matches starting at or after ``fresh_end`` belong to the next chunk."""

    address: int
    data: bytes
    fresh_end: int


def present_runs(spans: PresentSpans, start: int, end: int) -> Iterator[Tuple[int, int]]:
    """Maximal runs of existing bytes inside [start, end): touching spans are merged, all clipped."""
    run_start = run_end = None
    for span_start, span_end in spans(start, end):
        span_start, span_end = max(span_start, start), min(span_end, end)
        if span_end <= span_start:
            continue
        if run_end is not None and span_start <= run_end:
            run_end = max(run_end, span_end)
            continue
        if run_start is not None:
            yield run_start, run_end
        run_start, run_end = span_start, span_end
    if run_start is not None:
        yield run_start, run_end


def chunks(
    read: Reader,
    spans: PresentSpans,
    start: int,
    end: int,
    chunk: int = CHUNK,
    overlap: int = OVERLAP,
) -> Iterator[Chunk]:
    """Every existing byte of [start, end), in address order, in chunks that overlap within a run."""
    if chunk <= 0 or overlap < 0:
        raise ValueError("chunk must be positive and overlap not negative")
    for run_start, run_end in present_runs(spans, start, end):
        cursor = run_start
        while cursor < run_end:
            length = min(chunk + overlap, run_end - cursor)
            data = read(cursor, length)
            fresh_end = min(cursor + chunk, run_end)
            if data:
                yield Chunk(cursor, data, fresh_end)
            cursor = fresh_end


def existing_bytes(spans: PresentSpans, start: int, end: int) -> int:
    """How many bytes of [start, end) exist (cost follows the spans, not the range)."""
    return sum(run_end - run_start for run_start, run_end in present_runs(spans, start, end))


__all__ = ["CHUNK", "OVERLAP", "Chunk", "PresentSpans", "chunks", "existing_bytes", "present_runs"]
