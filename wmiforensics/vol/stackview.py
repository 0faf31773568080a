"""``wmi.threads --frames N``: each thread's unwound stack frames as one more column."""

from __future__ import annotations

from typing import Iterator

from ..backends.minidump import facts_from_minidump
from ..engine.detectors import Context
from ..engine.stacks import StackWalker
from ..minidump.reader import Minidump
from . import inspection
from .common import MISSING

THREAD_FRAME_COLUMNS = [*inspection.THREAD_COLUMNS, ("Frames", str)]


def thread_rows_with_frames(dump: Minidump, limit: int) -> Iterator[tuple]:
    """The thread rows of `inspection.thread_rows`, each with up to ``limit`` frames, innermost first
    (``#n address module+offset (wait function) [how it was found]``)."""
    facts = facts_from_minidump(dump)
    walker = StackWalker(Context.build(facts))
    for (level, row), thread in zip(inspection.thread_rows(dump), facts.threads):
        walked = walker.walk(thread, limit=max(1, limit))
        frames = walked.frames[:limit] if walked else []
        text = "; ".join(f"#{index} {walker.describe(frame)}" for index, frame in enumerate(frames))
        yield level, (*row, text or MISSING)
