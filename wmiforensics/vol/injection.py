"""Rows and ``--dump`` files for ``wmi.injection``: the same columns for every backend."""

from __future__ import annotations

import re
import struct
from typing import Callable, Iterator, List, Optional

from volatility3.framework.renderers import format_hints

from ..engine import pe
from ..engine.facts import ProcessFacts
from ..engine.findings import Finding
from .common import MISSING, name_or_na

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

#: Largest range --dump writes for one finding; larger ones are cut, and the file name says so.
MAX_DUMP_BYTES = 256 << 20
_CHUNK = 1 << 20
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

OpenFile = Callable[[str], object]


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


def safe_component(text: str, limit: int = 64) -> str:
    """A file-name part that cannot leave the output folder, whatever the dump called things."""
    cleaned = _UNSAFE.sub("_", text).strip("._-")[:limit]
    return cleaned or "unnamed"


def dump_finding(finding: Finding, facts: ProcessFacts, open_file: OpenFile) -> List[str]:
    """Write the flagged bytes (and a rebuilt PE where one was found); return the file names."""
    prefix = f"pid{finding.pid if finding.pid is not None else 'unknown'}.{safe_component(finding.kind)}"
    written = []
    size = min(finding.size, MAX_DUMP_BYTES)
    if size > 0:
        cut = ".cut" if size < finding.size else ""
        name = f"{prefix}.{finding.start:x}-{finding.start + size:x}{cut}.bin"
        with open_file(name) as handle:
            _copy(facts, finding.start, size, handle)
        written.append(name)
    if finding.pe_base is not None:
        image = rebuild_pe(facts, finding.pe_base)
        if image:
            module = safe_component(
                finding.module if finding.module not in ("unbacked", "unlisted") else "image"
            )
            name = f"{prefix}.{finding.pe_base:x}.{module}.pe"
            with open_file(name) as handle:
                handle.write(image)
            written.append(name)
    return written


def _copy(facts: ProcessFacts, start: int, size: int, handle) -> None:
    """Stream memory to a file; bytes the dump lacks are written as zeros so offsets stay true."""
    for offset in range(0, size, _CHUNK):
        want = min(_CHUNK, size - offset)
        data = facts.read(start + offset, want)
        handle.write(data + bytes(want - len(data)))


def rebuild_pe(facts: ProcessFacts, base: int) -> Optional[bytes]:
    """A loadable file from an image as mapped: sections laid out at their RVAs.

    Raw pointers and sizes are rewritten to equal the virtual ones, the way memory dumpers such
    as pe-sieve "unmap" an image, so PE tools open the result. Wiped headers are not invented:
    only images with intact headers are rebuilt.
    """
    header = pe.parse_headers(facts.read(base, 0x1000), base)
    if header is None or not 0 < header.size_of_image <= MAX_DUMP_BYTES:
        return None
    image = bytearray(header.size_of_image)
    for offset in range(0, header.size_of_image, _CHUNK):
        data = facts.read(base + offset, min(_CHUNK, header.size_of_image - offset))
        image[offset : offset + len(data)] = data
    optional_at = header.nt_offset + 24
    size_of_optional = struct.unpack_from("<H", image, header.nt_offset + 20)[0]
    table = optional_at + size_of_optional
    for index, section in enumerate(header.sections):
        at = table + index * 40
        if at + 40 > len(image):
            break
        size = max(section.virtual_size, section.raw_size)
        struct.pack_into("<II", image, at + 16, size, section.virtual_address)
    return bytes(image)


def rows(findings: List[Finding], facts: ProcessFacts, open_file: Optional[OpenFile]) -> Iterator[tuple]:
    for finding in findings:
        dumped = dump_finding(finding, facts, open_file) if open_file is not None else []
        yield finding_row(finding, dumped)
