"""Kernel-image backend: a process's VADs, PTEs, PEB loader lists and ETHREADs as engine facts.

Regions come from the VAD tree, split where the *current* protection in the page tables differs
(Volatility's malfind only sees the VAD's allocation-time protection). Modules are the union of
the three PEB loader lists. Threads give ``Win32StartAddress`` and the user-mode ``Rip`` of their
trap frame. Only a full image can show two more things, also collected here: executable image
pages whose hardware PTE maps a private copy instead of the section's prototype page, and the
process's parent.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from dataclasses import dataclass
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

from volatility3.framework import constants as vol_constants
from volatility3.framework import exceptions, interfaces
from volatility3.framework.objects import utility

from ..engine.facts import (
    ModuleFact,
    PageChange,
    ParentFact,
    ProcessFacts,
    RegionFact,
    ThreadFact,
)
from ..minidump import constants
from . import vads
from .bounds import (
    REGION_BUDGET_MARK,
    USER_LIMIT_32,
    USER_LIMIT_64,
    detailed_region_budget,
    normalise_modules,
    normalise_regions,
)
from .handles import process_handles
from .paging import PFN_MASK, PRESENT, PageTableWalker, SoftwarePteLayout, hardware_protection

vollog = logging.getLogger(__name__)

VAD_IMAGE_MAP = 2
MAX_THREADS = 65_536
MAX_MODULES = 16_384
MAX_PAGES_COMPARED = 65_536


@dataclass(frozen=True)
class KernelView:
    """Where the kernel lives: the names Volatility gave its layer and symbol table."""

    context: interfaces.context.ContextInterface
    module_name: str

    @property
    def module(self):
        return self.context.modules[self.module_name]

    @property
    def layer_name(self) -> str:
        return self.module.layer_name

    @property
    def symbol_table(self) -> str:
        return self.module.symbol_table_name


def list_processes(view: KernelView) -> List:
    from volatility3.plugins.windows import pslist

    return list(pslist.PsList.list_processes(view.context, view.module_name))


def process_name(proc) -> str:
    return utility.array_to_string(proc.ImageFileName)


def _flags(vad) -> List:
    """Every VAD flags structure this build has (their member names moved between builds)."""
    found = []
    for path in (
        ("u", "VadFlags"),
        ("u1", "VadFlags1"),
        ("Core", "u", "VadFlags"),
        ("Core", "u1", "VadFlags1"),
    ):
        node = vad
        with contextlib.suppress(AttributeError, exceptions.InvalidAddressException):
            for member in path:
                if not node.has_member(member):
                    raise AttributeError(member)
                node = getattr(node, member)
            found.append(node)
    return found


def _flag(vad, name: str, default: int = 0) -> int:
    for flags in _flags(vad):
        if flags.has_member(name):
            return int(getattr(flags, name))
    return default


class ProcessReader:
    """Reads process memory through Volatility's process layer, returning only what is present."""

    def __init__(self, layer) -> None:
        self._layer = layer

    def __call__(self, address: int, length: int) -> bytes:
        try:
            return self._layer.read(address, length)
        except exceptions.InvalidAddressException:
            pass
        chunks, cursor, end = [], address, address + length
        while cursor < end:
            take = min(end, (cursor | 0xFFF) + 1) - cursor
            try:
                chunks.append(self._layer.read(cursor, take))
            except exceptions.InvalidAddressException:
                break
            cursor += take
        return b"".join(chunks)


