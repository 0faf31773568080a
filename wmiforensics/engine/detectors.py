"""Detectors: pure functions from :class:`ProcessFacts` to :class:`Finding` objects.

Each reads only the first pages of the regions it looks at, so the cost follows the number of
regions, not the number of bytes in the dump.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import groupby
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

from ..addressmap import AddressMap
from ..minidump import constants
from . import code, knowledge, pe
from .facts import ModuleFact, ProcessFacts, RegionFact
from .findings import Confidence, Finding, Severity

HEADER_WINDOW = 0x1000
#: How far into an executable allocation to look for an embedded PE (reflective loaders put a
#: bootstrap stub before the DLL).
EMBEDDED_PE_WINDOW = 0x10000
PREVIEW_BYTES = 96


@dataclass
class Context:
    """Per-process lookups shared by all detectors."""

    facts: ProcessFacts
    address_map: AddressMap
    jit_modules: List[str] = field(default_factory=list)
    _exports: dict = field(default_factory=dict)

    @classmethod
    def build(cls, facts: ProcessFacts) -> Context:
        jit = sorted(
            {module.name for module in facts.modules if module.name.lower() in knowledge.JIT_MODULES}
        )
        return cls(facts, AddressMap(facts.regions, facts.modules), jit)

    def exports_of(self, module: ModuleFact, names: Sequence[str]) -> dict:
        """Named exports of a loaded module, read from its export table in memory (cached)."""
        key = (module.base, tuple(names))
        if key not in self._exports:
            header = pe.parse_headers(self.facts.read(module.base, HEADER_WINDOW), module.base)
            problems: List[str] = []
            self._exports[key] = (
                header,
                pe.read_exports(header, self.facts.read, set(names), problems) if header else {},
                problems,
            )
        return self._exports[key][1]

    def export_problems(self, module: ModuleFact, names: Sequence[str]) -> List[str]:
        """What was wrong with the module's export table when ``names`` were resolved."""
        self.exports_of(module, names)
        return self._exports[(module.base, tuple(names))][2]

    def header_of(self, module: ModuleFact, names: Sequence[str]) -> Optional[pe.PeHeader]:
        self.exports_of(module, names)
        return self._exports[(module.base, tuple(names))][0]

    def loader_entry_points(self) -> dict:
        """Address -> ``kernel32.dll!LoadLibraryW`` for every loader export a thread could start at."""
        found = {}
        for module in self.facts.modules:
            names = knowledge.LOADER_ENTRY_POINTS.get(module.name.lower())
            if names:
                for name, address in self.exports_of(module, names).items():
                    if address > 0:
                        found[address] = f"{module.name}!{name}"
        return found

    @property
    def code_arch(self) -> str:
        return "x86" if self.facts.arch == "x86" else "x64"

    def preview(self, finding: Finding, address: int, arch: Optional[str] = None) -> bytes:
        data = self.facts.read(address, PREVIEW_BYTES)
        if data:
            finding.hexdump = code.hexdump_text(data)
            finding.disassembly = code.disassembly_text(
                code.disassemble(data, address, arch or self.code_arch, 10)
            )
        else:
            finding.evidence.append(f"bytes at 0x{address:x} are not captured in the dump")
        return data


Detector = Callable[[Context], Iterator[Finding]]


def _region_columns(region: Optional[RegionFact]) -> dict:
    """The protection/type columns of a finding about an address in ``region`` (or in none)."""
    if region is None:
        return {"protection": "-", "initial_protection": "-", "region_type": "-"}
    return {
        "protection": region.protect_name,
        "initial_protection": region.allocation_protect_name,
        "region_type": region.type_name,
    }


def _allocations(regions: Sequence[RegionFact], wanted_types: Tuple[int, ...]) -> Iterator[List[RegionFact]]:
    """Committed regions of the wanted types grouped by allocation base (one VirtualAlloc each)."""
    chosen = sorted(
        (region for region in regions if region.type in wanted_types and region.is_committed),
        key=lambda region: (region.allocation_base, region.base),
    )
    for _, group in groupby(chosen, key=lambda region: region.allocation_base):
        yield list(group)


def _protections(regions: Sequence[RegionFact]) -> str:
    seen: List[str] = []
    for region in regions:
        if region.protect_name not in seen:
            seen.append(region.protect_name)
    return ", ".join(seen)


