"""Run every detector over one process and apply the user's noise controls."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from . import branches, dotnet, hookengines, integrity, stacks
from .allowlist import AllowList
from .detectors import DETECTORS, Context, Detector
from .facts import ProcessFacts
from .findings import Finding, Severity

#: Every check, in report order: regions, threads and modules, then thread stacks and the code
#: integrity of loaded system modules.
ALL_DETECTORS: List[Detector] = [
    *DETECTORS,
    stacks.detect_stack_returns,
    stacks.detect_sleep_chains,
    stacks.detect_spoofed_starts,
    integrity.detect_amsi_patches,
    branches.detect_flipped_branches,
    integrity.detect_inline_hooks,
    integrity.detect_syscall_stubs,
    integrity.detect_iat_hooks,
    dotnet.detect_unbacked_assemblies,
]


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
    for detector in ALL_DETECTORS:
        everything.extend(detector(context))
    everything = hookengines.group_hook_engines(context, everything)
    result = Analysis([], notes=list(facts.notes))
    for finding in _distinct(everything):
        finding.pid, finding.process = facts.pid, facts.name
        if allow_list is not None and allow_list.allows(finding, facts):
            result.allowed += 1
        elif finding.severity < min_severity:
            result.below_threshold += 1
        else:
            result.findings.append(finding)
    result.findings.sort(key=lambda item: (-item.severity, item.start, item.kind))
    return result


def _distinct(findings: List[Finding]) -> List[Finding]:
    """One finding per (kind, range, module, reason): a damaged list that revisits an entry (or
    two facts that say the same thing) must not repeat a finding; the repeat count is evidence."""
    seen: Dict[Tuple, Finding] = {}
    counts: Dict[Tuple, int] = {}
    for finding in findings:
        key = (finding.kind, finding.start, finding.end, finding.module, finding.reason)
        if key in seen:
            counts[key] += 1
            continue
        seen[key], counts[key] = finding, 1
    for key, finding in seen.items():
        if counts[key] > 1:
            finding.evidence.append(f"reported {counts[key]} times by the input's lists; shown once")
    return list(seen.values())
