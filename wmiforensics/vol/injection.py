"""Rows and ``--dump`` files for ``wmi.injection``: the same columns for every backend."""

from __future__ import annotations

from typing import Iterable, Iterator, List, Optional

from volatility3.framework.renderers import format_hints

from ..addressmap import AddressMap
from ..engine.facts import ProcessFacts
from ..engine.findings import Finding
from .common import MISSING, name_or_na
from .dumps import Dumper, safe_component

INJECTION_COLUMNS = [
    ("PID", int),
    ("Process", str),
    ("Kind", str),
    ("Severity", str),
    ("Confidence", str),
    ("Start", format_hints.Hex),
    ("End", format_hints.Hex),
    ("Size", format_hints.Hex),
    ("Protection", str),
    ("InitialProtection", str),
    ("Type", str),
    ("Module", str),
    ("Reason", str),
    ("Evidence", str),
    ("RankedDown", str),
    ("Disassembly", str),
    ("Hexdump", str),
    ("Dumped", str),
]



def finding_row(finding: Finding, dumped: List[str]) -> tuple:
    return (
        0,
        (
            finding.pid if finding.pid is not None else -1,
            finding.process,
            finding.kind,
            finding.severity.name.lower(),
            finding.confidence.name.lower(),
            format_hints.Hex(finding.start),
            format_hints.Hex(finding.end - 1),
            format_hints.Hex(finding.size),
            name_or_na(finding.protection),
            name_or_na(finding.initial_protection),
            name_or_na(finding.region_type),
            finding.module,
            finding.reason,
            "; ".join(finding.evidence) or MISSING,
            "; ".join(finding.ranked_down) or MISSING,
            finding.disassembly or MISSING,
            finding.hexdump or MISSING,
            ", ".join(dumped) or MISSING,
        ),
    )


def dump_finding(finding: Finding, facts: ProcessFacts, dumper: Dumper, address_map: AddressMap) -> List[str]:
    """Write the finding's bytes (and a rebuilt PE where one was found); file names or why not.

    A thread finding names one address; its file is the region that holds it (the injected
    code around the start address or instruction pointer), not one byte.
    """
    prefix = f"pid{finding.pid if finding.pid is not None else 'unknown'}.{safe_component(finding.kind)}"
    start, size = finding.start, finding.size
    if finding.kind.startswith("thread_"):
        region = address_map.region_of(finding.start)
        start, size = (region.base, region.size) if region else (finding.start & ~0xFFF, 0x1000)
    written = dumper.write_range(facts, prefix, start, size)
    if finding.pe_base is not None:
        module = safe_component(finding.module if finding.module not in ("unbacked", "unlisted") else "image")
        written += dumper.write_pe(facts, f"{prefix}.{finding.pe_base:x}.{module}", finding.pe_base)
    return written


def rows(findings: Iterable[Finding], facts: ProcessFacts, dumper: Optional[Dumper]) -> Iterator[tuple]:
    address_map = AddressMap(facts.regions, facts.modules) if dumper is not None else None
    for finding in findings:
        dumped = dump_finding(finding, facts, dumper, address_map) if dumper is not None else []
        yield finding_row(finding, dumped)
