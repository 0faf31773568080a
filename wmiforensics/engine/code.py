"""Disassembly and hex previews of code found in memory, and shellcode prologue recognition."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import capstone

_MODES = {
    "x64": (capstone.CS_ARCH_X86, capstone.CS_MODE_64),
    "x86": (capstone.CS_ARCH_X86, capstone.CS_MODE_32),
}
_DISASSEMBLERS: dict = {}


@dataclass(frozen=True)
class Instruction:
    address: int
    size: int
    mnemonic: str
    op_str: str
    raw: bytes

    @property
    def text(self) -> str:
        return f"{self.mnemonic} {self.op_str}".strip()


def disassemble(code: bytes, address: int, arch: str, limit: int = 12) -> List[Instruction]:
    """Up to ``limit`` instructions; stops at the first undecodable byte."""
    if arch not in _MODES or not code:
        return []
    engine = _DISASSEMBLERS.get(arch)
    if engine is None:
        engine = _DISASSEMBLERS[arch] = capstone.Cs(*_MODES[arch])
    result = []
    for item in engine.disasm(code, address):
        result.append(Instruction(item.address, item.size, item.mnemonic, item.op_str, bytes(item.bytes)))
        if len(result) >= limit:
            break
    return result


def disassembly_text(instructions: List[Instruction]) -> str:
    """One line for table renderers: ``0x1000: cld; 0x1001: and rsp, 0xfffffffffffffff0; ...``."""
    return "; ".join(f"0x{item.address:x}: {item.text}" for item in instructions)


def hexdump_text(data: bytes, limit: int = 32) -> str:
    """``fc 48 83 e4 ... |.H..|`` on one line."""
    chunk = data[:limit]
    printable = "".join(chr(byte) if 32 <= byte < 127 else "." for byte in chunk)
    return f"{chunk.hex(' ')} |{printable}|"


# Widely published shellcode openings (Metasploit/Cobalt Strike stagers, PEB walks, position
# recovery). Matched at the start of a region or of a code block.
SHELLCODE_PROLOGUES: List[Tuple[bytes, str, str]] = [
    (bytes.fromhex("fc4883e4f0e8"), "x64", "cld; and rsp,-16; call (Metasploit/Cobalt Strike x64 stager)"),
    (bytes.fromhex("fce8"), "x86", "cld; call (Metasploit/Cobalt Strike x86 stager)"),
    (bytes.fromhex("4831d265488b5260"), "x64", "xor rdx,rdx; mov rdx,gs:[rdx+0x60] (PEB walk)"),
    (bytes.fromhex("65488b042560000000"), "x64", "mov rax,gs:[0x60] (PEB walk)"),
    (bytes.fromhex("65488b0c2560000000"), "x64", "mov rcx,gs:[0x60] (PEB walk)"),
    (bytes.fromhex("64a130000000"), "x86", "mov eax,fs:[0x30] (PEB walk)"),
    (bytes.fromhex("648b1530000000"), "x86", "mov edx,fs:[0x30] (PEB walk)"),
    (bytes.fromhex("31c0648b5030"), "x86", "xor eax,eax; mov edx,fs:[eax+0x30] (PEB walk)"),
    (bytes.fromhex("e800000000"), "any", "call $+5 (get program counter)"),
    (bytes.fromhex("d9eed97424f4"), "x86", "fldz; fnstenv [esp-0xc] (GetPC, shikata_ga_nai)"),
]


def shellcode_prologue(data: bytes, window: int = 64) -> Optional[str]:
    """The description of a known shellcode opening within the first ``window`` bytes, if any."""
    head = data[:window]
    for pattern, _arch, description in SHELLCODE_PROLOGUES:
        position = head.find(pattern)
        if position == 0 or (position > 0 and len(pattern) >= 6):
            return description if position == 0 else f"{description} at +0x{position:x}"
    return None
