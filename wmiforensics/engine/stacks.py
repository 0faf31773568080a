"""Thread stacks as evidence: where a sleeping thread will return to, and what that memory is.

A sleeping implant waits inside ntdll like every other thread; what gives it away is a return address
on its stack that points into private or mapped memory, often made non-executable while it sleeps
(sleep masking). Each thread's stack is unwound with :mod:`.unwind` and every return address is
checked against the process's regions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Tuple

from .detectors import _region_columns
from .facts import ThreadFact
from .findings import Confidence, Finding, Severity
from .unwind import RBP, Frame, ModuleTables, StackMemory, follows_call, scan_stack, unwind_x64, walk_x86

#: Functions a thread calls to sleep or wait; a frame above one of them belongs to a waiting caller.
WAIT_FUNCTIONS: Dict[str, tuple] = {
    "ntdll.dll": (
        "NtDelayExecution",
        "NtWaitForSingleObject",
        "NtWaitForMultipleObjects",
        "NtSignalAndWaitForSingleObject",
        "NtWaitForAlertByThreadId",
        "NtRemoveIoCompletion",
        "NtRemoveIoCompletionEx",
        "NtWaitForWorkViaWorkerFactory",
        "NtUserMsgWaitForMultipleObjectsEx",
    ),
    "kernelbase.dll": (
        "SleepEx",
        "Sleep",
        "WaitForSingleObjectEx",
        "WaitForSingleObject",
        "WaitForMultipleObjectsEx",
        "WaitForMultipleObjects",
        "SignalObjectAndWait",
    ),
    "kernel32.dll": ("Sleep", "SleepEx", "WaitForSingleObject", "WaitForSingleObjectEx"),
}
#: A system-call stub is shorter than this; an instruction pointer this far into an Nt* export is
#: still inside its stub (stubs have no unwind data of their own).
STUB_SIZE = 0x20


@dataclass
class ThreadStack:
    thread: ThreadFact
    frames: List[Frame]


class StackWalker:
    """Walks every thread of one process; module tables and export lookups are shared."""

    def __init__(self, context) -> None:
        self.context = context
        facts = context.facts
        self.tables = ModuleTables(facts.read, facts.modules)
        self._waits: Optional[Dict[int, str]] = None

    @property
    def arch(self) -> str:
        return self.context.code_arch

    def _stack_high(self, thread: ThreadFact) -> Optional[int]:
        if thread.stack_high:
            return thread.stack_high
        facts = self.context.facts
        if thread.teb:  # NT_TIB.StackBase follows ExceptionList
            width = 8 if self.arch == "x64" else 4
            raw = facts.read(thread.teb + width, width)
            if len(raw) == width:
                value = int.from_bytes(raw, "little")
                if value > (thread.stack_pointer or 0):
                    return value
        region = self.context.address_map.region_of(thread.stack_pointer)
        return region.end if region is not None else None

    def is_code(self, address: int) -> bool:
        region = self.context.address_map.region_of(address)
        if region is not None:
            return region.is_executable and region.is_committed
        if self.context.facts.has_region_list:
            return False
        return self.tables.module_of(address) is not None

    def plausible(self, address: int) -> bool:
        """Whether a value taken for a return address can be one: it lies in committed memory (or,
        without a region list, in a module or just after a captured call instruction)."""
        region = self.context.address_map.region_of(address)
        if region is not None:
            return region.is_committed
        if self.context.facts.has_region_list:
            return False
        return self.tables.module_of(address) is not None or follows_call(
            self.context.facts.read, address, self.arch
        )

    def walk(self, thread: ThreadFact, limit: int = 64) -> Optional[ThreadStack]:
        """The thread's frames, innermost first; None without a captured stack pointer."""
        if not thread.instruction_pointer or not thread.stack_pointer:
            return None
        high = self._stack_high(thread)
        if high is None or high <= thread.stack_pointer:
            return ThreadStack(thread, [Frame(thread.instruction_pointer, None, "context")])
        facts = self.context.facts
        stack = StackMemory(facts.read, thread.stack_pointer, high)
        if self.arch == "x64":
            registers = {RBP: thread.frame_pointer} if thread.frame_pointer else {}
            frames, stopped, complete = unwind_x64(
                self.tables,
                stack,
                thread.instruction_pointer,
                thread.stack_pointer,
                registers,
                limit,
                self.plausible,
            )
        else:
            frames, stopped, complete = walk_x86(
                stack,
                thread.instruction_pointer,
                thread.stack_pointer,
                thread.frame_pointer,
                limit,
                self.plausible,
            )
            # The innermost function (a system-call stub) builds no frame: its return address is at ESP.
            innermost = stack.pointer(thread.stack_pointer, 4)
            if (
                innermost
                and innermost not in {frame.address for frame in frames[:2]}
                and self.is_code(innermost)
                and follows_call(facts.read, innermost, self.arch)
            ):
                frames.insert(1, Frame(innermost, thread.stack_pointer, "leaf"))
        if not complete and len(frames) < limit:
            width = 8 if self.arch == "x64" else 4
            start = max([stopped] + [frame.stack_address + width for frame in frames if frame.stack_address])
            frames += scan_stack(stack, start, self.arch, self.is_code, facts.read, limit - len(frames))
        return ThreadStack(thread, frames)

    def wait_functions(self) -> Dict[int, str]:
        """Start address -> ``module!name`` of every wait/sleep export present."""
        if self._waits is None:
            self._waits = {}
            for module in self.context.facts.modules:
                names = WAIT_FUNCTIONS.get(module.name.lower())
                if names:
                    for name, address in self.context.exports_of(module, names).items():
                        if address > 0:
                            self._waits[address] = f"{module.name}!{name}"
        return self._waits

    def wait_call(self, frame: Frame) -> Optional[str]:
        """The wait function ``frame`` is executing in (frame 0) or called (a return address)."""
        waits = self.wait_functions()
        inside = frame.address if frame.stack_address is None else frame.address - 1
        start = self.tables.function_start(inside)
        if start is not None and start in waits:
            return waits[start]
        for address, name in waits.items():
            if address <= inside < address + STUB_SIZE:
                return name
        return None

    def describe(self, frame: Frame) -> str:
        module = self.tables.module_of(frame.address)
        where = f"{module.name}+0x{frame.address - module.base:x}" if module else "unbacked"
        wait = self.wait_call(frame) if module else None
        if wait:
            where += f" ({wait})"
        return f"0x{frame.address:x} {where} [{frame.how}]"