def _find_pe(
    context: Context, allocation: List[RegionFact]
) -> Optional[Tuple[str, int, Optional[pe.PeHeader]]]:
    """An intact PE at the allocation start or embedded in its first 64 KiB, else PE remains."""
    base = allocation[0].allocation_base
    head = context.facts.read(base, HEADER_WINDOW)
    header = pe.parse_headers(head, base)
    if header:
        return "intact", base, header
    window = context.facts.read(base, EMBEDDED_PE_WINDOW)
    position = window.find(b"MZ", 1)
    while 0 < position < len(window) - 0x40:
        header = pe.parse_headers(window[position : position + HEADER_WINDOW], base + position)
        if header:
            return "embedded", base + position, header
        position = window.find(b"MZ", position + 1)
    if head:
        remains = pe.find_wiped_headers(head, base)
        if remains:
            how, offset, header = remains
            return how, base + offset, header
    return None


#: Executable regions with no captured byte are grouped per kind and protection once there are
#: more than this many: each alone says only "executable, bytes not captured", and a hostile
#: MemoryInfoList can declare a million of them.
GROUP_UNCAPTURED_ABOVE = 32
#: Addresses listed in a grouped finding's evidence.
GROUP_LISTED = 16


def detect_private_code(context: Context) -> Iterator[Finding]:
    """PE images and executable code in private or mapped (non-image) memory."""
    facts = context.facts
    uncaptured: dict = {}
    for allocation in _allocations(facts.regions, (constants.MEM_PRIVATE, constants.MEM_MAPPED)):
        executable = [region for region in allocation if region.is_executable]
        if not executable:
            continue
        base, end = allocation[0].allocation_base, max(region.end for region in allocation)
        start = min(base, allocation[0].base)
        if not any(True for _ in facts.present_spans(start, end)):
            for region in executable:  # kind and reason follow from these three
                key = (region.type, region.protect, region.allocation_protect)
                uncaptured.setdefault(key, []).append(region)
            continue
        region_type = allocation[0].type_name
        common = dict(
            protection=_protections(allocation),
            initial_protection=allocation[0].allocation_protect_name,
            region_type=region_type,
            module="unbacked",
        )
        found = _find_pe(context, allocation)
        if found:
            yield _pe_finding(context, found, start, end, executable, common)
            continue
        for region in executable:
            yield _code_finding(context, region, common)
    yield from _uncaptured_code(context, uncaptured)


def _uncaptured_code(context: Context, groups: dict) -> Iterator[Finding]:
    """Findings for executable regions of which nothing is captured: one each, or one per group."""
    for regions in groups.values():
        first = regions[0]
        common = dict(
            protection=first.protect_name,
            initial_protection=first.allocation_protect_name,
            region_type=first.type_name,
            module="unbacked",
        )
        if len(regions) <= GROUP_UNCAPTURED_ABOVE:
            for region in regions:
                yield _code_finding(context, region, common)
            continue
        kind, severity, reason = _code_kind(first)
        total = sum(region.size for region in regions)
        finding = Finding(
            kind,
            severity,
            Confidence.LOW,
            first.base,
            first.end,
            f"{len(regions):,} regions like this one ({total:,} bytes): {reason}",
            **common,
        )
        listed = ", ".join(f"0x{region.base:x}" for region in regions[:GROUP_LISTED])
        more = f" and {len(regions) - GROUP_LISTED:,} more" if len(regions) > GROUP_LISTED else ""
        finding.evidence.append(f"grouped: none of their bytes are captured; regions at {listed}{more}")
        finding.rank_down("no byte of these regions is captured, so none can be examined")
        yield finding


def _code_kind(region: RegionFact) -> Tuple[str, Severity, str]:
    """Kind, severity and reason of executable private memory without a PE, from its protections."""
    if constants.is_writable(region.protect):
        return (
            "exec_rwx",
            Severity.HIGH,
            f"{region.type_name} memory is writable and executable ({region.protect_name})",
        )
    if (region.allocation_protect & 0xFF) == constants.PAGE_EXECUTE_READWRITE:
        return (
            "exec_was_rwx",
            Severity.MEDIUM,
            f"{region.type_name} memory allocated RWX and later made {region.protect_name}",
        )
    return (
        "exec_private",
        Severity.MEDIUM,
        f"{region.type_name} memory allocated {region.allocation_protect_name} and later made "
        f"executable ({region.protect_name}); no PE image backs it",
    )