def facts_from_process(view: KernelView, proc, all_processes: Optional[List] = None) -> ProcessFacts:
    """Engine facts for one ``_EPROCESS``."""
    context = view.context
    layer_name = proc.add_process_layer()
    layer = context.layers[layer_name]
    read = ProcessReader(layer)
    name = process_name(proc)
    pid = int(proc.UniqueProcessId)
    wow64 = False
    with contextlib.suppress(Exception):
        wow64 = bool(proc.get_is_wow64())
    image_path = command_line = None
    with contextlib.suppress(exceptions.InvalidAddressException, AttributeError):
        parameters = proc.get_peb().ProcessParameters
        image_path = parameters.ImagePathName.get_string()
        command_line = parameters.CommandLine.get_string()
    notes: List[str] = []
    protect_values = _protect_values(view)
    walker = PageTableWalker(_physical_reader(context, layer), layer.config["page_map_offset"])
    software = _software_layout(context, view.symbol_table)
    regions, changes = _regions(context, view, proc, walker, software, protect_values, notes)
    damaged: Dict[str, str] = {}
    is_64bit = layer.metadata.get("architecture") == "Intel64"
    limit = USER_LIMIT_64 if is_64bit else USER_LIMIT_32
    facts = ProcessFacts(
        pid=pid,
        name=name,
        image_path=image_path,
        arch="x86" if wow64 or not is_64bit else "x64",
        regions=normalise_regions(regions, limit, notes, "VAD tree"),
        modules=normalise_modules(_modules(proc, notes, damaged, wow64), limit, notes, "PEB loader lists"),
        threads=_threads(view, proc, notes, native_stack=not wow64),
        handles=process_handles(context, view.module_name, proc, notes),
        read=read,
        source="kernel",
        has_region_list=True,
        notes=notes,
        parent=_parent(proc, all_processes),
        image_page_changes=changes,
        command_line=command_line,
        present=valid_pages(walker, software),
        damaged_lists=damaged,
        address_limit=limit,
    )
    return facts


def valid_pages(walker: PageTableWalker, software: SoftwarePteLayout):
    """``present(start, end)`` for a full image: pages the layer can read (present or transition).

    Volatility's Windows layers read a page whose PTE is present, or in transition and not a
    prototype PTE; the same rule here keeps scanners off everything else, and the walk skips
    absent page tables whole, so a VAD spanning the user address space costs its page tables.
    """

    def present(start: int, end: int) -> Iterator[Tuple[int, int]]:
        for address, size, entry in walker.entries(start, end):
            transition = entry >> software.transition_bit & 1 and not entry >> software.prototype_bit & 1
            if entry & PRESENT or transition:
                yield address, address + size

    return present


def _physical_reader(context, layer):
    physical = context.layers[layer.config["memory_layer"]]

    def read(address: int, length: int) -> bytes:
        try:
            return physical.read(address, length)
        except exceptions.InvalidAddressException:
            return b""

    return read


def _protect_values(view: KernelView) -> List[int]:
    from volatility3.plugins.windows import vadinfo

    try:
        return list(vadinfo.VadInfo.protect_values(view.context, view.layer_name, view.symbol_table))
    except (exceptions.InvalidAddressException, ValueError, exceptions.SymbolError):
        # The documented defaults (WRK MmProtectToValue) when the kernel's copy cannot be read.
        return [0x01, 0x02, 0x10, 0x20, 0x04, 0x08, 0x40, 0x80] * 4


def _software_layout(context, symbol_table: str) -> SoftwarePteLayout:
    values = {}
    with contextlib.suppress(exceptions.SymbolError, KeyError, AttributeError):
        members = context.symbol_space.get_type(f"{symbol_table}!_MMPTE_SOFTWARE").vol.members
        for member, key in (
            ("Protection", "protection"),
            ("Prototype", "prototype"),
            ("Transition", "transition"),
        ):
            if member in members:
                subtype = members[member][1]
                values[key] = (subtype.vol.start_bit, subtype.vol.end_bit)
    layout = SoftwarePteLayout()
    if "protection" in values:
        start, end = values["protection"]
        layout = SoftwarePteLayout(
            start, end - start, values.get("prototype", (10,))[0], values.get("transition", (11,))[0]
        )
    return layout


def _vad_type(vad) -> int:
    return _flag(vad, "VadType")


