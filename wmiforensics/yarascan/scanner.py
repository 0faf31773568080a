"""Scan process memory region by region and keep only hits inside each rule's scope.

Which bytes are visited is decided by :mod:`wmiforensics.captured`: only bytes that exist
(captured segments, valid pages), in bounded chunks that overlap by ``OVERLAP`` bytes, so a string
that spans a chunk boundary is still found, and a hit in an overlap is reported once. The cost
follows the bytes the input holds, never a region's declared size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Tuple

from .. import captured
from ..addressmap import AddressMap
from ..engine.facts import ProcessFacts, RegionFact
from ..minidump import constants
from .rules import RuleInfo, RulePack

CHUNK = captured.CHUNK
OVERLAP = captured.OVERLAP
MAX_INSTANCES_PER_HIT = 8

#: Volatility's progress callback: (percent done, what is being done).
Progress = Callable[[float, str], None]


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


def scan_process(facts: ProcessFacts, pack: RulePack, progress: Optional[Progress] = None) -> Iterator[Hit]:
    """Every in-scope hit of ``pack`` in the process, in address order, one per rule and region.

    Only bytes the input holds are visited (see :mod:`wmiforensics.captured`); ``progress``
    (Volatility's progress callback) hears the share of those bytes scanned.
    """
    address_map = AddressMap(facts.regions, facts.modules)
    in_scope_by_kind: Dict[Optional[Tuple[int, bool]], bool] = {}  # scope follows type and executability

    def wanted(region: Optional[RegionFact]) -> bool:
        if not pack.lists_every_rule:
            return True  # yara-x describes rules only as they match: scope is checked per hit
        kind = (region.type, region.is_executable) if region is not None else None
        if kind not in in_scope_by_kind:
            in_scope_by_kind[kind] = any(in_scope(info.scope, region) for info in pack.rules.values())
        return in_scope_by_kind[kind]

    spans = [(start, end, region) for start, end, region in _spans(facts) if wanted(region)]
    total = sum(captured.existing_bytes(facts.present_spans, start, end) for start, end, _ in spans)
    meter = _Meter(progress, total, f"YARA scan of PID {facts.pid}")
    for start, end, region in spans:
        found: Dict[str, Hit] = {}
        for chunk in captured.chunks(facts.read, facts.present_spans, start, end, CHUNK, OVERLAP):
            _collect(pack, chunk.data, chunk.address, chunk.fresh_end, region, address_map, found)
            meter.advance(chunk.fresh_end - chunk.address)
        for hit in sorted(found.values(), key=lambda item: item.address):
            hit.pid, hit.process = facts.pid, facts.name
            yield hit
    meter.done()


class _Meter:
    """Calls the progress callback at most once per whole percent."""

    def __init__(self, progress: Optional[Progress], total: int, text: str) -> None:
        self.progress, self.total, self.text = progress, max(total, 1), text
        self.scanned, self.reported = 0, -1

    def advance(self, count: int) -> None:
        self.scanned += count
        percent = min(100, self.scanned * 100 // self.total)
        if self.progress is not None and percent != self.reported:
            self.reported = percent
            self.progress(float(percent), self.text)

    def done(self) -> None:
        if self.progress is not None and self.reported != 100:
            self.reported = 100
            self.progress(100.0, self.text)


def _collect(pack, data, base, limit, region, address_map, found) -> None:
    for info, strings in pack.matches(data):
        if not in_scope(info.scope, region):
            continue
        for identifier, offset, matched in strings:
            address = base + offset
            if address >= limit:
                continue  # the next chunk reports it
            hit = found.get(info.identifier)
            if hit is None:
                module = address_map.module_of(address)
                hit = found[info.identifier] = Hit(
                    info, address, region, module.name if module else "unbacked"
                )
            hit.address = min(hit.address, address)
            if len(hit.strings) < MAX_INSTANCES_PER_HIT:
                hit.strings.append((identifier, address, matched))
