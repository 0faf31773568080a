"""Rows and ``--dump`` files for ``wmi.yarascan``."""

from __future__ import annotations

from typing import Iterator, List, Optional

from volatility3.framework.renderers import format_hints

from ..engine import code
from ..engine.facts import ProcessFacts
from ..yarascan import Hit
from .common import MISSING, name_or_na
from .dumps import Dumper, safe_component

YARASCAN_COLUMNS = [
    ("PID", int),
    ("Process", str),
    ("Rule", str),
    ("Tags", str),
    ("Severity", str),
    ("Description", str),
    ("Mitre", str),
    ("Address", format_hints.Hex),
    ("Strings", str),
    ("RegionBase", format_hints.Hex),
    ("RegionEnd", format_hints.Hex),
    ("Protection", str),
    ("Type", str),
    ("Module", str),
    ("Hexdump", str),
    ("Disassembly", str),
    ("Dumped", str),
]

CONTEXT_BEFORE = 16
CONTEXT_AFTER = 48


def _preview(data: bytes) -> str:
    text = (
        data.decode("utf-16-le", "ignore")
        if len(data) > 3 and data[1::2].count(0) == len(data[1::2])
        else None
    )
    if text and text.isprintable():
        return f"'{text}' (UTF-16)"
    if all(32 <= byte < 127 for byte in data):
        return f"'{data.decode('ascii')}'"
    return data.hex(" ")


def strings_text(hit: Hit) -> str:
    return "; ".join(f"{name} at 0x{address:x}: {_preview(data)}" for name, address, data in hit.strings)


def hit_row(hit: Hit, facts: ProcessFacts, arch: str, dumped: List[str]) -> tuple:
    start = max(hit.address - CONTEXT_BEFORE, hit.region.base if hit.region else 0)
    around = facts.read(start, hit.address - start + CONTEXT_AFTER)
    disassembly = MISSING
    if hit.region is not None and hit.region.is_executable:
        tail = facts.read(hit.address, CONTEXT_AFTER)
        disassembly = code.disassembly_text(code.disassemble(tail, hit.address, arch, 8)) or MISSING
    region = hit.region
    return (
        0,
        (
            hit.pid if hit.pid is not None else -1,
            hit.process,
            hit.rule.identifier,
            ", ".join(hit.rule.tags) or MISSING,
            hit.rule.severity,
            hit.rule.description or MISSING,
            hit.rule.mitre_attack or MISSING,
            format_hints.Hex(hit.address),
            strings_text(hit) or MISSING,
            format_hints.Hex(region.base) if region else MISSING,
            format_hints.Hex(region.end - 1) if region else MISSING,
            name_or_na(region.protect_name) if region else MISSING,
            name_or_na(region.type_name) if region else MISSING,
            hit.module,
            f"0x{start:x}: {code.hexdump_text(around, CONTEXT_BEFORE + CONTEXT_AFTER)}"
            if around
            else MISSING,
            disassembly,
            ", ".join(dumped) or MISSING,
        ),
    )


def rows(hits: Iterator[Hit], facts: ProcessFacts, dumper: Optional[Dumper]) -> Iterator[tuple]:
    arch = "x86" if facts.arch == "x86" else "x64"
    for hit in hits:
        dumped: List[str] = []
        if dumper is not None and hit.region is not None:
            pid = hit.pid if hit.pid is not None else "unknown"
            dumped = dumper.write_range(facts, f"pid{pid}.yara", hit.region.base, hit.region.size)
        yield hit_row(hit, facts, arch, dumped)


__all__ = ["YARASCAN_COLUMNS", "rows", "safe_component"]
