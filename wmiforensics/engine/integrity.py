"""Code integrity of loaded system modules, judged from the module bytes in the dump.

- AMSI functions cut short (``mov eax, E_INVALIDARG; ret``, ``xor eax, eax; ret``, a jump out), in
  the same family and with the same decision as the ETW patch check;
- inline hooks: exported functions of system and WMI modules whose first instruction jumps or calls
  out of the module into memory no image backs (``jmp rel32``, ``jmp [rip]``, ``mov rax, imm;
  jmp rax``, ``push imm; ret``), reported with the target and what lies there;
- ntdll system-call stubs: a stub that lost the stub shape, or whose system-call number breaks the
  ascending order of the Nt* stubs by address (Windows lays the stubs out in number order).
"""

from __future__ import annotations

import bisect
import struct
from typing import Dict, Iterator, List, Optional, Tuple

from . import code, knowledge, pe
from .detectors import HEADER_WINDOW, Context, _branch_target, _region_columns, patched_functions
from .facts import ModuleFact
from .findings import Confidence, Finding, Severity

AMSI_FUNCTIONS = {"amsi.dll": ("AmsiScanBuffer", "AmsiScanString", "AmsiOpenSession", "AmsiInitialize")}
E_INVALIDARG = 0x80070057

#: Modules whose exports are checked for inline hooks (lower-case names).
HOOK_CHECKED_MODULES = (
    "ntdll.dll",
    "kernel32.dll",
    "kernelbase.dll",
    "advapi32.dll",
    "amsi.dll",
    "combase.dll",
    "rpcrt4.dll",
    "fastprox.dll",
    "wbemcomn.dll",
    "wbemprox.dll",
    "wbemsvc.dll",
    "wmiprvsd.dll",
)
OPENING_BYTES = 16
MAX_EXPORT_NAMES = 8192


def detect_amsi_patches(context: Context) -> Iterator[Finding]:
    """AMSI scan functions that return before scanning: every scan in the process reports clean."""
    for finding in patched_functions(
        context, AMSI_FUNCTIONS, "amsi_patch", "AMSI scans in this process are bypassed", "AMSI"
    ):
        opening = code.disassemble(context.facts.read(finding.start, 16), finding.start, context.code_arch, 2)
        if opening and opening[0].mnemonic == "mov" and opening[0].op_str.endswith(hex(E_INVALIDARG)):
            finding.evidence.append(
                "returns E_INVALIDARG (0x80070057): callers treat the buffer as not scanned"
            )
        yield finding


class ExportIndex:
    """Every named export of the checked modules, read once per process."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self._cache: Dict[int, Tuple[Optional[pe.PeHeader], Dict[str, int]]] = {}

    def of(self, module: ModuleFact) -> Tuple[Optional[pe.PeHeader], Dict[str, int]]:
        if module.base not in self._cache:
            read = self.context.facts.read
            header = pe.parse_headers(read(module.base, HEADER_WINDOW), module.base)
            exports = pe.read_exports(header, read) if header else {}
            if len(exports) > MAX_EXPORT_NAMES:
                exports = dict(sorted(exports.items())[:MAX_EXPORT_NAMES])
            self._cache[module.base] = (header, exports)
        return self._cache[module.base]


def export_index(context: Context) -> ExportIndex:
    """The process's ExportIndex, built once and shared by the hook, stub and hook-engine checks."""
    index = getattr(context, "_export_index", None)
    if index is None:
        index = context._export_index = ExportIndex(context)
    return index


def _executable_rva(header: pe.PeHeader, rva: int) -> bool:
    return any(
        section.is_executable and 0 <= rva - section.virtual_address < section.virtual_size
        for section in header.sections
    )


