"""Thread stack walking from captured memory: x64 unwind data, x86 frame chains, bounded scans.

x64 frames are unwound with the modules' own exception data: the ``.pdata`` table of RUNTIME_FUNCTION
entries and the UNWIND_INFO records they point to, read from the image as captured in the dump
(https://learn.microsoft.com/en-us/cpp/build/exception-handling-x64). A return address into memory
without unwind data (a leaf function, or code no module backs) ends the unwinding; the rest of the
stack is then scanned for values that point just after a call instruction in executable memory.
x86 stacks follow the saved-EBP chain, then the same scan.

Everything read from the input is bounded: frames, chained unwind records, bytes of stack, table
entries. No Volatility import: the walker sees only a memory reader and the process's modules.
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from . import code, pe
from .facts import ModuleFact

MAX_FRAMES = 64
#: How much of a stack above the stack pointer one walk reads (real stacks are rarely deeper in use).
MAX_STACK_BYTES = 0x40000
MAX_SCAN_FRAMES = 32
MAX_CHAINED_UNWIND = 32
MAX_RUNTIME_FUNCTIONS = 0x40000

# UNWIND_CODE operations (winnt.h / the x64 exception-handling page).
UWOP_PUSH_NONVOL = 0
UWOP_ALLOC_LARGE = 1
UWOP_ALLOC_SMALL = 2
UWOP_SET_FPREG = 3
UWOP_SAVE_NONVOL = 4
UWOP_SAVE_NONVOL_FAR = 5
UWOP_EPILOG = 6
UWOP_SPARE_CODE = 7
UWOP_SAVE_XMM128 = 8
UWOP_SAVE_XMM128_FAR = 9
UWOP_PUSH_MACHFRAME = 10
UNW_FLAG_CHAININFO = 0x4
#: Register numbers in unwind codes: RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8..R15.
RSP, RBP = 4, 5

RUNTIME_FUNCTION = struct.Struct("<III")  # BeginAddress, EndAddress, UnwindInfoAddress (RVAs)

Reader = Callable[[int, int], bytes]


@dataclass(frozen=True)
class Frame:
    """One frame: frame 0 is the thread's instruction pointer, the others are return addresses."""

    address: int
    #: Where the return address was read on the stack (None for frame 0).
    stack_address: Optional[int]
    #: "context", "unwind" (module unwind data), "leaf" (no unwind data: return address at RSP),
    #: "frame chain" (x86 saved EBP) or "scan" (a value after a call instruction).
    how: str


class StackMemory:
    """The stack window of one thread, read once, with reads outside it passed to the process."""

    def __init__(self, read: Reader, low: int, high: int) -> None:
        self.low = low
        self.data = read(low, max(0, min(high, low + MAX_STACK_BYTES) - low)) if high > low else b""
        self.high = low + len(self.data)
        self._read = read

    def pointer(self, address: int, width: int) -> Optional[int]:
        if self.low <= address and address + width <= self.high:
            offset = address - self.low
            return int.from_bytes(self.data[offset : offset + width], "little")
        return None


