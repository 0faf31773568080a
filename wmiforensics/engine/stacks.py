"""Thread stacks as evidence: where a sleeping thread will return to, and what that memory is.

A sleeping implant waits inside ntdll like every other thread; what gives it away is a return address
on its stack that points into private or mapped memory, often made non-executable while it sleeps
(sleep masking). Each thread's stack is unwound with :mod:`.unwind` and every return address is
checked against the process's regions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional

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


def detect_stack_returns(context) -> Iterator[Finding]:
    """Return addresses on thread stacks that point into memory no image backs."""
    facts = context.facts
    if not facts.threads:
        return
    walker = StackWalker(context)
    for thread in facts.threads:
        walked = walker.walk(thread)
        if walked is None:
            continue
        finding = _unbacked_return(context, walker, walked)
        if finding is not None:
            yield finding


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
            protection=region.protect_name if region else "-",
            initial_protection=region.allocation_protect_name if region else "-",
            region_type=region.type_name if region else "-",
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