def _pe_finding(context, found, start, end, executable, common) -> Finding:
    how, pe_base, header = found
    rwx = any(constants.is_writable(region.protect) for region in executable)
    if how in ("intact", "embedded"):
        finding = Finding(
            "pe_injected",
            Severity.CRITICAL if rwx else Severity.HIGH,
            Confidence.HIGH,
            start,
            end,
            f"a PE image ({header.arch}, {'DLL' if header.is_dll else 'EXE'}) lives in "
            f"{common['region_type']} memory the loader never mapped as an image",
            pe_base=pe_base,
            **common,
        )
        if how == "embedded":
            finding.evidence.append(f"PE headers at +0x{pe_base - start:x}, after a loader stub")
    else:
        detail = "NT headers survive" if how == "nt_headers" else "only a section table survives"
        finding = Finding(
            "pe_headerless",
            Severity.HIGH,
            Confidence.HIGH if how == "nt_headers" else Confidence.MEDIUM,
            start,
            end,
            f"PE remains with a wiped DOS header in executable {common['region_type']} memory ({detail})",
            pe_base=start,
            **common,
        )
        finding.evidence.append(f"{how.replace('_', ' ')} found at +0x{pe_base - start:x}")
    if header:
        names = ", ".join(section.name for section in header.sections[:8])
        finding.evidence.append(
            f"machine {header.arch}, SizeOfImage 0x{header.size_of_image:x}, entry point RVA "
            f"0x{header.entry_point:x}, sections: {names or 'none'}"
        )
        if rwx:
            finding.evidence.append("memory is writable and executable (RWX)")
        image_base = pe_base if how == "embedded" else start
        entry = image_base + header.entry_point if header.entry_point else None
        if entry and start <= entry < start + max(header.size_of_image, 0x1000):
            context.preview(finding, entry, header.arch if header.arch in ("x86", "x64") else None)
            finding.evidence.append(f"entry point 0x{entry:x} disassembled")
            return finding
    context.preview(finding, pe_base)
    return finding


def _code_finding(context: Context, region: RegionFact, common: dict) -> Finding:
    kind, severity, reason = _code_kind(region)
    finding = Finding(
        kind,
        severity,
        Confidence.MEDIUM,
        region.base,
        region.end,
        reason,
        **{**common, "protection": region.protect_name},
    )
    data = context.preview(finding, region.base)
    prologue = code.shellcode_prologue(data) if data else None
    if prologue:
        finding.severity = finding.severity.raised(1)
        finding.confidence = Confidence.HIGH
        finding.evidence.append(f"starts with a known shellcode prologue: {prologue}")
        return finding
    if data and not data.strip(b"\x00"):
        finding.rank_down("the first bytes are all zero: no code has been written yet")
        finding.confidence = Confidence.LOW
    if kind == "exec_was_rwx":
        finding.rank_down("RWX-then-RX allocations are common (JIT compilers, unpacking stubs)")
    if context.jit_modules:
        finding.rank_down(f"the process hosts a JIT compiler ({', '.join(context.jit_modules)})")
    return finding


def detect_threads(context: Context) -> Iterator[Finding]:
    """Threads whose start address or current instruction pointer lies outside any image."""
    facts = context.facts
    loader_exports = context.loader_entry_points() if facts.threads else {}
    for thread in facts.threads:
        if thread.start_address in loader_exports:
            target = loader_exports[thread.start_address]
            region = context.address_map.region_of(thread.start_address)
            yield Finding(
                "thread_start_loadlibrary",
                Severity.HIGH,
                Confidence.HIGH,
                thread.start_address,
                thread.start_address + 1,
                f"thread {thread.thread_id} started at {target}: the CreateRemoteThread(LoadLibrary) "
                "DLL-injection pattern",
                **_region_columns(region),
                module=target.split("!", 1)[0],
                evidence=[f"start address 0x{thread.start_address:x} is the export {target}"],
            )
        for address, kind, label in (
            (thread.start_address, "thread_start_unbacked", "start address"),
            (thread.instruction_pointer, "thread_ip_unbacked", "instruction pointer"),
        ):
            if not address:
                continue
            region = context.address_map.region_of(address)
            module = context.address_map.module_of(address)
            if region is not None and region.is_image:
                continue
            if region is None and (module is not None or not facts.has_region_list and module is not None):
                continue
            if region is None and facts.has_region_list:
                where, confidence = "lies in no region of the process", Confidence.HIGH
            elif region is None:
                where, confidence = "lies outside every loaded module (no region list)", Confidence.MEDIUM
            else:
                where = f"lies in {region.type_name} memory ({region.protect_name}), not in an image"
                confidence = Confidence.HIGH
            finding = Finding(
                kind,
                Severity.HIGH,
                confidence,
                address,
                address + 1,
                f"thread {thread.thread_id}'s {label} 0x{address:x} {where}",
                **_region_columns(region),
                module=module.name if module else "unbacked",
            )
            if region is not None:
                finding.evidence.append(f"region 0x{region.base:x}-0x{region.end:x}")
            context.preview(finding, address)
            yield finding


