"""Run every detector over one process and apply the user's noise controls."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from .allowlist import AllowList
from .detectors import DETECTORS, Context
from .facts import ProcessFacts
from .findings import Finding, Severity


@dataclass
class Analysis:
    findings: List[Finding]
    #: Findings hidden by --min-severity or the allow-list (counted so the user knows).
    below_threshold: int = 0
    allowed: int = 0
    notes: List[str] = field(default_factory=list)


def analyse(
    facts: ProcessFacts,
    *,
    min_severity: Severity = Severity.LOW,
    allow_list: Optional[AllowList] = None,
) -> Analysis:
    """All findings for ``facts``, most severe first, filtered by severity and allow-list."""
    context = Context.build(facts)
    everything: List[Finding] = []
    for detector in DETECTORS:
        everything.extend(detector(context))
    result = Analysis([], notes=list(facts.notes))
    for finding in everything:
        finding.pid, finding.process = facts.pid, facts.name
        if allow_list is not None and allow_list.allows(finding, facts):
            result.allowed += 1
        elif finding.severity < min_severity:
            result.below_threshold += 1
        else:
            result.findings.append(finding)
    result.findings.sort(key=lambda item: (-item.severity, item.start, item.kind))
    return result