def walked_threads(context) -> Tuple[StackWalker, List[ThreadStack]]:
    """Every thread's walk, done once per process and shared by the stack detectors."""
    cached = getattr(context, "_walked_threads", None)
    if cached is None:
        walker = StackWalker(context)
        walks = [walker.walk(thread) for thread in context.facts.threads]
        cached = (walker, [walked for walked in walks if walked is not None])
        context._walked_threads = cached
    return cached


def detect_stack_returns(context) -> Iterator[Finding]:
    """Return addresses on thread stacks that point into memory no image backs."""
    if not context.facts.threads:
        return
    walker, walks = walked_threads(context)
    for walked in walks:
        finding = _unbacked_return(context, walker, walked)
        if finding is not None:
            yield finding


#: Exports an APC dispatcher runs queued routines from; a wait called straight from one is a wait
#: queued as the APC routine itself (Foliage-style sleep), as no module's code stands in between.
APC_DISPATCHERS = {"ntdll.dll": ("KiUserApcDispatcher",)}
#: Where the CONTEXT records of a sleep chain send the thread (NtContinue targets).
CHAIN_TARGETS = {
    "ntdll.dll": ("NtProtectVirtualMemory", "NtWaitForSingleObject", "NtDelayExecution", "NtContinue"),
    "kernelbase.dll": ("VirtualProtect", "WaitForSingleObjectEx", "WaitForSingleObject", "SleepEx"),
    "kernel32.dll": ("VirtualProtect", "WaitForSingleObject", "Sleep"),
    "advapi32.dll": ("SystemFunction032",),
    "cryptsp.dll": ("SystemFunction032",),
}
#: x86 has no unwind data to find a function's start: an address this far past an export is in it.
X86_FUNCTION_WINDOW = 0x80
CONTEXT_LAYOUTS = {
    # (ContextFlags offset, architecture bit, SegCs offset, user SegCs, Rip/Eip offset, size): winnt.h
    "x64": (0x30, 0x100000, 0x38, 0x33, 0xF8, 1232),
    "x86": (0x00, 0x010000, 0xBC, 0x23, 0xB8, 716),
}
MAX_CHAIN_CONTEXTS = 16


