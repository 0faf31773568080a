"""Scan process memory region by region and keep only hits inside each rule's scope.

Which bytes are visited is decided by :mod:`wmiforensics.captured`: only bytes that exist
(captured segments, valid pages), in bounded chunks that overlap by ``OVERLAP`` bytes, so a string
that spans a chunk boundary is still found, and a hit in an overlap is reported once. The cost
follows the bytes the input holds, never a region's declared size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Tuple

from .. import captured
from ..addressmap import AddressMap
from ..engine.facts import ProcessFacts, RegionFact
from ..minidump import constants
from .rules import RuleInfo, RulePack

CHUNK = captured.CHUNK
OVERLAP = captured.OVERLAP
MAX_INSTANCES_PER_HIT = 8


@dataclass
class Hit:
    """One rule matching inside one region."""

    rule: RuleInfo
    address: int
    region: Optional[RegionFact]
    module: str
    #: (identifier, address, matched bytes) for the first few string instances.
    strings: List[Tuple[str, int, bytes]] = field(default_factory=list)
    pid: Optional[int] = None
    process: str = ""


def in_scope(scope: str, region: Optional[RegionFact]) -> bool:
    """Whether a hit in ``region`` counts for a rule with ``scope`` (no region list: only ``any``)."""
    if scope == "any":
        return True
    if region is None:
        return False
    if scope == "non-image":
        return region.type != constants.MEM_IMAGE
    if scope == "private":
        return region.type == constants.MEM_PRIVATE
    if scope == "unbacked-exec":
        return region.type != constants.MEM_IMAGE and region.is_executable
    return False


def _spans(facts: ProcessFacts) -> List[Tuple[int, int, Optional[RegionFact]]]:
    if facts.has_region_list:
        return [(region.base, region.end, region) for region in facts.regions if region.is_committed]
    if facts.present is not None:
        return [(0, 1 << 64, None)]  # every captured byte, wherever it lies
    return []


def scan_process(facts: ProcessFacts, pack: RulePack) -> Iterator[Hit]:
    """Every in-scope hit of ``pack`` in the process, in address order, one per rule and region."""
    address_map = AddressMap(facts.regions, facts.modules)
    scopes_by_kind: Dict[Tuple, set] = {}  # scope depends only on type and executability
    for start, end, region in _spans(facts):
        kind = (region.type, region.is_executable) if region is not None else None
        scopes_here = scopes_by_kind.get(kind)
        if scopes_here is None:
            scopes_here = scopes_by_kind[kind] = {
                info.identifier for info in pack.rules.values() if in_scope(info.scope, region)
            }
        if not scopes_here:
            continue
        found: Dict[str, Hit] = {}
        for chunk in captured.chunks(facts.read, facts.present_spans, start, end, CHUNK, OVERLAP):
            fresh_end = chunk.fresh_end
            _collect(pack, chunk.data, chunk.address, fresh_end, region, address_map, scopes_here, found)
        for hit in sorted(found.values(), key=lambda item: item.address):
            hit.pid, hit.process = facts.pid, facts.name
            yield hit


def _collect(pack, data, base, limit, region, address_map, wanted, found) -> None:
    for match in pack.compiled.match(data=data):
        if match.rule not in wanted:
            continue
        for string in match.strings:
            for instance in string.instances:
                address = base + instance.offset
                if address >= limit:
                    continue  # the next chunk reports it
                hit = found.get(match.rule)
                if hit is None:
                    module = address_map.module_of(address)
                    hit = found[match.rule] = Hit(
                        pack.info(match.rule), address, region, module.name if module else "unbacked"
                    )
                hit.address = min(hit.address, address)
                if len(hit.strings) < MAX_INSTANCES_PER_HIT:
                    hit.strings.append((string.identifier, address, bytes(instance.matched_data[:64])))
