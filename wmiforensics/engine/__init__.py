"""Detection engine: backend-neutral process facts in, explained findings out."""

from .allowlist import AllowList
from .engine import Analysis, analyse
from .facts import HandleFact, ModuleFact, PageChange, ParentFact, ProcessFacts, RegionFact, ThreadFact
from .findings import Confidence, Finding, Severity

__all__ = [
    "AllowList",
    "Analysis",
    "Confidence",
    "Finding",
    "HandleFact",
    "ModuleFact",
    "PageChange",
    "ParentFact",
    "ProcessFacts",
    "RegionFact",
    "Severity",
    "ThreadFact",
    "analyse",
]
