"""``wmi-forensics scan -f DUMP``: the main plugins on one dump, a summary a person reads in 100 columns."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any, Dict, List

from ..engine.findings import Severity
from ..errors import InputError
from ..triage.dumps import sha256_of
from ..triage.records import SEVERITIES, dump_line, finding_lines, severity_rank, write_jsonl
from ..triage.report import write_reports
from ..triage.worker import triage_dump
from ..vol.common import check_input_file, escape_control
from . import EXIT_BAD_INPUT, EXIT_CLEAN, EXIT_FINDINGS, plugin_options

WIDTH = 100
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _fit(text: str, width: int = WIDTH) -> str:
    """One terminal line: control characters from the input shown escaped, cut with an ellipsis."""
    text = _UNPRINTABLE.sub(lambda match: f"\\x{ord(match.group()):02x}", text)
    return text if len(text) <= width else text[: width - 3] + "..."


def _where(finding: Dict[str, Any]) -> str:
    for column in ("Start", "Address"):
        if isinstance(finding.get(column), int):
            return hex(finding[column])
    return finding.get("Silo") or ""


def summary(record: Dict[str, Any], findings: List[Dict[str, Any]], out_dir: Path, top: int) -> List[str]:
    ran = ", ".join(record["plugins"]) or "no plugin"
    lines = [
        _fit(f"{Path(record['dump']).name}: {record.get('kind')}, sha256 {record['sha256'][:16]}, ran {ran}")
    ]
    for name, result in record["plugins"].items():
        if result["error"]:
            lines.append(_fit(f"  {name} could not run: {result['error']}"))
    counts = dump_line(record, findings)["by_severity"]
    shown = ", ".join(f"{counts[severity]} {severity}" for severity in SEVERITIES if counts[severity])
    lines.append(f"findings: {shown or 'none'}")
    ranked = sorted(findings, key=lambda finding: -severity_rank(finding["severity"]))
    if ranked:
        lines.append(f"top findings{f' ({top} of {len(ranked)})' if len(ranked) > top else ''}:")
    for finding in ranked[:top]:
        reason = finding.get("Reason") or finding.get("Description") or ""
        lines.append(_fit(f"  {finding['severity']:<8} {finding['kind']:<24} {_where(finding):<15} {reason}"))
    lines.append(_fit(f"full rows: {out_dir / 'findings.jsonl'}"))
    lines.append(_fit(f"report:    {out_dir / 'report.md'} and report.html"))
    return lines


def run_scan(args: argparse.Namespace) -> int:
    path = os.path.abspath(args.file)
    if not os.path.lexists(path):
        sys.stderr.write(f"wmi-forensics: error: {escape_control(args.file)}: no such file\n")
        return EXIT_BAD_INPUT
    try:
        check_input_file(path)
    except InputError as error:
        sys.stderr.write(f"wmi-forensics: error: {escape_control(str(error))}\n")
        return EXIT_BAD_INPUT
    out_dir = args.out or Path(f"wmi-forensics-{Path(path).name}")
    out_dir.mkdir(parents=True, exist_ok=True)
    record = triage_dump(
        path,
        sha256_of(path),
        plugins=args.plugins,
        options=plugin_options(args),
        symbol_dirs=args.symbol_dirs,
        offline=not args.online,
    )
    findings = list(finding_lines(record))
    dumps = [dump_line(record, findings)]
    with open(out_dir / "findings.jsonl", "w", encoding="utf-8") as handle:
        write_jsonl(handle, findings)
    with open(out_dir / "dumps.jsonl", "w", encoding="utf-8") as handle:
        write_jsonl(handle, dumps)
    write_reports(out_dir, dumps, findings)
    print("\n".join(summary(record, findings, out_dir, args.top)))
    if record["status"] == "error":
        sys.stderr.write(_fit(f"wmi-forensics: error: {record['error']}", 1000) + "\n")
        return EXIT_BAD_INPUT
    threshold = Severity.parse(args.fail_on)
    failing = [f for f in findings if severity_rank(f["severity"]) >= int(threshold)]
    return EXIT_FINDINGS if failing else EXIT_CLEAN