def _regions(context, view, proc, walker, software, protect_values, notes):
    regions: List[RegionFact] = []
    changes: List[PageChange] = []

    def executable(vad: vads.Vad) -> bool:
        index = vad.protection_index
        return 0 <= index < len(protect_values) and constants.is_executable(protect_values[index])

    kept, budget_note = vads.within_budget(
        _vads(context, view, proc, notes), detailed_region_budget(notes), executable, REGION_BUDGET_MARK
    )
    if budget_note:
        notes.append(budget_note)
    for vad in kept:
        index = vad.protection_index
        allocation_protect = protect_values[index] if 0 <= index < len(protect_values) else 0
        if vad.vad_type == VAD_IMAGE_MAP:
            memory_type = constants.MEM_IMAGE
        else:
            memory_type = constants.MEM_PRIVATE if vad.private else constants.MEM_MAPPED
        committed = memory_type != constants.MEM_PRIVATE or vad.mem_commit
        default_state = constants.MEM_COMMIT if committed else constants.MEM_RESERVE
        regions.extend(
            _runs(
                walker,
                software,
                protect_values,
                vad.start,
                vad.end,
                allocation_protect,
                memory_type,
                default_state,
            )
        )
        if memory_type == constants.MEM_IMAGE and vad.first_prototype_pte:
            changes.extend(_image_changes(context, view, walker, vad, notes))
    return regions, changes


def _vads(context, view, proc, notes) -> List[vads.Vad]:
    """VADs by the fast raw walk where the build's layout allows it, else through Volatility."""
    layout = vads.VadLayout.for_table(context, view.symbol_table)
    root = None
    with contextlib.suppress(exceptions.InvalidAddressException, AttributeError):
        vad_root = proc.VadRoot
        root = int(vad_root.Root) if vad_root.has_member("Root") else None
    if layout is not None and root is not None:
        return list(vads.walk(context.layers[view.layer_name], layout, root, notes))
    return _vads_by_volatility(proc, notes)


def _vads_by_volatility(proc, notes: List[str]) -> List[vads.Vad]:
    """Volatility's traversal, bounded: it skips nodes it has seen but keeps them all, and refuses
    trees deeper than 100 levels (RuntimeError); what was read before either stop is kept."""
    nodes = []
    try:
        for node in itertools.islice(proc.get_vad_root().traverse(), vads.MAX_VADS + 1):
            nodes.append(node)
    except (exceptions.InvalidAddressException, RuntimeError) as error:
        notes.append(f"the VAD tree could not be walked completely ({error}); {len(nodes)} VADs were read")
    if len(nodes) > vads.MAX_VADS:
        notes.append(f"more than {vads.MAX_VADS} VADs: the rest are ignored")
        del nodes[vads.MAX_VADS :]
    found = []
    for node in nodes:
        with contextlib.suppress(exceptions.InvalidAddressException, AttributeError):
            found.append(
                vads.Vad(
                    node.get_start(),
                    node.get_end() + 1,
                    int(node.Protection or 0),
                    _flag(node, "VadType"),
                    bool(_safe(node.get_private_memory, 0)),
                    bool(_flag(node, "MemCommit")),
                    _safe(lambda n=node: int(n.FirstPrototypePte), 0),
                )
            )
    found.sort(key=lambda vad: vad.start)
    return found


def _safe(function, default):
    try:
        return function()
    except (exceptions.InvalidAddressException, AttributeError):
        return default


