"""User allow-lists: known-good findings to hide, written as plain text lines.

Format, one rule per line (``#`` starts a comment)::

    KIND [module=GLOB] [path=GLOB] [process=GLOB] [address=HEX[-HEX]]

``KIND`` is a finding kind (``exec_rwx``, ``etw_patch``...) or ``*``. Globs are case-insensitive
``fnmatch`` patterns. An address rule matches findings that lie inside the range. Every condition
on a line must hold. Example::

    exec_rwx        module=unbacked process=MyJitHost.exe
    module_user_path path=C:\\ProgramData\\Vendor\\*
    etw_patch       address=0x7ffe3a001050
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ..errors import InputError
from .facts import ProcessFacts
from .findings import Finding

_KEYS = ("module", "path", "process", "address")
MAX_RULES = 10_000


@dataclass(frozen=True)
class Rule:
    kind: str
    conditions: Dict[str, str] = field(default_factory=dict)
    address: Optional[Tuple[int, int]] = None
    line: int = 0

    def matches(self, finding: Finding, facts: ProcessFacts) -> bool:
        if self.kind != "*" and self.kind != finding.kind:
            return False
        module_path = self._module_path(finding, facts)
        values = {"module": finding.module, "path": module_path, "process": finding.process}
        for key, pattern in self.conditions.items():
            if not fnmatch.fnmatch((values.get(key) or "").lower(), pattern.lower()):
                return False
        if self.address is not None:
            low, high = self.address
            if not (low <= finding.start and finding.end - 1 <= high):
                return False
        return True

    @staticmethod
    def _module_path(finding: Finding, facts: ProcessFacts) -> str:
        for module in facts.modules:
            if module.base <= finding.start < module.end:
                return module.path
        return ""


@dataclass
class AllowList:
    rules: List[Rule]
    source: str = ""

    def allows(self, finding: Finding, facts: ProcessFacts) -> bool:
        return any(rule.matches(finding, facts) for rule in self.rules)

    @classmethod
    def parse(cls, text: str, source: str = "allow-list") -> AllowList:
        rules = []
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if len(rules) >= MAX_RULES:
                raise InputError(f"{source}: more than {MAX_RULES} rules")
            kind, *parts = line.split()
            conditions, address = {}, None
            for part in parts:
                key, sep, value = part.partition("=")
                if not sep or key not in _KEYS or not value:
                    raise InputError(
                        f"{source}:{number}: expected KEY=VALUE with KEY one of {', '.join(_KEYS)}: {part!r}"
                    )
                if key == "address":
                    address = _parse_range(value, source, number)
                else:
                    conditions[key] = value
            rules.append(Rule(kind, conditions, address, number))
        return cls(rules, source)

    @classmethod
    def load(cls, path: str) -> AllowList:
        location = Path(path)
        try:
            if location.stat().st_size > 4 << 20:
                raise InputError(f"{path}: allow-list larger than 4 MiB")
            text = location.read_text(encoding="utf-8", errors="replace")
        except OSError as error:
            raise InputError(f"cannot read allow-list {path}: {error.strerror or error}") from None
        return cls.parse(text, str(path))


def _parse_range(value: str, source: str, number: int) -> Tuple[int, int]:
    low_text, _, high_text = value.partition("-")
    try:
        low = int(low_text, 16)
        high = int(high_text, 16) if high_text else low
    except ValueError:
        raise InputError(f"{source}:{number}: address must be HEX or HEX-HEX: {value!r}") from None
    return (low, high) if low <= high else (high, low)
