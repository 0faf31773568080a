"""The one result model every detector returns and every renderer shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import List, Optional


class Severity(IntEnum):
    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(level.name.lower() for level in cls)
            raise ValueError(f"unknown severity {text!r}; use one of {names}") from None

    def raised(self, steps: int = 1) -> Severity:
        return Severity(min(max(self + steps, Severity.INFO), Severity.CRITICAL))


class Confidence(IntEnum):
    LOW = 1
    MEDIUM = 2
    HIGH = 3


@dataclass
class Finding:
    """One piece of memory or one loader fact that looks like injected or tampered code."""

    kind: str
    severity: Severity
    confidence: Confidence
    start: int
    end: int
    reason: str
    protection: str = "-"
    initial_protection: str = "-"
    region_type: str = "-"
    #: Backing module name, or "unbacked".
    module: str = "unbacked"
    evidence: List[str] = field(default_factory=list)
    disassembly: str = ""
    hexdump: str = ""
    #: Why the severity was lowered (JIT host, RWX->RX pattern...), shown so nothing is hidden silently.
    ranked_down: List[str] = field(default_factory=list)
    #: Where a PE starts inside the range, for --dump's PE reconstruction.
    pe_base: Optional[int] = None
    pid: Optional[int] = None
    process: str = ""

    @property
    def size(self) -> int:
        return self.end - self.start

    def rank_down(self, why: str, steps: int = 1) -> None:
        self.severity = self.severity.raised(-steps)
        self.ranked_down.append(why)