def hook_target(instructions: List[code.Instruction], read, arch: str) -> Optional[Tuple[int, int, str]]:
    """(target, end of the hook bytes, shape) when a function opens with a jump or call elsewhere."""
    if not instructions:
        return None
    first = instructions[0]
    second = instructions[1] if len(instructions) > 1 else None
    end = first.address + first.size
    if first.mnemonic in ("jmp", "call"):
        target = _branch_target(first, None)
        if target is not None:
            return target, end, f"{first.mnemonic} rel32"
        if "[rip" in first.op_str or first.op_str.startswith(("qword ptr [0x", "dword ptr [0x")):
            slot = _memory_operand(first)
            if slot is None:
                return None
            width = 8 if arch == "x64" else 4
            raw = read(slot, width)
            if len(raw) == width:
                return int.from_bytes(raw, "little"), max(end, slot + width), f"{first.mnemonic} [pointer]"
        return None
    if second is not None and first.mnemonic in ("mov", "movabs") and second.mnemonic in ("jmp", "call"):
        target = _branch_target(second, first)
        if target is not None:
            shape = f"mov {first.op_str.split(',')[0]}; {second.mnemonic}"
            return target, second.address + second.size, shape
    if second is not None and first.mnemonic == "push" and second.mnemonic == "ret":
        try:
            return int(first.op_str, 0), second.address + second.size, "push/ret"
        except ValueError:
            return None
    return None


def _memory_operand(item: code.Instruction) -> Optional[int]:
    """The address a ``jmp qword ptr [rip + X]`` / ``[0xADDR]`` reads its target from."""
    text = item.op_str
    inside = text[text.find("[") + 1 : text.find("]")]
    try:
        if inside == "rip":
            return item.address + item.size
        if inside.startswith("rip + "):
            return item.address + item.size + int(inside[6:], 0)
        return int(inside, 0)
    except ValueError:
        return None


Hook = Tuple[ModuleFact, str, int, int, int, str]


def inline_hooks(context: Context, index: ExportIndex) -> Iterator[Hook]:
    """(module, export, address, target, hook end, shape) for every export that jumps into memory no
    image backs, or into a module outside the system folders."""
    facts = context.facts
    skip = {
        (module, name)
        for table in (knowledge.ETW_FUNCTIONS, AMSI_FUNCTIONS)
        for module, names in table.items()
        for name in names
    }
    for module in facts.modules:
        lower = module.name.lower()
        if lower not in HOOK_CHECKED_MODULES:
            continue
        header, exports = index.of(module)
        if header is None:
            continue
        arch = header.arch if header.arch in ("x86", "x64") else context.code_arch
        for name, address in sorted(exports.items(), key=lambda item: item[1]):
            if address <= 0 or (lower, name) in skip or not _executable_rva(header, address - module.base):
                continue
            data = facts.read(address, OPENING_BYTES)
            found = hook_target(code.disassemble(data, address, arch, 2), facts.read, arch) if data else None
            if found is None:
                continue
            target, end, shape = found
            if module.base <= target < module.end:
                continue
            owner = context.address_map.module_of(target)
            if owner is not None and knowledge.in_system_folder(owner.path):
                continue  # forwarding stubs: kernel32 -> kernelbase, advapi32 -> sechost
            yield module, name, address, target, end, shape


def describe_target(context: Context, target: int) -> str:
    region = context.address_map.region_of(target)
    owner = context.address_map.module_of(target)
    if owner is not None:
        return f"{owner.name}+0x{target - owner.base:x} ({owner.path})"
    if region is None:
        return "memory in no region of the process"
    return f"{region.type_name} {region.protect_name} memory no image backs (region 0x{region.base:x})"


def detect_inline_hooks(context: Context) -> Iterator[Finding]:
    """Exports of system and WMI modules whose first instruction leaves the module."""
    for module, name, address, target, end, shape in inline_hooks(context, export_index(context)):
        region = context.address_map.region_of(address)
        owner = context.address_map.module_of(target)
        finding = Finding(
            "inline_hook",
            Severity.HIGH if owner is None else Severity.MEDIUM,
            Confidence.HIGH,
            address,
            end,
            f"{module.name}!{name} opens with a {shape} to 0x{target:x}, outside {module.name}: "
            f"{describe_target(context, target)}",
            **_region_columns(region),
            module=module.name,
            evidence=[f"{name} resolved from the export table at 0x{address:x}", f"hook target 0x{target:x}"],
        )
        context.preview(finding, address)
        target_code = context.facts.read(target, 32)
        if target_code:
            there = code.disassemble(target_code, target, context.code_arch, 4)
            finding.evidence.append("at the target: " + code.disassembly_text(there))
        yield finding


