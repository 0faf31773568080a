"""report.md and report.html: the page a responder opens first.

Dumps ranked by their worst finding, a severity chart, findings grouped by kind across the fleet,
then every finding with its evidence (each grouped entry links to it), then the dumps that failed.
Everything that came from a dump is escaped: a module name may hold markup or Markdown.
"""

from __future__ import annotations

import html
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List

from .records import ADDED_FIELDS, SEVERITIES, severity_rank

#: Columns shown in a finding's evidence block, in this order, when present; the rest follow.
_LEAD = ("Kind", "Rule", "Severity", "Confidence", "Process", "PID", "Start", "End", "Address", "Module")
_EVIDENCE = ("Hexdump", "Disassembly", "Strings")
_META = ADDED_FIELDS | {"__children"}
_COLOURS = {
    "critical": "#b00020",
    "high": "#e65100",
    "medium": "#f9a825",
    "low": "#1976d2",
    "info": "#757575",
}


def _ranked_dumps(dumps: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    return sorted(
        dumps,
        key=lambda dump: (
            -severity_rank(dump.get("worst") or ""),
            -(dump.get("worst") is not None),
            -dump.get("findings", 0),
            dump["dump"],
        ),
    )


def _groups(findings: List[Dict[str, Any]]) -> List[tuple]:
    grouped: Dict[tuple, List[Dict[str, Any]]] = defaultdict(list)
    for finding in findings:
        grouped[(finding["plugin"], finding["kind"])].append(finding)
    return sorted(
        grouped.items(),
        key=lambda item: (-max(severity_rank(f["severity"]) for f in item[1]), -len(item[1]), item[0]),
    )


def _worst(findings: List[Dict[str, Any]]) -> str:
    return max((finding["severity"] for finding in findings), key=severity_rank)


def _value(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return hex(value) if value > 0xFFFF else str(value)
    return "" if value is None else str(value)


def _evidence_items(finding: Dict[str, Any]) -> List[tuple]:
    names = [name for name in _LEAD if name in finding]
    names += sorted(
        name for name in finding if name not in _META and name not in names and name not in _EVIDENCE
    )
    names += [name for name in _EVIDENCE if finding.get(name)]
    return [(name, _value(finding[name])) for name in names if finding.get(name) not in (None, "")]


def _counts(findings: List[Dict[str, Any]]) -> Dict[str, int]:
    counts = {severity: 0 for severity in SEVERITIES}
    for finding in findings:
        counts[finding["severity"] if finding["severity"] in counts else "info"] += 1
    return counts


def _md_text(text: Any) -> str:
    """Inline Markdown for input-derived text: no markup survives, pipes cannot break a table."""
    cleaned = str(text).replace("\\", "\\\\").replace("|", "\\|").replace("`", "'").replace("\n", " ")
    for char in "*_[]<>#":
        cleaned = cleaned.replace(char, "\\" + char)
    return cleaned


def markdown(dumps: List[Dict[str, Any]], findings: List[Dict[str, Any]]) -> str:
    counts = _counts(findings)
    errors = [dump for dump in dumps if dump["status"] == "error"]
    out = ["# WMI triage report", ""]
    out.append(f"{len(dumps)} dumps, {len(findings)} findings, {len(errors)} dumps could not be read.")
    out += ["", "## Findings by severity", "", "```"]
    peak = max(counts.values(), default=0) or 1
    for severity in SEVERITIES:
        out.append(f"{severity:<9} {counts[severity]:>6}  {'#' * round(40 * counts[severity] / peak)}")
    out += [
        "```",
        "",
        "## Dumps, worst first",
        "",
        "| worst | findings | status | dump | sha256 |",
        "|---|---|---|---|---|",
    ]
    for dump in _ranked_dumps(dumps):
        out.append(
            f"| {dump.get('worst') or '-'} | {dump.get('findings', 0)} | {dump['status']} | "
            f"{_md_text(dump['dump'])} | {dump['sha256'][:16]} |"
        )
    out += ["", "## Findings by kind across the fleet", ""]
    out += ["| worst | kind | plugin | findings | dumps | first finding |", "|---|---|---|---|---|---|"]
    for (plugin, kind), members in _groups(findings):
        first = members[0]["finding_id"]
        out.append(
            f"| {_worst(members)} | {_md_text(kind)} | {plugin} | {len(members)} | "
            f"{len({m['sha256'] for m in members})} | [{first}](#{first}) |"
        )
    out += ["", "## Evidence", ""]
    for finding in sorted(
        findings, key=lambda f: (-severity_rank(f["severity"]), f["dump"], f["finding_id"])
    ):
        out += [f'<a id="{finding["finding_id"]}"></a>', ""]
        out += [f"### {finding['severity']} {_md_text(finding['kind'])} ({finding['finding_id']})", ""]
        out += [f"{_md_text(finding['message'])}", ""]
        out += [f"- dump: {_md_text(finding['dump'])} (sha256 {finding['sha256']})"]
        for name, value in _evidence_items(finding):
            if name in _EVIDENCE:
                out += [f"- {name}:", "", "```", value.replace("```", "'''"), "```"]
            else:
                out.append(f"- {name}: {_md_text(value)}")
        out.append("")
    if errors:
        out += ["## Dumps that could not be read", ""]
        out += [f"- {_md_text(dump['dump'])}: {_md_text(dump.get('error') or '')}" for dump in errors]
    return "\n".join(out) + "\n"


def _h(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _chart(counts: Dict[str, int]) -> str:
    peak = max(counts.values(), default=0) or 1
    bars = []
    for row, severity in enumerate(SEVERITIES):
        width = round(300 * counts[severity] / peak)
        y = 24 * row
        bars.append(
            f'<text x="0" y="{y + 15}">{severity}</text>'
            f'<rect x="70" y="{y + 3}" width="{width}" height="16" fill="{_COLOURS[severity]}"/>'
            f'<text x="{76 + width}" y="{y + 15}">{counts[severity]}</text>'
        )
    return f'<svg width="440" height="{24 * len(SEVERITIES)}" role="img">{"".join(bars)}</svg>'


def html_page(dumps: List[Dict[str, Any]], findings: List[Dict[str, Any]]) -> str:
    counts = _counts(findings)
    errors = [dump for dump in dumps if dump["status"] == "error"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>WMI triage report</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}"
        "pre{background:#f4f4f4;padding:6px;overflow-x:auto}.sev{font-weight:bold}</style></head><body>",
        "<h1>WMI triage report</h1>",
        f"<p>{len(dumps)} dumps, {len(findings)} findings, {len(errors)} dumps could not be read.</p>",
        "<h2>Findings by severity</h2>",
        _chart(counts),
        "<h2>Dumps, worst first</h2><table><tr><th>worst</th><th>findings</th><th>status</th>"
        "<th>dump</th><th>sha256</th></tr>",
    ]
    for dump in _ranked_dumps(dumps):
        worst = dump.get("worst") or "-"
        parts.append(
            f"<tr><td class='sev' style='color:{_COLOURS.get(worst, '#000')}'>{_h(worst)}</td>"
            f"<td>{dump.get('findings', 0)}</td><td>{_h(dump['status'])}</td><td>{_h(dump['dump'])}</td>"
            f"<td><code>{_h(dump['sha256'][:16])}</code></td></tr>"
        )
    parts.append(
        "</table><h2>Findings by kind across the fleet</h2><table><tr><th>worst</th><th>kind</th>"
        "<th>plugin</th><th>findings</th><th>dumps</th><th>evidence</th></tr>"
    )
    for (plugin, kind), members in _groups(findings):
        links = " ".join(f"<a href='#{_h(m['finding_id'])}'>{_h(m['finding_id'])}</a>" for m in members[:20])
        more = f" and {len(members) - 20} more" if len(members) > 20 else ""
        parts.append(
            f"<tr><td class='sev'>{_h(_worst(members))}</td><td>{_h(kind)}</td><td>{_h(plugin)}</td>"
            f"<td>{len(members)}</td><td>{len({m['sha256'] for m in members})}</td>"
            f"<td>{links}{more}</td></tr>"
        )
    parts.append("</table><h2>Evidence</h2>")
    for finding in sorted(
        findings, key=lambda f: (-severity_rank(f["severity"]), f["dump"], f["finding_id"])
    ):
        parts.append(
            f"<h3 id='{_h(finding['finding_id'])}'>{_h(finding['severity'])} {_h(finding['kind'])}</h3>"
            f"<p>{_h(finding['message'])}</p><p>dump {_h(finding['dump'])} (sha256 "
            f"<code>{_h(finding['sha256'])}</code>)</p><table>"
        )
        for name, value in _evidence_items(finding):
            shown = f"<pre>{_h(value)}</pre>" if name in _EVIDENCE else _h(value)
            parts.append(f"<tr><th>{_h(name)}</th><td>{shown}</td></tr>")
        parts.append("</table>")
    if errors:
        parts.append("<h2>Dumps that could not be read</h2><ul>")
        parts += [f"<li>{_h(dump['dump'])}: {_h(dump.get('error') or '')}</li>" for dump in errors]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_reports(out_dir: Path, dumps: List[Dict[str, Any]], findings: List[Dict[str, Any]]) -> None:
    (out_dir / "report.md").write_text(markdown(dumps, findings), encoding="utf-8")
    (out_dir / "report.html").write_text(html_page(dumps, findings), encoding="utf-8")
