"""Compiled rule packs and what each rule's meta says about it.

Bundled rules declare ``severity``, ``description``, ``mitre_attack``, ``reference`` and a
``scope`` (the memory the rule is meant for). User rules without meta get scope ``any`` and
severity ``medium``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Tuple

import yara

from ..errors import InputError

SCOPES = ("non-image", "unbacked-exec", "private", "any")
SEVERITIES = ("info", "low", "medium", "high", "critical")
MAX_RULE_SOURCE = 16 << 20


@dataclass(frozen=True)
class RuleInfo:
    identifier: str
    tags: Tuple[str, ...]
    meta: Dict[str, object] = field(default_factory=dict, hash=False, compare=False)

    @property
    def scope(self) -> str:
        value = str(self.meta.get("scope", "any"))
        return value if value in SCOPES else "any"

    @property
    def severity(self) -> str:
        value = str(self.meta.get("severity", "medium")).lower()
        return value if value in SEVERITIES else "medium"

    @property
    def description(self) -> str:
        return str(self.meta.get("description", ""))

    @property
    def mitre_attack(self) -> str:
        return str(self.meta.get("mitre_attack", ""))


def bundled_rules_dir() -> Path:
    """``yara_rules/`` beside the package (source checkout), or its installed copy."""
    override = os.environ.get("WMI_FORENSICS_RULES")
    candidates = [Path(override)] if override else []
    candidates += [
        Path(__file__).resolve().parents[2] / "yara_rules",
        Path(sys.prefix) / "share" / "wmi-forensics" / "yara_rules",
    ]
    for candidate in candidates:
        if candidate.is_dir() and any(candidate.glob("*.yar")):
            return candidate
    raise InputError(
        "the bundled yara_rules/ folder was not found; give rules with --yara-file or --yara-rules"
    )


class RulePack:
    """A compiled set of rules plus each rule's meta, keyed by identifier."""

    def __init__(self, compiled: yara.Rules, source: str) -> None:
        self.compiled = compiled
        self.source = source
        self.rules: Dict[str, RuleInfo] = {
            rule.identifier: RuleInfo(rule.identifier, tuple(rule.tags), dict(rule.meta)) for rule in compiled
        }

    @classmethod
    def from_directory(cls, directory: Optional[Path] = None) -> RulePack:
        folder = directory or bundled_rules_dir()
        files = sorted(folder.glob("*.yar"))
        if not files:
            raise InputError(f"{folder}: no .yar files")
        return cls._compile({path.stem: str(path) for path in files}, None, str(folder))

    @classmethod
    def from_file(cls, path: str) -> RulePack:
        location = Path(path)
        if not location.is_file():
            raise InputError(f"YARA rule file not found: {path}")
        if location.stat().st_size > MAX_RULE_SOURCE:
            raise InputError(f"{path}: rule file larger than {MAX_RULE_SOURCE >> 20} MiB")
        return cls._compile({"user": str(location)}, None, str(location))

    @classmethod
    def from_source(cls, source: str) -> RulePack:
        return cls._compile(None, source, "--yara-rules")

    @classmethod
    def _compile(cls, filepaths: Optional[Dict[str, str]], source: Optional[str], label: str) -> RulePack:
        try:
            if filepaths is not None:
                compiled = yara.compile(filepaths=filepaths)
            else:
                compiled = yara.compile(source=source)
        except yara.Error as error:
            raise InputError(f"YARA rules from {label} do not compile: {error}") from None
        return cls(compiled, label)

    def info(self, identifier: str) -> RuleInfo:
        return self.rules.get(identifier) or RuleInfo(identifier, ())

    def __len__(self) -> int:
        return len(self.rules)