def detect_modules(context: Context) -> Iterator[Finding]:
    """Masquerading, unlisted and phantom modules, plus WMI-specific module context."""
    facts = context.facts
    masquerading = set()
    for module in facts.modules:
        lower = module.name.lower()
        if lower in knowledge.SYSTEM_BINARIES and not knowledge.in_system_folder(module.path):
            masquerading.add(module.base)
            yield _module_finding(
                context,
                module,
                "module_masquerade",
                Severity.HIGH,
                Confidence.HIGH,
                f"{module.name} is a Windows system binary, but this copy was loaded from outside "
                f"System32/SysWOW64: {module.path}",
            )
    if facts.has_region_list:
        yield from _unlisted_images(context)
        for module in facts.modules:
            region = context.address_map.region_of(module.base)
            if region is not None and region.is_image and region.is_committed:
                continue
            state = (
                "no region at all"
                if region is None
                else f"{region.type_name if region.is_committed else region.state_name} memory"
            )
            yield _module_finding(
                context,
                module,
                "module_no_image",
                Severity.HIGH,
                Confidence.MEDIUM,
                f"the loader lists {module.name} at 0x{module.base:x}, but the address space holds {state} "
                "there, not an image mapping",
            )
    image = facts.modules[0].base if facts.modules else None
    for module in facts.modules:
        lower = module.name.lower()
        if lower in knowledge.WMI_CONSUMER_MODULES:
            yield _module_finding(
                context,
                module,
                "wmi_consumer_module",
                Severity.LOW,
                Confidence.HIGH,
                f"{module.name} {knowledge.WMI_CONSUMER_MODULES[lower]}; check root\\subscription for "
                "permanent event consumers",
            )
        elif (
            module.base not in masquerading
            and module.base != image
            and knowledge.in_user_writable_folder(module.path)
        ):
            yield _module_finding(
                context,
                module,
                "module_user_path",
                Severity.LOW,
                Confidence.MEDIUM,
                f"{module.name} was loaded from a user-writable folder: {module.path}; WMI providers "
                "registered through __Win32Provider load this way",
            )


def _module_finding(context, module: ModuleFact, kind, severity, confidence, reason) -> Finding:
    region = context.address_map.region_of(module.base)
    return Finding(
        kind,
        severity,
        confidence,
        module.base,
        module.end,
        reason,
        **_region_columns(region),
        module=module.name,
        evidence=[f"path {module.path}", f"reported by {', '.join(sorted(module.sources))}"],
        pe_base=module.base if region is not None and region.is_image else None,
    )


def _unlisted_images(context: Context) -> Iterator[Finding]:
    facts = context.facts
    listed = {module.base for module in facts.modules}
    for allocation in _allocations(facts.regions, (constants.MEM_IMAGE,)):
        base = allocation[0].allocation_base
        if base in listed or context.address_map.module_of(base) is not None:
            continue
        end = max(region.end for region in allocation)
        head = facts.read(base, HEADER_WINDOW)
        header = pe.parse_headers(head, base)
        finding = Finding(
            "module_unlisted",
            Severity.HIGH,
            Confidence.HIGH if header else Confidence.LOW,
            base,
            end,
            "an image mapping that the loader's module list does not report",
            protection=_protections(allocation),
            initial_protection=allocation[0].allocation_protect_name,
            region_type=allocation[0].type_name,
            module="unlisted",
            pe_base=base if header else None,
        )
        if header:
            finding.evidence.append(
                f"PE headers: machine {header.arch}, SizeOfImage 0x{header.size_of_image:x}, "
                f"{'DLL' if header.is_dll else 'EXE'}"
            )
        elif not head:
            finding.evidence.append("the header page is not captured")
        damage = facts.damaged_lists.get("modules")
        if damage:
            finding.confidence = Confidence.LOW
            finding.rank_down(f"{damage}: the image may be listed past the cut")
        context.preview(finding, base)
        yield finding