def _export_addresses(context, table: Dict[str, tuple]) -> Dict[int, str]:
    found: Dict[int, str] = {}
    for module in context.facts.modules:
        names = table.get(module.name.lower())
        if names:
            for name, address in context.exports_of(module, names).items():
                if address > 0:
                    found[address] = f"{module.name}!{name}"
    return found


def _function_of(walker: StackWalker, frame: Frame, functions: Dict[int, str]) -> Optional[str]:
    inside = frame.address if frame.stack_address is None else frame.address - 1
    start = walker.tables.function_start(inside)
    if start is not None:
        return functions.get(start)
    for address, name in functions.items():
        if address <= inside < address + X86_FUNCTION_WINDOW:
            return name
    return None


def detect_sleep_chains(context) -> Iterator[Finding]:
    """Sleep-mask signs: a wait queued as an APC routine, and CONTEXT records on a stack that send
    the thread into memory-protection or wait functions (a ROP chain run through NtContinue)."""
    if not context.facts.threads:
        return
    walker, walks = walked_threads(context)
    dispatchers = _export_addresses(context, APC_DISPATCHERS)
    targets = _export_addresses(context, CHAIN_TARGETS)
    for walked in walks:
        if dispatchers:
            finding = _apc_wait(context, walker, walked, dispatchers)
            if finding is not None:
                yield finding
        if targets:
            finding = _context_chain(context, walker, walked, targets)
            if finding is not None:
                yield finding


def _frames_text(walker: StackWalker, walked: ThreadStack) -> str:
    return "frames: " + "; ".join(f"#{i} {walker.describe(f)}" for i, f in enumerate(walked.frames[:16]))


def _apc_wait(context, walker, walked: ThreadStack, dispatchers: Dict[int, str]) -> Optional[Finding]:
    frames = walked.frames
    index = 0
    while index < len(frames) and walker.wait_call(frames[index]):
        index += 1
    if index == 0 or index >= len(frames) or frames[index].how == "scan":
        return None
    dispatcher = _function_of(walker, frames[index], dispatchers)
    if dispatcher is None:
        return None
    frame = frames[index]
    waits = ", ".join(dict.fromkeys(walker.wait_call(item) for item in frames[:index]))
    region = context.address_map.region_of(frame.address)
    return Finding(
        "sleep_apc_wait",
        Severity.HIGH,
        Confidence.MEDIUM,
        frame.address,
        frame.address + 1,
        f"thread {walked.thread.thread_id} waits in {waits}, called straight from {dispatcher}: the APC "
        "routine is the wait itself, the shape of APC-driven sleep masking",
        **_region_columns(region),
        module=dispatcher.split("!", 1)[0],
        evidence=[_frames_text(walker, walked)],
    )


def _context_chain(context, walker, walked: ThreadStack, targets: Dict[int, str]) -> Optional[Finding]:
    layout = CONTEXT_LAYOUTS.get(walker.arch)
    thread = walked.thread
    high = walker._stack_high(thread)
    if layout is None or high is None or not thread.stack_pointer:
        return None
    flags_at, arch_bit, cs_at, user_cs, ip_at, size = layout
    stack = StackMemory(context.facts.read, thread.stack_pointer, high)
    found: List[Tuple[int, str]] = []
    address = (stack.low + 15) & ~15
    while address + size <= stack.high and len(found) < MAX_CHAIN_CONTEXTS:
        flags = stack.pointer(address + flags_at, 4)
        if (
            flags is not None
            and flags & 0xFFFF0000 == arch_bit
            and stack.pointer(address + cs_at, 2) == user_cs
        ):
            target = targets.get(stack.pointer(address + ip_at, 8 if walker.arch == "x64" else 4) or 0)
            if target:
                found.append((address, target))
                address += size
                continue
        address += 16
    if not found:
        return None
    first, last = found[0][0], found[-1][0] + size
    region = context.address_map.region_of(first)
    return Finding(
        "sleep_context_chain",
        Severity.HIGH,
        Confidence.HIGH if len(found) > 1 else Confidence.MEDIUM,
        first,
        last,
        f"thread {thread.thread_id}'s stack holds {len(found)} CONTEXT record(s) that send a thread to "
        f"{', '.join(dict.fromkeys(name for _, name in found))}: a chain run through NtContinue, as "
        "timer- and APC-based sleep masking (Ekko, Foliage) builds it",
        **_region_columns(region),
        module="stack",
        evidence=[f"CONTEXT at 0x{at:x} -> {name}" for at, name in found] + [_frames_text(walker, walked)],
    )


