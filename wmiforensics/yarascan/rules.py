"""Compiled rule packs, the YARA engine that runs them, and what each rule's meta says about it.

The engine is yara-x (PyPI ``yara-x``, the engine Volatility 2.28 prefers) when it is installed, and
yara-python otherwise; ``WMI_FORENSICS_YARA_ENGINE=yara-python`` (or ``yara-x``) forces one. Rule sets
that yara-x rejects but yara-python accepts (``entrypoint``, other legacy syntax) fall back to
yara-python unless an engine was forced. Both give the same rows: the pack is written to compile on
both and the tests run it through both.

Bundled rules declare ``severity``, ``description``, ``mitre_attack``, ``reference`` and a
``scope`` (the memory the rule is meant for). User rules without meta get scope ``any`` and
severity ``medium``. Rules that read external variables (signature-base's ``filename``,
``filepath``, ``extension``, ``filetype``, ``owner``) get their values from ``NAME=VALUE`` defines.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

from ..errors import InputError

SCOPES = ("non-image", "unbacked-exec", "private", "any")
SEVERITIES = ("info", "low", "medium", "high", "critical")
MAX_RULE_SOURCE = 16 << 20
ENGINES = ("yara-x", "yara-python")
ENGINE_ENV = "WMI_FORENSICS_YARA_ENGINE"
#: Instances kept per string and scan; a string that matches more often still makes its rule match.
MAX_MATCHES_PER_STRING = 1000
MAX_MATCHED_BYTES = 64

ExternalValue = Union[bool, int, float, str]
#: (string identifier, offset in the scanned buffer, matched bytes) for one string instance.
StringMatch = Tuple[str, int, bytes]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


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


def parse_defines(items: Optional[Sequence[str]]) -> Dict[str, ExternalValue]:
    """``["NAME=VALUE", ...]`` as external variables: ``true``/``false`` are booleans, whole numbers
    are integers, anything else (including an empty value) is a string."""
    defines: Dict[str, ExternalValue] = {}
    for item in items or ():
        name, equals, text = str(item).partition("=")
        name = name.strip()
        if not equals or not _IDENTIFIER.match(name):
            raise InputError(f"--yara-define expects NAME=VALUE with NAME an identifier, got {item[:80]!r}")
        value: ExternalValue = text
        if text.lower() in ("true", "false"):
            value = text.lower() == "true"
        elif re.fullmatch(r"[-+]?(0x[0-9a-fA-F]+|[0-9]+)", text):
            value = int(text, 0)
        defines[name] = value
    return defines


def engine_name(preferred: Optional[str] = None) -> str:
    """The engine to use: ``preferred``, else the environment's choice, else yara-x if installed."""
    wanted = preferred or os.environ.get(ENGINE_ENV) or ""
    if wanted and wanted not in ENGINES:
        raise InputError(f"{ENGINE_ENV}={wanted!r}: choose one of {', '.join(ENGINES)}")
    order = [wanted] if wanted else list(ENGINES)
    for name in order:
        try:
            importlib.import_module(name.replace("-", "_") if name == "yara-x" else "yara")
        except ImportError:
            continue
        return name
    raise InputError(f"no YARA engine: install {' or '.join(order)}")


def _meta_value(value: object) -> object:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


