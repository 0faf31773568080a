"""From a worker's record of one dump to the lines of ``findings.jsonl`` and ``dumps.jsonl``.

Finding lines are flat so Timesketch and SIEMs index every column: the plugin's columns as ``vol -r
json`` names them, plus the dump's path and sha256, the plugin, a normalised ``kind`` and
``severity``, and Timesketch's three required fields (``message``, ``datetime``, ``timestamp_desc``).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List

SEVERITIES = ("critical", "high", "medium", "low", "info")
#: Fields a finding line adds to the plugin's own columns.
ADDED_FIELDS = frozenset(
    {
        "message",
        "datetime",
        "timestamp",
        "timestamp_desc",
        "dump",
        "sha256",
        "plugin",
        "kind",
        "severity",
        "finding_id",
    }
)


def severity_rank(severity: str) -> int:
    """Higher is worse; unknown text ranks as info."""
    name = (severity or "info").lower()
    return len(SEVERITIES) - 1 - SEVERITIES.index(name) if name in SEVERITIES else 0


def _kind(plugin: str, row: Dict[str, Any]) -> str:
    for column in ("Kind", "Rule", "Class", "Type"):
        if row.get(column):
            return str(row[column])
    return plugin


def _reason(row: Dict[str, Any]) -> str:
    for column in ("Reason", "Description", "Evidence"):
        if row.get(column):
            return str(row[column])
    return ""


def finding_lines(record: Dict[str, Any]) -> Iterator[Dict[str, Any]]:
    """One line per row of every plugin that ran on the dump (children stay under ``__children``)."""
    dump_name = Path(record["dump"]).name
    for plugin, result in record.get("plugins", {}).items():
        for index, row in enumerate(result.get("rows", [])):
            columns = {key: value for key, value in row.items() if key != "__children" or value}
            severity = str(row.get("Severity") or "info").lower()
            kind = _kind(plugin, row)
            process = row.get("Process")
            where = f"{process} ({row.get('PID')}) in {dump_name}" if process else dump_name
            line = {
                **columns,
                "message": f"{plugin} {severity} {kind}: {_reason(row)} [{where}]",
                "datetime": record.get("datetime"),
                "timestamp_desc": record.get("timestamp_desc", "Unknown"),
                "dump": record["dump"],
                "sha256": record["sha256"],
                "plugin": plugin,
                "kind": kind,
                "severity": severity,
                "finding_id": f"{record['sha256'][:12]}-{plugin}-{index}",
            }
            if record.get("datetime"):
                line["timestamp"] = int(datetime.fromisoformat(record["datetime"]).timestamp() * 1_000_000)
            yield line


def dump_line(record: Dict[str, Any], findings: List[Dict[str, Any]]) -> Dict[str, Any]:
    counts = {severity: 0 for severity in SEVERITIES}
    for finding in findings:
        counts[finding["severity"] if finding["severity"] in counts else "info"] += 1
    worst = max((finding["severity"] for finding in findings), key=severity_rank, default=None)
    return {
        "dump": record["dump"],
        "sha256": record["sha256"],
        "kind": record.get("kind"),
        "status": record["status"],
        "error": record.get("error"),
        "duration": record.get("duration"),
        "datetime": record.get("datetime"),
        "findings": len(findings),
        "by_severity": counts,
        "worst": worst,
        "plugins": {
            name: {
                "rows": len(result.get("rows", [])),
                "error": result.get("error"),
                "notes": result.get("notes"),
            }
            for name, result in record.get("plugins", {}).items()
        },
    }


def read_jsonl(path: Path) -> List[Dict[str, Any]]:
    """Lines of a JSONL file; a line cut short by an interrupted run is dropped."""
    if not path.exists():
        return []
    lines = []
    with open(path, encoding="utf-8") as handle:
        for text in handle:
            try:
                lines.append(json.loads(text))
            except json.JSONDecodeError:
                continue
    return lines


def write_jsonl(handle, lines: Iterable[Dict[str, Any]]) -> None:
    for line in lines:
        handle.write(json.dumps(line, sort_keys=True) + "\n")
    handle.flush()
