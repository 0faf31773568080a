"""Flipped argument-check branches in the AMSI and ETW functions: patches that keep the prologue.

Bypass tools that do not overwrite a function's first bytes flip one branch of its argument checks
so every call takes the failure exit (``AmsiOpenSession`` ``je`` -> ``jne``/``jmp``, ``test rdx, rdx``
overwritten with ``xor rax, rax``; the same on ``AmsiScanBuffer``'s null checks). Within the first
:data:`FLIP_WINDOW` bytes of each watched function, three shapes no compiler emits are flagged when
the branch lands on a block that returns at once:

- a compare or test immediately followed by an unconditional ``jmp`` (the flags are thrown away);
- ``xor reg, reg`` (or ``sub reg, reg``) immediately followed by ``je``/``jz`` (always taken);
- ``test reg, reg`` followed by ``jne`` into the E_INVALIDARG exit while the fall-through, where
  ``reg`` is now known to be NULL, dereferences it.

On full memory images the prototype page's original bytes, when the page was modified, confirm the
flip (``image_page_changes``).
"""

from __future__ import annotations

from typing import Iterator, List, Optional, Tuple

from . import code, knowledge
from .detectors import Context, _immediate, _region_columns, classify_patch, watched_modules
from .facts import ModuleFact, PageChange
from .findings import Confidence, Finding, Severity
from .integrity import AMSI_FUNCTIONS, E_INVALIDARG

#: How far into a function the argument checks are searched (bytes) and how many instructions.
FLIP_WINDOW = 0x80
MAX_INSTRUCTIONS = 48
#: How many instructions the branch target may run before it must return.
EXIT_INSTRUCTIONS = 12
#: How many fall-through instructions are searched for a use of the register found NULL.
NULL_USE_INSTRUCTIONS = 16
COMPARES = ("test", "cmp")
CLEARS = ("xor", "sub")
ALWAYS_TAKEN = ("je", "jz")
INVERTED = ("jne", "jnz")
_STOP = ("int3", "hlt", "ud2")

Flip = Tuple[code.Instruction, code.Instruction, str, int]


def detect_flipped_branches(context: Context) -> Iterator[Finding]:
    """AMSI/ETW functions whose argument-check branch was flipped to force the failure exit."""
    families = (
        (AMSI_FUNCTIONS, "amsi_branch_patch", "AMSI scans in this process fail before scanning"),
        (knowledge.ETW_FUNCTIONS, "etw_branch_patch", "ETW events from this process are dropped"),
    )
    for table, kind, consequence in families:
        for module, functions, exports, arch in watched_modules(context, table):
            if arch is None:
                continue  # detect_amsi_patches / detect_etw_patches note it
            for name in functions:
                address = exports.get(name)
                if address is None or address <= 0:
                    continue
                finding = _check_function(context, module, name, address, arch, kind, consequence)
                if finding is not None:
                    yield finding


def _check_function(
    context: Context, module: ModuleFact, name: str, address: int, arch: str, kind: str, consequence: str
) -> Optional[Finding]:
    data = context.facts.read(address, FLIP_WINDOW)
    if not data:
        return None
    instructions = code.disassemble(data, address, arch, MAX_INSTRUCTIONS)
    if classify_patch(instructions[:8], module) is not None:
        return None  # a prologue patch: detect_amsi_patches / detect_etw_patches report it
    found = find_flip(instructions, module, context.facts.read, arch)
    if found is None:
        return None
    culprit, branch, why, exit_address = found
    exit_bytes = context.facts.read(exit_address, 64)
    exit_code = _through_return(code.disassemble(exit_bytes, exit_address, arch, EXIT_INSTRUCTIONS))
    region = context.address_map.region_of(culprit.address)
    finding = Finding(
        kind,
        Severity.CRITICAL,
        Confidence.HIGH,
        culprit.address,
        culprit.address + culprit.size,
        f"{module.name}!{name}+0x{culprit.address - address:x}: {why}: {consequence}",
        **_region_columns(region),
        module=module.name,
        evidence=[
            f"{name} resolved from the export table at 0x{address:x}",
            f"flagged instruction bytes: {culprit.raw.hex(' ')} ({culprit.text})",
            "failure exit reached: " + code.disassembly_text(exit_code),
        ],
    )
    if culprit is not branch:
        finding.evidence.insert(2, f"branch at 0x{branch.address:x}: {branch.text}")
    if exit_code and exit_code[0].mnemonic == "mov" and exit_code[0].op_str.endswith(hex(E_INVALIDARG)):
        finding.evidence.append("the exit returns E_INVALIDARG (0x80070057): callers treat it as not scanned")
    likely = _likely_compiled(culprit, arch)
    if likely is not None:
        finding.evidence.append(
            f"as compiled this was most likely {likely.raw.hex(' ')} ({likely.text}): inferred from the "
            "shape, not read"
        )
    original = _original_instruction(context.facts.image_page_changes, culprit, arch)
    if original is not None:
        finding.evidence.append(
            f"the image file's page holds {original.raw.hex(' ')} ({original.text}) here: the process "
            "maps a modified copy-on-write copy"
        )
    elif context.facts.image_page_changes is not None:
        finding.confidence = Confidence.MEDIUM
        finding.evidence.append("the page is not reported as differing from the image file")
    start = instructions[0].address
    window = [item for item in instructions if item.address < culprit.address + 0x20]
    finding.disassembly = code.disassembly_text(
        [item for item in window if item.address >= max(start, culprit.address - 0x10)]
    )
    finding.hexdump = code.hexdump_text(data[max(0, culprit.address - start - 8) :])
    return finding