class RulePack:
    """A compiled set of rules, the engine that runs it, and each rule's meta keyed by identifier.

    yara-python lists every rule up front; yara-x only describes the rules that match, so under
    yara-x ``rules`` fills as rules match.
    """

    def __init__(self, engine: str, compiled: object, label: str, defines: Dict[str, ExternalValue]) -> None:
        self.engine = engine
        self.compiled = compiled
        self.source = label
        self.defines = dict(defines)
        self.rules: Dict[str, RuleInfo] = {}
        #: Whether ``rules`` describes every rule (yara-python) or only those seen matching (yara-x).
        self.lists_every_rule = engine == "yara-python"
        if engine == "yara-python":
            for rule in compiled:  # type: ignore[attr-defined]
                self.rules[rule.identifier] = RuleInfo(rule.identifier, tuple(rule.tags), dict(rule.meta))
            self._scanner = None
        else:
            import yara_x

            self._scanner = yara_x.Scanner(compiled)
            self._scanner.max_matches_per_pattern(MAX_MATCHES_PER_STRING)

    @classmethod
    def from_directory(
        cls,
        directory: Optional[Path] = None,
        defines: Optional[Dict[str, ExternalValue]] = None,
        engine: Optional[str] = None,
    ) -> RulePack:
        folder = directory or bundled_rules_dir()
        files = sorted(folder.glob("*.yar"))
        if not files:
            raise InputError(f"{folder}: no .yar files")
        return cls._compile({path.stem: path for path in files}, str(folder), defines, engine)

    @classmethod
    def from_file(
        cls, path: str, defines: Optional[Dict[str, ExternalValue]] = None, engine: Optional[str] = None
    ) -> RulePack:
        location = Path(path)
        if not location.is_file():
            raise InputError(f"YARA rule file not found: {path}")
        if location.stat().st_size > MAX_RULE_SOURCE:
            raise InputError(f"{path}: rule file larger than {MAX_RULE_SOURCE >> 20} MiB")
        return cls._compile({"user": location}, str(location), defines, engine)

    @classmethod
    def from_source(
        cls, source: str, defines: Optional[Dict[str, ExternalValue]] = None, engine: Optional[str] = None
    ) -> RulePack:
        if len(source) > MAX_RULE_SOURCE:
            raise InputError(f"--yara-rules text larger than {MAX_RULE_SOURCE >> 20} MiB")
        return cls._compile({"user": source}, "--yara-rules", defines, engine)

    @classmethod
    def _compile(
        cls,
        sources: Dict[str, Union[Path, str]],
        label: str,
        defines: Optional[Dict[str, ExternalValue]],
        engine: Optional[str],
    ) -> RulePack:
        name = engine_name(engine)
        values = dict(defines or {})
        texts = {
            namespace: (item.read_bytes().decode("utf-8", "replace") if isinstance(item, Path) else item)
            for namespace, item in sources.items()
        }
        try:
            compiled = _compile_yara_x(texts, values) if name == "yara-x" else _compile_yara(texts, values)
        except _CompileFailure as error:
            fallback = cls._legacy_fallback(name, engine, texts, values)
            if fallback is None:
                raise InputError(f"YARA rules from {label} do not compile ({name}): {error}") from None
            return cls("yara-python", fallback, label, values)
        return cls(name, compiled, label, values)

    @staticmethod
    def _legacy_fallback(
        name: str, engine: Optional[str], texts: Dict[str, str], values: Dict[str, ExternalValue]
    ) -> Optional[object]:
        """yara-python's compilation of rules yara-x rejects (``entrypoint``, legacy syntax), when the
        engine was not chosen explicitly and yara-python is installed; None otherwise."""
        if name != "yara-x" or engine or os.environ.get(ENGINE_ENV):
            return None
        try:
            return _compile_yara(texts, values)
        except (_CompileFailure, ImportError):
            return None

    def info(self, identifier: str) -> RuleInfo:
        return self.rules.get(identifier) or RuleInfo(identifier, ())

    def matches(self, data: bytes) -> Iterator[Tuple[RuleInfo, List[StringMatch]]]:
        """Every rule that matches ``data`` with its string instances (offsets into ``data``)."""
        if self._scanner is None:
            for match in self.compiled.match(data=data):  # type: ignore[attr-defined]
                found = [
                    (string.identifier, instance.offset, bytes(instance.matched_data[:MAX_MATCHED_BYTES]))
                    for string in match.strings
                    for instance in string.instances
                ]
                yield self.info(match.rule), found
            return
        for rule in self._scanner.scan(data).matching_rules:
            info = self.rules.get(rule.identifier)
            if info is None:
                meta = {key: _meta_value(value) for key, value in rule.metadata}
                info = self.rules[rule.identifier] = RuleInfo(rule.identifier, tuple(rule.tags), meta)
            found = [
                (
                    pattern.identifier,
                    hit.offset,
                    data[hit.offset : hit.offset + min(hit.length, MAX_MATCHED_BYTES)],
                )
                for pattern in rule.patterns
                for hit in pattern.matches
            ]
            yield info, found

    def __len__(self) -> int:
        return len(self.rules)


class _CompileFailure(Exception):
    """Either engine's compile error, carrying its message."""


def _compile_yara(texts: Dict[str, str], defines: Dict[str, ExternalValue]) -> object:
    import yara

    try:
        return yara.compile(sources=texts, externals=defines or None)
    except yara.Error as error:
        raise _CompileFailure(str(error)) from None


def _compile_yara_x(texts: Dict[str, str], defines: Dict[str, ExternalValue]) -> object:
    import yara_x

    compiler = yara_x.Compiler()
    try:
        for name, value in defines.items():
            compiler.define_global(name, value)
        for namespace, text in texts.items():
            compiler.new_namespace(namespace)
            compiler.add_source(text, origin=namespace)
        return compiler.build()
    except (yara_x.CompileError, TypeError, ValueError) as error:
        raise _CompileFailure(" ".join(str(error).split())[:2000]) from None
