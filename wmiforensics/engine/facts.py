"""Backend-neutral facts about one process: what every detector sees, whatever the input was.

A minidump backend builds them from MemoryInfoList/ModuleList/ThreadList; a kernel-image backend
from VADs, PTEs, PEB loader lists and ETHREADs. Detectors never see the backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, FrozenSet, Iterable, List, Optional, Tuple

from ..minidump.model import RegionProperties


@dataclass(frozen=True)
class RegionFact(RegionProperties):
    """A run of pages with one state, protection and type (a MemoryInfoList entry or a VAD part)."""

    base: int
    size: int
    state: int
    protect: int
    allocation_base: int
    allocation_protect: int
    type: int


@dataclass(frozen=True)
class ModuleFact:
    base: int
    size: int
    path: str
    #: Which lists reported it ("ModuleList", "InLoadOrderModuleList", ...).
    sources: FrozenSet[str] = frozenset({"ModuleList"})

    @property
    def end(self) -> int:
        return self.base + self.size

    @property
    def name(self) -> str:
        return self.path.replace("/", "\\").rsplit("\\", 1)[-1]


@dataclass(frozen=True)
class ThreadFact:
    thread_id: int
    start_address: Optional[int]
    instruction_pointer: Optional[int]
    teb: Optional[int] = None
    #: The user-mode stack and frame pointers (minidump CONTEXT, or a full image's trap frame).
    stack_pointer: Optional[int] = None
    frame_pointer: Optional[int] = None
    #: Highest stack address the walk may read up to (the captured stack's end or NT_TIB.StackBase).
    stack_high: Optional[int] = None


@dataclass(frozen=True)
class HandleFact:
    handle: int
    type_name: Optional[str]
    object_name: Optional[str]
    granted_access: int


@dataclass(frozen=True)
class ParentFact:
    """The creating process, where the input knows it (full images do, minidumps do not)."""

    pid: int
    name: Optional[str]
    command_line: Optional[str]


@dataclass(frozen=True)
class PageChange:
    """An image page whose mapped bytes differ from the section's original (full images only)."""

    address: int
    current: bytes
    original: bytes
    current_frame: int
    original_frame: int


#: Reads up to ``length`` captured bytes at ``address``; returns b"" when nothing is captured there.
MemoryReader = Callable[[int, int], bytes]


@dataclass
class ProcessFacts:
    pid: Optional[int]
    name: str
    image_path: Optional[str]
    #: "x64" or "x86": the process's own bitness (a WOW64 process is "x86").
    arch: str
    regions: List[RegionFact]
    modules: List[ModuleFact]
    threads: List[ThreadFact]
    handles: List[HandleFact]
    read: MemoryReader
    #: "minidump" or "kernel": for messages only; detectors must not branch on it.
    source: str = "minidump"
    #: True when the regions list is real (a minidump without MemoryInfoList has none).
    has_region_list: bool = True
    notes: List[str] = field(default_factory=list)
    #: ``present(start, end)``: sorted (start, end) runs of bytes that exist inside [start, end)
    #: (captured segments, valid pages). Scanners walk these, never a region's declared size;
    #: see :mod:`wmiforensics.captured`. None: every declared byte may exist (hand-made facts).
    present: Optional[Callable[[int, int], Iterable[Tuple[int, int]]]] = None
    parent: Optional[ParentFact] = None
    #: None when the input cannot tell (minidumps); a list (maybe empty) when it can.
    image_page_changes: Optional[List[PageChange]] = None
    command_line: Optional[str] = None
    #: Lists whose walk was cut (a loop, an unreadable link): name -> why. Findings that rest on
    #: a list being complete (an image "missing" from the module lists) are ranked down.
    damaged_lists: Dict[str, str] = field(default_factory=dict)
    #: Highest user-mode address + 1 for this process: nothing a process owns lies above it.
    address_limit: int = 1 << 47

    def present_spans(self, start: int, end: int) -> Iterable[Tuple[int, int]]:
        """Runs of existing bytes in [start, end) (the whole range when the backend cannot tell)."""
        if self.present is None:
            return [(start, end)] if end > start else []
        return self.present(start, end)