def detect_etw_patches(context: Context) -> Iterator[Finding]:
    """User-mode ETW functions whose first instructions return early or jump out of their module."""
    yield from patched_functions(
        context, knowledge.ETW_FUNCTIONS, "etw_patch", "ETW events from this process are silenced", "ETW"
    )


def watched_modules(
    context: Context, table: dict
) -> Iterator[Tuple[ModuleFact, Sequence[str], dict, Optional[str]]]:
    """(module, its watched function names, their exports, code architecture) for each loaded module
    ``table`` (module -> names) names; the architecture is None when the headers are not captured."""
    for module in context.facts.modules:
        functions = table.get(module.name.lower())
        if not functions:
            continue
        exports = context.exports_of(module, functions)
        header = context.header_of(module, functions)
        arch = None if header is None else header.arch if header.arch in ("x86", "x64") else context.code_arch
        yield module, functions, exports, arch


def patched_functions(
    context: Context, table: dict, kind: str, consequence: str, family: str
) -> Iterator[Finding]:
    """``kind`` findings for the functions of ``table`` (module -> names) cut short by a patch."""
    facts = context.facts
    for module, functions, exports, arch in watched_modules(context, table):
        if arch is None:
            facts.notes.append(f"{module.name}: headers not captured, {family} functions not checked")
            continue
        checked = 0
        for name in functions:
            address = exports.get(name)
            if address is None or address == -1:
                continue
            data = facts.read(address, 32)
            if not data:
                facts.notes.append(f"{module.name}!{name}: code not captured")
                continue
            checked += 1
            instructions = code.disassemble(data, address, arch, 8)
            verdict = classify_patch(instructions, module)
            if verdict is None:
                continue
            why, patch_end = verdict
            region = context.address_map.region_of(address)
            finding = Finding(
                kind,
                Severity.CRITICAL,
                Confidence.HIGH,
                address,
                patch_end,
                f"{module.name}!{name} {why}: {consequence}",
                **_region_columns(region),
                module=module.name,
                evidence=[
                    f"{name} resolved from the export table at 0x{address:x}",
                    f"patched bytes: {data[: patch_end - address].hex(' ')}",
                ],
            )
            finding.disassembly = code.disassembly_text(instructions)
            finding.hexdump = code.hexdump_text(data)
            yield finding
        problems = context.export_problems(module, functions)
        forwarded = [name for name in functions if exports.get(name) == -1]
        if problems or not checked and not forwarded:
            outcome = "ETW patch check did not run" if not checked else "ETW patch check may be incomplete"
            why = "; ".join(problems) or f"none of {', '.join(functions)} is in the export table"
            facts.notes.append(f"{module.name}: {outcome}: {why}")


def classify_patch(instructions: List[code.Instruction], module: ModuleFact) -> Optional[Tuple[str, int]]:
    """Why the opening of a function is a patch, and where the patch ends; None for normal code.

    Normal ETW functions call, branch or enter the kernel before they return. A return, or a jump out
    of the module, reached first means the function was cut short.
    """
    previous: Optional[code.Instruction] = None
    for index, item in enumerate(instructions[:6]):
        mnemonic, end = item.mnemonic, item.address + item.size
        offset = item.address - instructions[0].address
        if mnemonic in ("ret", "retn", "retf"):
            returns_zero = previous is not None and previous.text in (
                "xor eax, eax",
                "xor rax, rax",
                "mov eax, 0",
                "mov rax, 0",
            )
            what = (
                "returns 0 (success) at once"
                if returns_zero and index <= 1
                else ("returns at once" if index == 0 else f"returns at +0x{offset:x} before doing any work")
            )
            if item.op_str:
                what += f" ({item.text}, popping the caller's arguments)"
            return what, end
        if mnemonic in ("jmp", "call"):
            target = _branch_target(item, previous)
            if target is None:
                return None  # register or memory operand: normal dispatch (thunks, CFG)
            if module.base <= target < module.end:
                return None
            return f"{mnemonic}s out of {module.name} to 0x{target:x}", end
        if mnemonic == "push" and index + 1 < len(instructions) and instructions[index + 1].mnemonic == "ret":
            target = _immediate(item.op_str)
            if target is not None and not module.base <= target < module.end:
                return f"pushes 0x{target:x} and returns into it (push/ret hook)", end + 1
        if (
            mnemonic in ("syscall", "sysenter", "int")
            or mnemonic.startswith("j")
            or mnemonic.startswith("loop")
        ):
            return None
        previous = item
    return None