def _runs(walker, software, protect_values, start, end, allocation_protect, memory_type, default_state):
    """Split [start, end) into regions of equal state and current protection."""
    runs: List[RegionFact] = []

    def emit(run_start: int, run_end: int, state: int, protect: int) -> None:
        if run_end <= run_start:
            return
        if runs and runs[-1].end == run_start and runs[-1].state == state and runs[-1].protect == protect:
            last = runs[-1]
            runs[-1] = RegionFact(
                last.base, run_end - last.base, state, protect, start, allocation_protect, memory_type
            )
        else:
            runs.append(
                RegionFact(
                    run_start, run_end - run_start, state, protect, start, allocation_protect, memory_type
                )
            )

    default_protect = allocation_protect if default_state == constants.MEM_COMMIT else 0
    cursor = start
    for address, size, entry in walker.entries(start, end):
        if address > cursor:
            emit(cursor, address, default_state, default_protect)
        if entry & PRESENT:
            state, protect = constants.MEM_COMMIT, hardware_protection(entry)
        else:
            index = software.protection_index(entry)
            state = constants.MEM_COMMIT
            protect = protect_values[index] if index and index < len(protect_values) else allocation_protect
        emit(address, min(address + size, end), state, protect)
        cursor = min(address + size, end)
    emit(cursor, end, default_state, default_protect)
    return runs


def _image_changes(context, view, walker, vad, notes) -> List[PageChange]:
    """Executable image pages whose hardware PTE maps a different page than the section's prototype."""
    first_prototype, start, end = vad.first_prototype_pte, vad.start, vad.end
    kernel = context.layers[view.layer_name]
    physical = walker._read  # the same physical reader the walker uses
    changes: List[PageChange] = []
    compared = 0
    for address, size, entry in walker.entries(start, end):
        if (
            size != 0x1000
            or not entry & PRESENT
            or hardware_protection(entry) not in (0x10, 0x20, 0x40, 0x80)
        ):
            continue
        compared += 1
        if compared > MAX_PAGES_COMPARED:
            notes.append("image page comparison stopped after 65,536 pages")
            break
        prototype_address = first_prototype + ((address - start) >> 12) * 8
        try:
            prototype = int.from_bytes(kernel.read(prototype_address, 8), "little")
        except exceptions.InvalidAddressException:
            continue
        if not prototype & PRESENT or (prototype & PFN_MASK) == (entry & PFN_MASK):
            continue
        current = physical(entry & PFN_MASK, 0x1000)
        original = physical(prototype & PFN_MASK, 0x1000)
        if current and original and current != original:
            changes.append(PageChange(address, current, original, entry & PFN_MASK, prototype & PFN_MASK))
    return changes


#: The PEB_LDR_DATA lists and the LDR_DATA_TABLE_ENTRY link each one runs through.
LOADER_LISTS = (
    ("InLoadOrderModuleList", "InLoadOrderLinks"),
    ("InMemoryOrderModuleList", "InMemoryOrderLinks"),
    ("InInitializationOrderModuleList", "InInitializationOrderLinks"),
)
#: Appended to a list's name when it is the 32-bit PEB's (a WOW64 process has both).
PEB32_SUFFIX = " of the WOW64 PEB32"


def _modules(
    proc, notes: List[str], damaged: Optional[Dict[str, str]] = None, wow64: bool = False
) -> List[ModuleFact]:
    """The union of the PEB loader lists; a list whose walk is cut is noted in ``damaged``.

    Each list is walked on its own, from its own head: the native PEB's three and, for a WOW64
    process, the 32-bit PEB32's three (Volatility's module walk chains the two PEBs' lists, so a
    cut in the first would be hidden by the second).
    """
    by_base: Dict[int, Tuple[int, str, set]] = {}
    cut_pebs: List[str] = []
    for suffix, ldr, table in _loader_data(proc, notes, wow64):
        cuts = 0
        for label, link_name in LOADER_LISTS:
            name = label + suffix
            cut = _walk_loader_list(ldr, table, label, link_name, name, by_base, notes)
            if cut:
                cuts += 1
                notes.append(f"{name} {cut}: modules past that point are unknown")
                if damaged is not None:
                    damaged[name] = cut
        if cuts == len(LOADER_LISTS):
            cut_pebs.append(f"all three loader lists{suffix}" if suffix else "all three PEB loader lists")
    if damaged is not None and cut_pebs:
        damaged["modules"] = " and ".join(cut_pebs) + " are cut short"
    return [
        ModuleFact(base, size, path, frozenset(sources)) for base, (size, path, sources) in by_base.items()
    ]