def find_flip(instructions: List[code.Instruction], module: ModuleFact, read, arch: str) -> Optional[Flip]:
    """(flagged instruction, branch, why, exit address) for the first flipped argument check."""
    if not instructions:
        return None
    start = instructions[0].address
    for index in range(1, len(instructions)):
        previous, item = instructions[index - 1], instructions[index]
        if item.address - start >= FLIP_WINDOW or item.mnemonic in _STOP:
            return None
        target = _immediate(item.op_str) if item.mnemonic.startswith("j") else None
        if target is None or not module.base <= target < module.end:
            continue
        first, second = _operands(previous)
        if previous.mnemonic in COMPARES and item.mnemonic == "jmp":
            shape = f"{previous.text} is followed by an unconditional {item.text}, which discards its result"
            culprit = item
        elif previous.mnemonic in CLEARS and first == second and item.mnemonic in ALWAYS_TAKEN:
            shape = f"{previous.text} sets the zero flag, so the following {item.text} is always taken"
            culprit = previous
        elif previous.mnemonic == "test" and first == second and item.mnemonic in INVERTED:
            use = _null_use(instructions[index + 1 :], first)
            if use is None or not _returns_e_invalidarg(read, target, arch):
                continue
            shape = (
                f"{previous.text}; {item.text} leaves for the E_INVALIDARG exit when {first} is set, and the "
                f"path where {first} is NULL dereferences it ({use.text})"
            )
            culprit = item
        else:
            continue
        if _exit_block(read, target, arch):
            return culprit, item, f"{shape}; the target returns at once (a flipped argument check)", target
    return None


def _operands(item: code.Instruction) -> Tuple[str, str]:
    first, _, second = item.op_str.partition(", ")
    return first, second


#: Instructions that read the flags: compilers do jump from a compare to a block that uses them
#: (``cmp; jmp L; ... L: setne al`` / ``cmovb``), so such a ``jmp`` did not discard the result.
FLAG_READERS = ("set", "cmov", "adc", "sbb", "rcl", "rcr", "lahf", "pushf", "j")


def _exit_block(read, address: int, arch: str) -> bool:
    """True when the code at ``address`` sets a constant return value and returns within a few
    straight-line instructions without reading the flags (an exit, not a continuation: clang can
    leave a dead compare before a jump to code that loads its result from memory)."""
    constant = False
    for item in code.disassemble(read(address, 64), address, arch, EXIT_INSTRUCTIONS):
        if item.mnemonic.startswith(FLAG_READERS) and item.mnemonic != "jmp" or item.mnemonic in _STOP:
            return False
        if item.mnemonic in ("ret", "retn"):
            return constant
        if item.mnemonic.startswith(("j", "call", "loop")):
            return False
        constant = constant or _sets_constant_result(item)
    return False


def _sets_constant_result(item: code.Instruction) -> bool:
    """``mov eax, imm`` / ``xor eax, eax`` / ``or eax, -1``: the function's return value is fixed."""
    first, second = _operands(item)
    if first not in ("eax", "rax"):
        return False
    if item.mnemonic in ("xor", "sub") and first == second:
        return True
    return item.mnemonic in ("mov", "or") and _immediate(second) is not None


def _through_return(instructions: List[code.Instruction]) -> List[code.Instruction]:
    """The exit block up to and including its return."""
    for position, item in enumerate(instructions):
        if item.mnemonic in ("ret", "retn"):
            return instructions[: position + 1]
    return instructions


def _returns_e_invalidarg(read, address: int, arch: str) -> bool:
    opening = code.disassemble(read(address, 16), address, arch, 1)
    return bool(opening) and opening[0].mnemonic == "mov" and opening[0].op_str.endswith(hex(E_INVALIDARG))


def _null_use(following: List[code.Instruction], register: str) -> Optional[code.Instruction]:
    """The first instruction on the fall-through path (past conditional branches, up to the first
    jump, call or return) that reads or writes memory through ``register``."""
    for item in following[:NULL_USE_INSTRUCTIONS]:
        if item.mnemonic in ("jmp", "ret", "retn") or item.mnemonic.startswith(("call", "loop")):
            return None
        if item.mnemonic.startswith("j"):
            continue  # the fall-through of a further check goes on
        inside = item.op_str[item.op_str.find("[") + 1 : item.op_str.find("]")] if "[" in item.op_str else ""
        if inside.split(" ")[0] == register:
            return item
        written = _operands(item)[0]
        if _same_register(written, register) and not item.mnemonic.startswith(("cmp", "test", "push")):
            return None  # the register is overwritten before any use
    return None


def _same_register(first: str, second: str) -> bool:
    """rdx/edx/dx, r8/r8d: the same architectural register (enough to see an overwrite)."""
    if first.startswith("r") and first[1:2].isdigit() or second.startswith("r") and second[1:2].isdigit():
        return first.rstrip("dwb") == second.rstrip("dwb")
    return len(first) >= 2 and first[-2:] == second[-2:]


def _likely_compiled(item: code.Instruction, arch: str) -> Optional[code.Instruction]:
    """The ``je rel8`` a flipped short ``jne``/``jmp`` replaced (same displacement, one byte changed)."""
    if item.size != 2 or item.raw[0] not in (0x75, 0xEB):
        return None
    decoded = code.disassemble(b"\x74" + item.raw[1:], item.address, arch, 1)
    return decoded[0] if decoded else None


def _original_instruction(
    changes: Optional[List[PageChange]], item: code.Instruction, arch: str
) -> Optional[code.Instruction]:
    """The instruction the image file's page holds at ``item`` when its bytes there differ."""
    for change in changes or []:
        offset = item.address - change.address
        if not 0 <= offset < len(change.current):
            continue
        span = slice(offset, offset + item.size)
        if change.current[span] != change.original[span]:
            decoded = code.disassemble(change.original[offset : offset + 16], item.address, arch, 1)
            return decoded[0] if decoded else None
    return None
