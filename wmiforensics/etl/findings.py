"""Findings from decoded ETW events: a permanent WMI subscription registered (5861) with its consumer,
a WMI provider loaded from an unusual path (5857), and AMSI content that matches the bundled YARA rules.

Volatility-free: each event comes with where it was found (logger, buffer address, record offset), and
every finding carries that location as its evidence address.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Iterator, List, Optional

from ..engine.findings import Confidence, Finding, Severity
from . import manifests
from .events import Event, display_value

# Where Windows keeps its own WMI providers (the paths the built-in providers register).
USUAL_PROVIDER_DIRS = (
    "%systemroot%\\system32\\wbem\\",
    "%systemroot%\\syswow64\\wbem\\",
    "%windir%\\system32\\wbem\\",
    "%windir%\\syswow64\\wbem\\",
    "c:\\windows\\system32\\wbem\\",
    "c:\\windows\\syswow64\\wbem\\",
    "%systemroot%\\system32\\",
    "c:\\windows\\system32\\",
    "%programfiles%\\",
    "c:\\program files\\",
    "c:\\program files (x86)\\",
)
USER_WRITABLE = re.compile(r"\\(users|programdata|temp|tmp|appdata|public|perflogs)\\|^\\\\", re.IGNORECASE)
AMSI_TRACELOGGING_FIELDS = ("Script", "Content", "content")
MAX_SCAN_BYTES = 16 << 20


@dataclass
class Located:
    """An event and where it was found."""

    event: Event
    silo: str
    logger: str
    buffer_address: int
    #: The record's timestamp as a UTC time, or why it is missing (the logger's clock cannot place it).
    time: Optional[datetime] = None
    time_note: Optional[str] = None

    @property
    def address(self) -> int:
        return self.buffer_address + self.event.record.offset


def _finding(item: Located, kind: str, severity: Severity, reason: str, evidence: List[str]) -> Finding:
    record = item.event.record
    base = [
        f"logger {item.logger} ({item.silo})",
        f"buffer 0x{item.buffer_address:x} +0x{record.offset:x}",
        f"timestamp {record.timestamp} ({_when(item)})",
        f"pid {record.process_id} tid {record.thread_id}",
    ]
    return Finding(
        kind,
        severity,
        Confidence.HIGH,
        item.address,
        item.address + record.size,
        reason,
        module=item.logger,
        evidence=base + evidence,
        region_type="etw buffer",
        pid=record.process_id,
        process="kernel",
    )


def _when(item: Located) -> str:
    """The event's UTC time for a timeline, or why its logger's clock cannot place it."""
    if item.time is not None:
        return item.time.strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    return item.time_note or "time unknown"


def unusual_provider_path(path: str) -> Optional[str]:
    """Why a provider DLL path is unusual, or None for the places providers normally live."""
    lowered = path.strip().strip('"').lower()
    if not lowered:
        return None
    if USER_WRITABLE.search(lowered):
        return "a user-writable or remote folder"
    if lowered.startswith(USUAL_PROVIDER_DIRS):
        return None
    return "outside the Windows and Program Files folders"


def event_findings(events: Iterable[Located], rules=None) -> Iterator[Finding]:
    """Findings for the events; ``rules`` is a `RulePack` (the bundled rules when None)."""
    for item in events:
        event = item.event
        provider = event.record.provider
        if event.decoder == "manifest" and provider == manifests.WMI_ACTIVITY:
            yield from _wmi_activity(item)
        if _is_amsi(event):
            content = _amsi_content(event)
            if content:
                yield from _amsi(item, content, rules)


def _wmi_activity(item: Located) -> Iterator[Finding]:
    fields = item.event.fields
    if item.event.event_id == 5861:
        consumer = display_value(fields.get("CONSUMER", ""))
        namespace = display_value(fields.get("Namespace", ""))
        yield _finding(
            item,
            "wmi_permanent_subscription",
            Severity.HIGH,
            f"a permanent WMI event subscription was registered in {namespace}: filter "
            f"{display_value(fields.get('ESS', ''))} bound to consumer {consumer}",
            [f"PossibleCause: {display_value(fields.get('PossibleCause', ''), 2048)}"],
        )
    elif item.event.event_id == 5857:
        path = str(fields.get("ProviderPath", ""))
        why = unusual_provider_path(path)
        if why:
            yield _finding(
                item,
                "wmi_provider_unusual_path",
                Severity.HIGH,
                f"WMI provider {display_value(fields.get('ProviderName', ''))} was loaded from "
                f"{display_value(path)}: {why}",
                [f"host {display_value(fields.get('HostProcess', ''))} pid {fields.get('ProcessID')}"],
            )


def _is_amsi(event: Event) -> bool:
    if event.record.provider == manifests.AMSI:
        return True
    return event.decoder == "tracelogging" and "amsi" in event.provider_name.lower()


def _amsi_content(event: Event) -> bytes:
    fields = event.fields
    content = fields.get("content")
    if isinstance(content, (bytes, bytearray)):
        return bytes(content[:MAX_SCAN_BYTES])
    for name in AMSI_TRACELOGGING_FIELDS:
        value = fields.get(name)
        if isinstance(value, str):
            return value.encode("utf-16-le")[:MAX_SCAN_BYTES]
    return b""


def _amsi(item: Located, content: bytes, rules) -> Iterator[Finding]:
    if rules is None:
        from ..yarascan.rules import RulePack

        rules = RulePack.from_directory()
    for info, _strings in rules.matches(content):
        yield _finding(
            item,
            "amsi_yara_match",
            Severity.parse(info.severity),
            f"AMSI scan content matches YARA rule {info.identifier}: {info.description}",
            [
                f"rule {info.identifier}",
                f"content {len(content)} bytes",
                f"ATT&CK {info.mitre_attack or '-'}",
            ],
        )