# --- system-call stubs ------------------------------------------------------------------------------

X64_STUB = bytes.fromhex("4C8BD1B8")  # mov r10, rcx; mov eax, imm32


def syscall_number(data: bytes, arch: str) -> Optional[Tuple[int, int]]:
    """(number, offset just after it) when ``data`` opens like a system-call stub."""
    if arch == "x64" and data[:4] == X64_STUB and len(data) >= 8:
        return struct.unpack_from("<I", data, 4)[0], 8
    if arch == "x86" and data[:1] == b"\xb8" and len(data) >= 5:
        return struct.unpack_from("<I", data, 1)[0], 5
    return None


def _out_of_order(numbers: List[int]) -> List[int]:
    """Indexes outside the longest strictly increasing run (patience sorting, O(n log n))."""
    tails: List[int] = []
    tail_index: List[int] = []
    previous = [-1] * len(numbers)
    for position, number in enumerate(numbers):
        slot = bisect.bisect_left(tails, number)
        if slot == len(tails):
            tails.append(number)
            tail_index.append(position)
        else:
            tails[slot] = number
            tail_index[slot] = position
        previous[position] = tail_index[slot - 1] if slot else -1
    keep, cursor = set(), tail_index[-1] if tail_index else -1
    while cursor != -1:
        keep.add(cursor)
        cursor = previous[cursor]
    return [position for position in range(len(numbers)) if position not in keep]


def detect_syscall_stubs(context: Context) -> Iterator[Finding]:
    """ntdll Nt* stubs that lost their shape or carry a number out of the address order."""
    facts = context.facts
    ntdll = next((m for m in facts.modules if m.name.lower() == "ntdll.dll"), None)
    if ntdll is None:
        return
    header, exports = export_index(context).of(ntdll)
    if header is None:
        return
    arch = header.arch if header.arch in ("x86", "x64") else context.code_arch
    stubs: List[Tuple[int, str, int, int]] = []
    for name, address in sorted(exports.items(), key=lambda item: item[1]):
        if not name.startswith("Nt") or name.startswith("Ntdll") or address <= 0:
            continue
        if not _executable_rva(header, address - ntdll.base):
            continue
        data = facts.read(address, 16)
        parsed = syscall_number(data, arch) if data else None
        if parsed is not None:
            stubs.append((address, name, parsed[0], parsed[1]))
    numbers = [number for _, _, number, _ in stubs]
    if len(stubs) < 3:
        return
    for position in _out_of_order(numbers):
        address, name, number, size = stubs[position]
        before = stubs[position - 1] if position else None
        after = stubs[position + 1] if position + 1 < len(stubs) else None
        neighbours = ", ".join(f"{item[1]} 0x{item[2]:x}" for item in (before, after) if item is not None)
        finding = Finding(
            "syscall_stub_order",
            Severity.HIGH,
            Confidence.MEDIUM,
            address,
            address + size,
            f"ntdll.dll!{name} issues system call 0x{number:x}, out of the ascending order of the stubs "
            f"around it ({neighbours}): the stub was rewritten",
            **_region_columns(context.address_map.region_of(address)),
            module=ntdll.name,
            evidence=[f"{len(stubs)} Nt* stubs checked; numbers ascend with addresses except here"],
        )
        context.preview(finding, address)
        yield finding


# --- import address tables ------------------------------------------------------------------------