def _unbacked_return(context, walker: StackWalker, walked: ThreadStack) -> Optional[Finding]:
    facts = context.facts
    for index, frame in enumerate(walked.frames[1:], start=1):
        region = context.address_map.region_of(frame.address)
        module = context.address_map.module_of(frame.address)
        if region is not None and (region.is_image or not region.is_committed):
            continue
        if region is None and (facts.has_region_list or module is not None):
            continue
        waits = [name for name in map(walker.wait_call, walked.frames[:index]) if name]
        masked = region is not None and not region.is_executable
        unwound = frame.how != "scan"
        thread = walked.thread
        where = (
            f"{region.type_name} memory ({region.protect_name})"
            if region is not None
            else "memory outside every loaded module (no region list)"
        )
        finding = Finding(
            "stack_return_unbacked",
            Severity.HIGH if region is not None else Severity.LOW,
            Confidence.HIGH if unwound and region is not None else Confidence.MEDIUM,
            frame.address,
            frame.address + 1,
            f"thread {thread.thread_id} will return to 0x{frame.address:x} in {where}, which no image backs",
            **_region_columns(region),
            module="unbacked",
        )
        if region is not None:
            finding.evidence.append(
                f"region 0x{region.base:x}-0x{region.end:x}, allocated {region.allocation_protect_name}"
            )
        if masked:
            finding.severity = Severity.CRITICAL
            finding.evidence.append(
                "the memory is not executable now: code that sleeps encrypted or hidden (sleep masking)"
            )
        if waits:
            if region is not None:
                finding.severity = Severity.CRITICAL
            finding.evidence.append(f"the frame sits above a wait: {', '.join(dict.fromkeys(waits))}")
        if not unwound:
            finding.evidence.append("found by scanning the stack (no unwind data below it)")
        finding.evidence.append(
            "frames: " + "; ".join(f"#{i} {walker.describe(f)}" for i, f in enumerate(walked.frames[:16]))
        )
        context.preview(finding, frame.address)
        return finding
    return None


#: The two outermost frames of every thread Windows starts (x64): RtlUserThreadStart calls
#: BaseThreadInitThunk, which calls the thread's start routine.
THREAD_BASE = {"ntdll.dll": ("RtlUserThreadStart",), "kernel32.dll": ("BaseThreadInitThunk",)}


def detect_spoofed_starts(context) -> Iterator[Finding]:
    """Threads whose recorded start address is not the routine BaseThreadInitThunk called: the start
    address was spoofed. x64 compares functions (unwind data names them); x86, without unwind data,
    only flags a routine in another module than the recorded start."""
    facts = context.facts
    if not facts.threads:
        return
    base = _export_addresses(context, THREAD_BASE)
    if len(base) < 2:
        return
    x64 = context.code_arch == "x64"
    loader_starts = context.loader_entry_points()  # reported as thread_start_loadlibrary already
    walker, walks = walked_threads(context)
    for walked in walks:
        frames, start = walked.frames, walked.thread.start_address
        if (
            not start
            or start in loader_starts
            or len(frames) < 4
            or any(frame.how == "scan" for frame in frames[-3:])
        ):
            continue
        outer = [_function_of(walker, frame, base) for frame in frames[-2:]]
        if outer != ["kernel32.dll!BaseThreadInitThunk", "ntdll.dll!RtlUserThreadStart"]:
            continue
        caller = frames[-3].address - 1
        start_region = context.address_map.region_of(start)
        if start_region is None or not start_region.is_image:
            continue
        module, called = walker.tables.module_of(start), walker.tables.module_of(caller)
        if x64:
            routine = walker.tables.function_start(caller)
            if routine is None or routine == start:
                continue
        else:
            if module is None or called is None or module.base == called.base:
                continue
            routine = caller + 1
        where = f"{called.name}+0x{routine - called.base:x}" if called else f"0x{routine:x}"
        how = "" if x64 else "code in "
        yield Finding(
            "thread_start_spoofed",
            Severity.HIGH,
            Confidence.MEDIUM,
            start,
            start + 1,
            f"thread {walked.thread.thread_id} claims to start at 0x{start:x} "
            f"({module.name if module else 'unknown'}), but BaseThreadInitThunk called {how}{where}: the "
            "start address was spoofed",
            **_region_columns(start_region),
            module=module.name if module else "-",
            evidence=[_frames_text(walker, walked)],
        )
