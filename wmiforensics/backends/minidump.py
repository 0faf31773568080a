"""Minidump backend: MemoryInfoList, ModuleList and ThreadList(+Info) as engine facts."""

from __future__ import annotations

import ntpath
from bisect import bisect_right
from typing import Iterator, Tuple

from ..engine.facts import HandleFact, ModuleFact, ProcessFacts, RegionFact, ThreadFact
from ..minidump.reader import Minidump
from .bounds import normalise_modules, normalise_regions, user_limit


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


def facts_from_minidump(dump: Minidump) -> ProcessFacts:
    main = dump.main_module
    limit = user_limit(dump.address_bits)
    notes = []
    facts = ProcessFacts(
        pid=dump.process_id,
        name=ntpath.basename(main.path) if main else dump.name,
        image_path=main.path if main else None,
        arch="x86" if dump.arch == "x86" or dump.is_wow64 else "x64",
        regions=normalise_regions(
            [
                RegionFact(
                    info.base,
                    info.size,
                    info.state,
                    info.protect,
                    info.allocation_base,
                    info.allocation_protect,
                    info.type,
                )
                for info in dump.memory_info
            ],
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