def _loader_data(proc, notes: List[str], wow64: bool) -> List[Tuple[str, object, str]]:
    """(name suffix, PEB_LDR_DATA, symbol table of its entries) of the native PEB and, under WOW64,
    of the PEB32 (whose 32-bit types Volatility loads from its own wow64 symbol table)."""
    found: List[Tuple[str, object, str]] = []
    with contextlib.suppress(exceptions.InvalidAddressException, AttributeError, ValueError):
        found.append(("", proc.get_peb().Ldr.dereference(), proc.get_symbol_table_name()))
    if not wow64:
        return found
    try:
        peb32 = proc.get_peb32()
        if peb32 is None:
            raise ValueError("no WoW64Process")
        table = proc.get_symbol_table_name()
        if peb32.Ldr.vol.type_name.split(vol_constants.BANG)[-1] == "unsigned long":
            table = proc.set_types(peb32)  # Ldr becomes a pointer to the 32-bit PEB_LDR_DATA
        found.append((PEB32_SUFFIX, peb32.Ldr.dereference(), table))
    except (exceptions.InvalidAddressException, exceptions.SymbolError, AttributeError, ValueError) as error:
        notes.append(f"the WOW64 PEB32 could not be read ({error}); its loader lists were not walked")
    return found


def _walk_loader_list(
    ldr, table: str, label: str, link_name: str, name: str, by_base: Dict, notes: List[str]
) -> Optional[str]:
    """Add one loader list's modules to ``by_base``; why its walk was cut, or None."""
    last, count = None, 0
    try:
        head = ldr.member(label)
        entries = head.to_list(f"{table}{vol_constants.BANG}_LDR_DATA_TABLE_ENTRY", link_name)
        for index, entry in enumerate(entries or ()):
            if index >= MAX_MODULES:
                notes.append(f"{name}: more than {MAX_MODULES} entries, the rest ignored")
                return None
            last, count = entry, index + 1
            try:
                base = int(entry.DllBase)
            except exceptions.InvalidAddressException:
                continue  # as Volatility's walk: an entry without a readable base says nothing
            path = _unicode(entry.FullDllName) or _unicode(entry.BaseDllName)
            path = path or f"<unnamed module at 0x{base:x}>"
            size, known_path, sources = by_base.get(base, (int(entry.SizeOfImage), path, set()))
            sources.add(name)
            by_base[base] = (size, known_path, sources)
        return _walk_cut(last, link_name, {int(head.vol.offset)}, count)
    except exceptions.InvalidAddressException as error:
        return f"could not be walked completely ({error})"


def _walk_cut(last, link_name: str, heads: set, count: int) -> Optional[str]:
    """Why a loader list walk ended before returning to its head (a loop, an unreadable entry)."""
    if last is None or not heads:
        return None
    try:
        following = int(last.member(link_name).Flink)
    except (exceptions.InvalidAddressException, AttributeError):
        return f"ends after {count} entries at an unreadable link"
    if following in heads:
        return None
    return (
        f"is cut after {count} entries: the last one links to 0x{following:x}, which loops back or "
        "cannot be read, instead of the list head"
    )


def _unicode(value) -> Optional[str]:
    try:
        text = value.get_string()
    except (exceptions.InvalidAddressException, AttributeError):
        return None
    return str(text) if isinstance(text, str) and text else None