#: Modules whose IAT is checked besides the process's own executable (lower-case names).
IAT_CHECKED_MODULES = ("fastprox.dll", "wbemcomn.dll", "wbemprox.dll", "wbemsvc.dll", "wmiprvsd.dll")
IMPORT_DESCRIPTOR = struct.Struct(
    "<IIIII"
)  # OriginalFirstThunk, TimeDateStamp, ForwarderChain, Name, FirstThunk
MAX_IMPORT_DLLS = 512
MAX_IMPORTS_PER_DLL = 4096


def _c_string(read, address: int, limit: int = 256) -> str:
    return read(address, limit).split(b"\x00", 1)[0].decode("ascii", "replace")


def _import_name(read, module: ModuleFact, names_rva: int, index: int, width: int) -> str:
    if not names_rva:
        return f"#{index}"
    raw = read(module.base + names_rva + index * width, width)
    if len(raw) < width:
        return f"#{index}"
    value = int.from_bytes(raw, "little")
    if value >> (width * 8 - 1):
        return f"ordinal {value & 0xFFFF}"
    return _c_string(read, module.base + (value & 0x7FFFFFFF) + 2) or f"#{index}"


def detect_iat_hooks(context: Context) -> Iterator[Finding]:
    """IAT slots of WmiPrvSE.exe and the WMI DLLs that point outside the module the import names
    (a forwarder into another system module, or an API-set name, is normal)."""
    facts = context.facts
    main = facts.modules[0] if facts.modules else None
    by_name = {module.name.lower(): module for module in facts.modules}
    for module in facts.modules:
        if module is not main and module.name.lower() not in IAT_CHECKED_MODULES:
            continue
        header = pe.parse_headers(facts.read(module.base, HEADER_WINDOW), module.base)
        if (
            header is None
            or not header.import_directory[0]
            or header.import_directory[0] >= header.size_of_image
        ):
            continue
        width = 8 if header.magic == pe.PE32_PLUS_MAGIC else 4
        rva, size = header.import_directory
        count = min(size // IMPORT_DESCRIPTOR.size, MAX_IMPORT_DLLS)
        raw = facts.read(module.base + rva, count * IMPORT_DESCRIPTOR.size)
        for names_rva, _, _, name_rva, iat_rva in IMPORT_DESCRIPTOR.iter_unpack(
            raw[: len(raw) - len(raw) % 20]
        ):
            if not iat_rva or not name_rva:
                break
            dll = _c_string(facts.read, module.base + name_rva)
            expected = by_name.get(dll.lower())
            api_set = dll.lower().startswith(("api-ms-", "ext-ms-"))
            slots = facts.read(module.base + iat_rva, MAX_IMPORTS_PER_DLL * width)
            for index in range(len(slots) // width):
                pointer = int.from_bytes(slots[index * width : (index + 1) * width], "little")
                if not pointer:
                    break
                owner = context.address_map.module_of(pointer)
                if expected is not None and expected.base <= pointer < expected.end:
                    continue
                if (
                    owner is not None
                    and knowledge.in_system_folder(owner.path)
                    and (api_set or expected is None or knowledge.in_system_folder(expected.path))
                ):
                    continue  # forwarded exports and API sets resolve into other system modules
                if expected is None and not api_set and owner is not None:
                    continue  # the named DLL is not listed: nothing to compare with
                slot = module.base + iat_rva + index * width
                function = _import_name(facts.read, module, names_rva, index, width)
                finding = Finding(
                    "iat_hook",
                    Severity.HIGH,
                    Confidence.HIGH if owner is None else Confidence.MEDIUM,
                    slot,
                    slot + width,
                    f"{module.name} imports {dll}!{function}, but its IAT slot points to 0x{pointer:x}: "
                    f"{describe_target(context, pointer)}",
                    **_region_columns(context.address_map.region_of(slot)),
                    module=module.name,
                    evidence=[
                        f"IAT slot 0x{slot:x} (import descriptor of {dll})",
                        f"slot value 0x{pointer:x}",
                    ],
                )
                context.preview(finding, pointer)
                yield finding