def _immediate(text: str) -> Optional[int]:
    try:
        return int(text, 0)
    except ValueError:
        return None


def _branch_target(item: code.Instruction, previous: Optional[code.Instruction]) -> Optional[int]:
    target = _immediate(item.op_str)
    if target is not None:
        return target
    if previous is not None and previous.mnemonic in ("mov", "movabs"):
        register, _, value = previous.op_str.partition(", ")
        if register == item.op_str:
            return _immediate(value)
    return None


def detect_process_identity(context: Context) -> Iterator[Finding]:
    """A WmiPrvSE.exe that is not where Windows keeps it, or not started by the DCOM launcher."""
    facts = context.facts
    if facts.name.lower() != "wmiprvse.exe":
        return
    main = facts.modules[0] if facts.modules else None
    path = facts.image_path or (main.path if main else None)
    span = (main.base, main.end) if main else (0, 1)
    masquerading = main is not None and not knowledge.in_system_folder(main.path)
    if path and not masquerading and not knowledge.normalise_path(path).endswith(knowledge.WMIPRVSE_SUFFIXES):
        yield Finding(
            "process_path",
            Severity.HIGH,
            Confidence.HIGH,
            *span,
            f"WmiPrvSE.exe runs from {path}, not from \\Windows\\System32\\wbem",
            module=main.name if main else "-",
            evidence=[f"image path {path}"],
        )
    parent = facts.parent
    if parent is None:
        return
    launcher = (parent.name or "").lower() == "svchost.exe" and (
        parent.command_line is None or "dcomlaunch" in parent.command_line.lower()
    )
    if not launcher:
        described = f"{parent.name or 'an exited or hidden process'} (PID {parent.pid})"
        if parent.command_line:
            described += f", command line {parent.command_line}"
        yield Finding(
            "process_parent",
            Severity.HIGH,
            Confidence.MEDIUM if parent.name is None else Confidence.HIGH,
            *span,
            f"WmiPrvSE.exe was started by {described}, not by the DCOM launcher svchost.exe",
            module=main.name if main else "-",
            evidence=[f"parent PID {parent.pid}"],
        )


def detect_image_page_changes(context: Context) -> Iterator[Finding]:
    """Image code pages that map a private copy whose bytes differ from the section's (patched code)."""
    for change in context.facts.image_page_changes or []:
        offset = next(i for i, (a, b) in enumerate(zip(change.current, change.original)) if a != b)
        last = max(i for i, (a, b) in enumerate(zip(change.current, change.original)) if a != b)
        address = change.address + offset
        module = context.address_map.module_of(address)
        region = context.address_map.region_of(address)
        where = f"{module.name}+0x{address - module.base:x}" if module else f"0x{address:x}"
        finding = Finding(
            "image_page_modified",
            Severity.HIGH,
            Confidence.HIGH,
            address,
            change.address + last + 1,
            f"code at {where} differs from the image file's page: the process maps a private copy-on-write "
            "copy (patched or stomped module code)",
            **_region_columns(region),
            module=module.name if module else "unlisted",
            evidence=[
                f"hardware PTE maps frame 0x{change.current_frame:x}, "
                f"the prototype PTE frame 0x{change.original_frame:x}",
                f"{last - offset + 1} bytes differ from +0x{offset:x} of the page",
                f"original bytes: {change.original[offset : last + 1][:32].hex(' ')}",
                f"current bytes: {change.current[offset : last + 1][:32].hex(' ')}",
            ],
        )
        arch = context.code_arch
        finding.disassembly = code.disassembly_text(
            code.disassemble(change.current[offset : offset + 48], address, arch, 8)
        )
        original = code.disassembly_text(
            code.disassemble(change.original[offset : offset + 48], address, arch, 4)
        )
        finding.evidence.append(f"originally: {original}")
        finding.hexdump = code.hexdump_text(change.current[offset : offset + 32])
        yield finding


DETECTORS: List[Detector] = [
    detect_private_code,
    detect_threads,
    detect_modules,
    detect_etw_patches,
    detect_process_identity,
    detect_image_page_changes,
]

#: Kinds only a full memory image can produce (a minidump has no page tables and no parent).
FULL_IMAGE_ONLY_KINDS = frozenset({"image_page_modified", "process_parent"})