class ModuleTables:
    """Per-process cache of module headers and x64 RUNTIME_FUNCTION tables, looked up by address."""

    def __init__(self, read: Reader, modules: Sequence[ModuleFact]) -> None:
        self.read = read
        self._modules = sorted(modules, key=lambda module: module.base)
        self._bases = [module.base for module in self._modules]
        self._headers: Dict[int, Optional[pe.PeHeader]] = {}
        self._tables: Dict[int, Tuple[List[int], bytes]] = {}

    def module_of(self, address: int) -> Optional[ModuleFact]:
        index = bisect.bisect_right(self._bases, address) - 1
        if index >= 0 and address < self._modules[index].end:
            return self._modules[index]
        return None

    def header(self, module: ModuleFact) -> Optional[pe.PeHeader]:
        if module.base not in self._headers:
            self._headers[module.base] = pe.parse_headers(self.read(module.base, 0x1000), module.base)
        return self._headers[module.base]

    def _table(self, module: ModuleFact) -> Tuple[List[int], bytes]:
        if module.base not in self._tables:
            header = self.header(module)
            begins: List[int] = []
            raw = b""
            if header is not None and header.machine == 0x8664:
                rva, size = header.exception_directory
                if rva and size and rva < header.size_of_image:
                    count = min(size // RUNTIME_FUNCTION.size, MAX_RUNTIME_FUNCTIONS)
                    raw = self.read(module.base + rva, count * RUNTIME_FUNCTION.size)
                    raw = raw[: len(raw) - len(raw) % RUNTIME_FUNCTION.size]
                    begins = [entry[0] for entry in RUNTIME_FUNCTION.iter_unpack(raw)]
                    if any(later < earlier for earlier, later in zip(begins, begins[1:])):
                        order = sorted(range(len(begins)), key=begins.__getitem__)
                        raw = b"".join(raw[i * 12 : i * 12 + 12] for i in order)
                        begins = [begins[i] for i in order]
            self._tables[module.base] = (begins, raw)
        return self._tables[module.base]

    def has_unwind_data(self, module: ModuleFact) -> bool:
        return bool(self._table(module)[0])

    def runtime_function(self, module: ModuleFact, address: int) -> Optional[Tuple[int, int, int]]:
        """(BeginAddress, EndAddress, UnwindInfoAddress) of the function holding ``address``."""
        begins, raw = self._table(module)
        rva = address - module.base
        index = bisect.bisect_right(begins, rva) - 1
        if index < 0:
            return None
        entry = RUNTIME_FUNCTION.unpack_from(raw, index * RUNTIME_FUNCTION.size)
        return entry if entry[0] <= rva < entry[1] else None

    def function_start(self, address: int) -> Optional[int]:
        """Start of the x64 function that holds ``address`` according to its module's .pdata."""
        module = self.module_of(address)
        if module is None:
            return None
        entry = self.runtime_function(module, address)
        return module.base + entry[0] if entry else None


@dataclass
class _State:
    rip: int
    rsp: int
    registers: Dict[int, int]


def _unwind_one(tables: ModuleTables, stack: StackMemory, state: _State) -> Optional[Tuple[str, int]]:
    """Undo the frame of the function at ``state.rip``; returns (how, where the return address was)."""
    module = tables.module_of(state.rip)
    if module is None:
        return None
    entry = tables.runtime_function(module, state.rip)
    if entry is None:
        if not tables.has_unwind_data(module):
            return None
        how = "leaf"
    else:
        how = "unwind"
        if tables.read(state.rip, 1) == b"\xc3":  # at the epilogue's ret: nothing left to undo
            entry = None
    offset_in_function = state.rip - module.base - entry[0] if entry else 0
    chained = 0
    while entry is not None:
        header = tables.read(module.base + entry[2], 4)
        if len(header) < 4:
            return None
        version_flags, prologue_size, count, frame = header
        flags = version_flags >> 3
        frame_register, frame_offset = frame & 0x0F, frame >> 4
        codes = tables.read(module.base + entry[2] + 4, 2 * (count + (count & 1)) + RUNTIME_FUNCTION.size)
        if len(codes) < 2 * count:
            return None
        primary = chained == 0
        in_prologue = primary and offset_in_function < prologue_size
        if frame_register and not in_prologue:
            base = state.registers.get(frame_register)
            if base is None:
                return None
            state.rsp = base - 16 * frame_offset
        establisher = state.rsp
        index = 0
        while index < count:
            code_offset, operation = codes[2 * index], codes[2 * index + 1]
            op, info = operation & 0x0F, operation >> 4
            slots = _slots(op, info, version_flags & 7)
            if primary and code_offset > offset_in_function:
                index += slots
                continue
            if op == UWOP_PUSH_NONVOL:
                value = stack.pointer(state.rsp, 8)
                if value is None:
                    return None
                state.registers[info] = value
                state.rsp += 8
            elif op == UWOP_ALLOC_LARGE:
                if index + slots > count:
                    return None
                if info == 0:
                    size = struct.unpack_from("<H", codes, 2 * index + 2)[0] * 8
                else:
                    size = struct.unpack_from("<I", codes, 2 * index + 2)[0]
                state.rsp += size
            elif op == UWOP_ALLOC_SMALL:
                state.rsp += info * 8 + 8
            elif op in (UWOP_SAVE_NONVOL, UWOP_SAVE_NONVOL_FAR):
                if index + slots > count:
                    return None
                if op == UWOP_SAVE_NONVOL:
                    where = establisher + struct.unpack_from("<H", codes, 2 * index + 2)[0] * 8
                else:
                    where = establisher + struct.unpack_from("<I", codes, 2 * index + 2)[0]
                value = stack.pointer(where, 8)
                if value is not None:
                    state.registers[info] = value
            elif op == UWOP_PUSH_MACHFRAME:
                at = state.rsp + (8 if info else 0)
                rip, rsp = stack.pointer(at, 8), stack.pointer(at + 24, 8)
                if rip is None or rsp is None:
                    return None
                state.rip, state.rsp = rip, rsp
                return "machine frame", at
            index += slots
        if not flags & UNW_FLAG_CHAININFO:
            break
        chained += 1
        if chained > MAX_CHAINED_UNWIND:
            return None
        at = 2 * (count + (count & 1))
        if len(codes) < at + RUNTIME_FUNCTION.size:
            return None
        entry = RUNTIME_FUNCTION.unpack_from(codes, at)
    value = stack.pointer(state.rsp, 8)
    if value is None:
        return None
    where = state.rsp
    state.rip, state.rsp = value, state.rsp + 8
    return how, where


def _slots(op: int, info: int, version: int) -> int:
    """How many 16-bit UNWIND_CODE nodes an operation takes."""
    if op == UWOP_ALLOC_LARGE:
        return 2 if info == 0 else 3
    if op in (UWOP_SAVE_NONVOL, UWOP_SAVE_XMM128):
        return 2
    if op in (UWOP_SAVE_NONVOL_FAR, UWOP_SAVE_XMM128_FAR):
        return 3
    if op == UWOP_EPILOG:
        return 1 if version >= 2 else 2
    if op == UWOP_SPARE_CODE:
        return 3
    return 1


def unwind_x64(
    tables: ModuleTables,
    stack: StackMemory,
    instruction_pointer: int,
    stack_pointer: int,
    registers: Optional[Dict[int, int]] = None,
    limit: int = MAX_FRAMES,
    plausible: Callable[[int], bool] = lambda address: True,
) -> Tuple[List[Frame], int, bool]:
    """Frames from the modules' unwind data, the stack pointer after the last good frame, and whether
    the walk reached the outermost frame (a zero return address)."""
    state = _State(instruction_pointer, stack_pointer, dict(registers or {}))
    frames = [Frame(instruction_pointer, None, "context")]
    good = stack_pointer
    while len(frames) < limit:
        before = state.rsp
        step = _unwind_one(tables, stack, state)
        if step is not None and state.rip == 0:
            return frames, good, True
        if step is None or state.rsp <= before or not stack.low <= state.rsp <= stack.high:
            break
        if not plausible(state.rip):
            break
        frames.append(Frame(state.rip, step[1], step[0]))
        good = state.rsp
    return frames, good, False


def walk_x86(
    stack: StackMemory,
    instruction_pointer: int,
    stack_pointer: int,
    frame_pointer: Optional[int],
    limit: int = MAX_FRAMES,
    plausible: Callable[[int], bool] = lambda address: True,
) -> Tuple[List[Frame], int, bool]:
    """Frames from the saved-EBP chain: [ebp] is the caller's EBP, [ebp+4] the return address."""
    frames = [Frame(instruction_pointer, None, "context")]
    cursor, lowest = frame_pointer, stack_pointer
    while cursor and len(frames) < limit and lowest <= cursor < stack.high:
        saved, returned = stack.pointer(cursor, 4), stack.pointer(cursor + 4, 4)
        if saved is None or not returned or not plausible(returned):
            break
        frames.append(Frame(returned, cursor + 4, "frame chain"))
        lowest = cursor + 8
        if saved == 0:
            return frames, lowest, True
        if saved <= cursor:
            break
        cursor = saved
    return frames, lowest, False


#: Byte lengths of call instructions that can end just before a return address.
CALL_LENGTHS = (2, 3, 4, 5, 6, 7)


def follows_call(read: Reader, address: int, arch: str) -> bool:
    """Whether the bytes just before ``address`` decode as a call instruction ending at it."""
    before = read(address - 7, 7) if address >= 7 else b""
    if len(before) < 7:
        return False
    for length in CALL_LENGTHS:
        chunk = before[7 - length :]
        if chunk[0] not in (0xE8, 0xFF, 0x41, 0x48, 0x49, 0x42, 0x43) and not (
            length >= 2 and chunk[-2] == 0xFF
        ):
            continue
        decoded = code.disassemble(chunk, address - length, arch, 2)
        if len(decoded) == 1 and decoded[0].mnemonic == "call" and decoded[0].size == length:
            return True
    return False


def scan_stack(
    stack: StackMemory,
    start: int,
    arch: str,
    is_code: Callable[[int], bool],
    read: Reader,
    limit: int = MAX_SCAN_FRAMES,
) -> List[Frame]:
    """Values from ``start`` up the stack that point just after a call instruction in code."""
    width = 8 if arch == "x64" else 4
    found: List[Frame] = []
    address = start + (-start % width)
    while address + width <= stack.high and len(found) < limit:
        value = stack.pointer(address, width)
        if value and value > 0x10000 and is_code(value) and follows_call(read, value, arch):
            found.append(Frame(value, address, "scan"))
        address += width
    return found
