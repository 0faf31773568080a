"""Every anchor the carver needs in a chunk, from one YARA-X scan.

One rule with four patterns: the [MS-WMIO] EncodingUnit signature ``78 56 34 12``, the [MS-DCOM]
ORPCTHIS version ``05 00 07 00``, the [MS-WMI] ObjectArray signature ``WBEMDATA`` and one regular
expression for the UTF-16LE markers of WMI strings (:data:`.strings.MARKERS`). YARA-X scans it at
about 2.5 GiB/s whatever the bytes (three ``bytes.find`` passes cost seven times as much; separate
``wide`` strings are a hundred times slower on zero-filled memory).

YARA-X keeps at most :data:`MAX_HITS` matches per pattern. When a binary anchor reaches that cap
(hostile memory full of signatures) its offsets are taken with ``bytes.find`` instead, so no anchor
is lost; string markers past the cap in a flooded chunk are not tried (each costs an extension).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Dict, List

from ..wmio.structs import SIGNATURE_BYTES
from .packets import ANCHOR as PACKET_ANCHOR
from .requests import ANCHOR as REQUEST_ANCHOR
from .strings import MARKERS, utf16_regex

MAX_HITS = 100_000
#: Pattern name -> the bytes it matches (binary anchors only).
BINARY_ANCHORS: Dict[str, bytes] = {
    "unit": SIGNATURE_BYTES,
    "request": REQUEST_ANCHOR,
    "packet": PACKET_ANCHOR,
}


@dataclass
class Anchors:
    """Sorted offsets in one chunk where each kind of item may start."""

    unit: List[int] = field(default_factory=list)
    request: List[int] = field(default_factory=list)
    packet: List[int] = field(default_factory=list)
    string: List[int] = field(default_factory=list)


def _hex(blob: bytes) -> str:
    return "{ " + " ".join(f"{byte:02X}" for byte in blob) + " }"


def yara_rule() -> str:
    lines = [f"    ${name} = {_hex(blob)}" for name, blob in BINARY_ANCHORS.items()]
    alternatives = "|".join(utf16_regex(marker) for marker in MARKERS)
    lines.append(f"    $string = /({alternatives})/ nocase")
    return "rule wmi_activity_anchors {\n  strings:\n" + "\n".join(lines) + "\n  condition: any of them\n}\n"


@lru_cache(maxsize=1)
def _scanner():
    import yara_x  # an install requirement (wmi.yarascan uses it too)

    scanner = yara_x.Scanner(yara_x.compile(yara_rule()))
    scanner.max_matches_per_pattern(MAX_HITS)
    return scanner


def _find_all(data: bytes, needle: bytes) -> List[int]:
    found, pos = [], data.find(needle)
    while pos >= 0:
        found.append(pos)
        pos = data.find(needle, pos + 1)
    return found


def find_anchors(data: bytes) -> Anchors:
    """The anchors in ``data``, each list sorted."""
    anchors = Anchors()
    for rule in _scanner().scan(data).matching_rules:
        for pattern in rule.patterns:
            name = pattern.identifier.lstrip("$")
            offsets = [match.offset for match in pattern.matches]
            if name in BINARY_ANCHORS and len(offsets) >= MAX_HITS:
                offsets = _find_all(data, BINARY_ANCHORS[name])
            offsets.sort()
            setattr(anchors, name, offsets)
    return anchors
