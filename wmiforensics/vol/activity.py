"""Rows and ``--dump`` files for ``wmi.activity``: one row per recovered WMI operation or object."""

from __future__ import annotations

import json
from typing import Any, Iterator, List, Optional

from volatility3.framework.renderers import format_hints

from ..activity import Activity, carve, classify, process_chunks
from ..addressmap import AddressMap
from ..engine.facts import ProcessFacts
from ..engine.findings import Severity
from .common import MISSING, name_or_na
from .dumps import Dumper

ACTIVITY_COLUMNS = [
    ("PID", int),
    ("Process", str),
    ("Kind", str),
    ("Severity", str),
    ("Confidence", str),
    ("Form", str),
    ("Address", format_hints.Hex),
    ("Size", int),
    ("RegionBase", format_hints.Hex),
    ("Protection", str),
    ("Type", str),
    ("Module", str),
    ("Namespace", str),
    ("WmiClass", str),
    ("Operation", str),
    ("Key", str),
    ("Reason", str),
    ("Notes", str),
    ("Properties", str),
    ("Dumped", str),
]
#: Properties long enough to be cut in the Key column: --dump writes them whole.
DUMPED_PROPERTIES = (
    "ScriptText",
    "CommandLineTemplate",
    "CommandLine",
    "Query",
    "VariableValue",
    "DebugFilePath",
)


def escape(text: str) -> str:
    """Input strings shown safely: control and unprintable characters become escapes."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def _json_default(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def analyse(facts: ProcessFacts) -> List[Activity]:
    """Carve and classify the WMI activity in one process's existing bytes."""
    return classify(carve(process_chunks(facts), facts.read))


def _dump(activity: Activity, facts: ProcessFacts, dumper: Dumper) -> List[str]:
    written: List[str] = []
    pid = facts.pid if facts.pid is not None else "unknown"
    for name in DUMPED_PROPERTIES:
        value = next((v for k, v in activity.properties.items() if k.lower() == name.lower()), None)
        if not isinstance(value, str) or not value:
            continue
        file_name = f"pid{pid}.wmi.{activity.address:x}.{name}.txt"
        written += dumper.write_bytes(file_name, value.encode("utf-8", "backslashreplace"))
    return written


def rows(
    activities: List[Activity], facts: ProcessFacts, dumper: Optional[Dumper], min_severity: Severity
) -> Iterator[tuple]:
    address_map = AddressMap(facts.regions, facts.modules)
    for activity in activities:
        if activity.severity < min_severity:
            continue
        region = address_map.region_of(activity.address)
        module = address_map.module_of(activity.address)
        dumped = _dump(activity, facts, dumper) if dumper is not None else []
        detail = dict(activity.detail)
        detail.setdefault("properties", activity.properties)
        yield (
            0,
            (
                facts.pid if facts.pid is not None else -1,
                facts.name,
                activity.kind,
                activity.severity.name.lower(),
                activity.confidence.name.lower(),
                activity.form,
                format_hints.Hex(activity.address),
                activity.size,
                format_hints.Hex(region.base) if region else MISSING,
                name_or_na(region.protect_name) if region else MISSING,
                name_or_na(region.type_name) if region else MISSING,
                module.name if module else "unbacked",
                escape(activity.namespace) if activity.namespace else MISSING,
                escape(activity.class_name) if activity.class_name else MISSING,
                escape(activity.operation) if activity.operation else MISSING,
                escape(activity.key_text()) if activity.key_text() else MISSING,
                escape(activity.reason),
                escape("; ".join(activity.notes)) if activity.notes else MISSING,
                json.dumps(detail, default=_json_default, ensure_ascii=True, sort_keys=True),
                ", ".join(dumped) or MISSING,
            ),
        )
