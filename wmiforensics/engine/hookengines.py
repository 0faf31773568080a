"""Hook engines explained instead of listed: one finding for many trampolines.

Benign processes carry hooking engines (EDR, Citrix, accessibility tools): dozens of small private
regions, allocated RWX and made RX, in the granules next to the system DLLs they patch (rel32 jumps
reach only +-2 GiB), each the target of an inline hook. Reported one by one they drown the real
findings; grouped they become one finding that names the DLL the trampolines jump into.
"""

from __future__ import annotations

from typing import Dict, List, Optional

from . import code, knowledge
from .detectors import Context
from .findings import Confidence, Finding, Severity
from .integrity import export_index, hook_target, inline_hooks

#: Kinds of region findings a trampoline produces.
TRAMPOLINE_KINDS = ("exec_private", "exec_was_rwx", "exec_rwx")
MAX_TRAMPOLINE = 0x10000
#: How close to a system DLL a trampoline sits (hook engines allocate in the granules next to it).
NEAR_SYSTEM_MODULE = 0x100_0000
#: Fewer small regions than this are judged one by one: an implant's hook page is not an engine.
MIN_TRAMPOLINES = 8


def _distance_to_system_module(context: Context, start: int, end: int) -> Optional[int]:
    distances = [
        max(module.base - end, start - module.end, 0)
        for module in context.facts.modules
        if knowledge.in_system_folder(module.path)
    ]
    return min(distances) if distances else None


def group_hook_engines(context: Context, findings: List[Finding]) -> List[Finding]:
    """``findings`` with the trampolines of a hook engine (and the hooks into them) folded into one
    ``hook_engine`` finding; unchanged when no engine is present."""
    trampolines = []
    for finding in findings:
        if finding.kind not in TRAMPOLINE_KINDS or finding.size > MAX_TRAMPOLINE or finding.confidence > 2:
            continue
        distance = _distance_to_system_module(context, finding.start, finding.end)
        if distance is not None and distance <= NEAR_SYSTEM_MODULE:
            trampolines.append(finding)
    if len(trampolines) < MIN_TRAMPOLINES:
        return findings
    spans = [(item.start, item.end) for item in trampolines]
    hooks = [
        hook
        for hook in inline_hooks(context, export_index(context))
        if any(start <= hook[3] < end for start, end in spans)
    ]
    owners: Dict[str, int] = {}
    arch = context.code_arch
    for start, _ in spans:
        found = hook_target(
            code.disassemble(context.facts.read(start, 16), start, arch, 2), context.facts.read, arch
        )
        owner = context.address_map.module_of(found[0]) if found else None
        if owner is not None:
            owners[owner.path] = owners.get(owner.path, 0) + 1
    owner_path = max(owners, key=owners.get) if owners else None
    owner_name = owner_path.replace("/", "\\").rsplit("\\", 1)[-1] if owner_path else None
    third_party = owner_path is not None and not knowledge.in_system_folder(owner_path)
    grouped = Finding(
        "hook_engine",
        Severity.MEDIUM,
        Confidence.MEDIUM,
        min(start for start, _ in spans),
        max(end for _, end in spans),
        f"{len(trampolines)} small executable private regions next to the system DLLs, "
        + (
            f"jumping into {owner_name}: the trampolines of a hooking engine"
            if owner_name
            else "not traced to a module: trampolines of an unknown hooking engine"
        ),
        protection=", ".join(sorted({item.protection for item in trampolines})),
        initial_protection=", ".join(sorted({item.initial_protection for item in trampolines})),
        region_type="MEM_PRIVATE",
        module=owner_name or "unbacked",
    )
    if owner_path:
        grouped.evidence.append(f"{owners[owner_path]} trampolines jump into {owner_path}")
    grouped.evidence.append(
        "trampolines: "
        + ", ".join(f"0x{start:x}-0x{end:x}" for start, end in spans[:8])
        + (f" and {len(spans) - 8} more" if len(spans) > 8 else "")
    )
    for module, name, address, target, _, shape in hooks:
        grouped.evidence.append(
            f"hook {module.name}!{name} at 0x{address:x}: {shape} to trampoline 0x{target:x}"
        )
    if third_party and all(item.kind != "exec_rwx" for item in trampolines):
        grouped.rank_down(f"the trampolines lead into a third-party DLL loaded from {owner_path}")
    hooked_addresses = {hook[2] for hook in hooks}
    folded = {id(item) for item in trampolines}
    rest = [
        item
        for item in findings
        if id(item) not in folded and not (item.kind == "inline_hook" and item.start in hooked_addresses)
    ]
    return rest + [grouped]