def _threads(view: KernelView, proc, notes: List[str], native_stack: bool = True) -> List[ThreadFact]:
    """Threads with start address, TEB and the user-mode registers of their trap frame (the stack
    and frame pointers only for native processes: a WOW64 thread's trap frame holds the 64-bit
    side's state, not the x86 stack the engine would walk)."""
    threads: List[ThreadFact] = []
    try:
        entries = proc.ThreadListHead.to_list(
            f"{view.symbol_table}{vol_constants.BANG}_ETHREAD", "ThreadListEntry"
        )
        for index, thread in enumerate(entries):
            if index >= MAX_THREADS:
                notes.append(f"more than {MAX_THREADS} threads: the rest are ignored")
                break
            try:
                tid = int(thread.Cid.UniqueThread)
                start = int(thread.Win32StartAddress) or None
            except exceptions.InvalidAddressException:
                continue
            ip, sp, fp = _user_registers(thread)
            if not native_stack:
                sp = fp = None
            threads.append(
                ThreadFact(
                    tid,
                    start,
                    ip,
                    _safe(lambda t=thread: int(t.Tcb.Teb), None),
                    stack_pointer=sp,
                    frame_pointer=fp,
                )
            )
    except exceptions.InvalidAddressException as error:
        notes.append(f"the thread list could not be walked completely ({error})")
    return threads


def _user_registers(thread) -> Tuple[Optional[int], Optional[int], Optional[int]]:
    """Rip, Rsp and Rbp of the thread's trap frame when it was taken from user mode (CS with RPL 3):
    the user stack a full image lets the engine unwind."""
    try:
        pointer = thread.Tcb.TrapFrame
        if not int(pointer):
            return None, None, None
        frame = pointer.dereference()
        if int(frame.SegCs) & 3 != 3:
            return None, None, None
        return int(frame.Rip) or None, int(frame.Rsp) or None, int(frame.Rbp) or None
    except (exceptions.InvalidAddressException, AttributeError):
        return None, None, None


def _parent(proc, all_processes: Optional[Iterable]) -> Optional[ParentFact]:
    ppid = int(proc.InheritedFromUniqueProcessId)
    for candidate in all_processes or []:
        with contextlib.suppress(exceptions.InvalidAddressException):
            if int(candidate.UniqueProcessId) == ppid:
                command_line = None
                with contextlib.suppress(exceptions.InvalidAddressException, AttributeError):
                    command_line = candidate.get_peb().ProcessParameters.CommandLine.get_string()
                return ParentFact(
                    ppid, process_name(candidate), command_line if isinstance(command_line, str) else None
                )
    return ParentFact(ppid, None, None)


def hosts_winmgmt(view: KernelView, proc) -> bool:
    """The svchost.exe that runs the Winmgmt service (wmisvc.dll, wbemcore.dll), not any svchost."""
    if process_name(proc).lower() != "svchost.exe":
        return False
    with contextlib.suppress(exceptions.InvalidAddressException, AttributeError):
        command_line = proc.get_peb().ProcessParameters.CommandLine.get_string()
        if isinstance(command_line, str) and "winmgmt" in command_line.lower():
            return True
    with contextlib.suppress(exceptions.InvalidAddressException, AttributeError):
        for entry in proc.load_order_modules():
            name = _unicode(entry.BaseDllName) or ""
            if name.lower() in ("wmisvc.dll", "wbemcore.dll"):
                return True
    return False


def select(processes: List, pids: Optional[List[int]], names: Optional[List[str]]) -> Iterator:
    """Processes by PID, or by image name (case-insensitive)."""
    wanted_names = {name.lower() for name in names or []}
    for proc in processes:
        pid = int(proc.UniqueProcessId)
        if pids and pid in pids or wanted_names and process_name(proc).lower() in wanted_names:
            yield proc


def inventory(processes: List) -> str:
    """``System (4), svchost.exe (936), ...`` for "no process matches" messages."""
    items = []
    for proc in processes[:40]:
        with contextlib.suppress(exceptions.InvalidAddressException):
            items.append(f"{process_name(proc)} ({int(proc.UniqueProcessId)})")
    more = f", ... ({len(processes)} in all)" if len(processes) > 40 else ""
    return ", ".join(items) + more


__all__ = ["KernelView", "facts_from_process", "hosts_winmgmt", "inventory", "list_processes", "select"]
