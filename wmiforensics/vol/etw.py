"""Rows for the ETW plugins: ``wmi.etwsilos``, ``wmi.etwloggers``, ``wmi.etwproviders``, ``wmi.etwtamper``."""

from __future__ import annotations

import datetime
from typing import Dict, Iterator, List, Optional, Tuple

from volatility3.framework.renderers import format_hints

from ..engine.findings import Finding
from ..etw import knowledge
from ..etw.reader import SiloEtw
from ..minidump.model import filetime_to_datetime
from .common import MISSING, hex_or_na

SILO_COLUMNS = [
    ("Silo", str),
    ("StateAddress", format_hints.Hex),
    ("Offset", format_hints.Hex),
    ("Field", str),
    ("Type", str),
    ("Value", str),
]


def silo_rows(silos: List[SiloEtw]) -> Iterator[tuple]:
    for silo in silos:
        address = hex_or_na(silo.address)
        yield (0, (silo.label, address, format_hints.Hex(0), "(logger slots)", MISSING, silo.slots_source))
        if silo.max_loggers is None and silo.address is not None:
            yield (
                0,
                (silo.label, address, format_hints.Hex(0), "MaxLoggers", MISSING, "64 (fixed on this build)"),
            )
        for offset, name, type_name, value in silo.fields:
            text = f"0x{value:x}" if isinstance(value, int) and value > 0xFFFF else str(value)
            yield (0, (silo.label, address, format_hints.Hex(offset), name, type_name, text))
        for note in silo.notes:
            yield (0, (silo.label, address, format_hints.Hex(0), "(warning)", MISSING, note))


LOGGER_COLUMNS = [
    ("Silo", str),
    ("Slot", int),
    ("Address", format_hints.Hex),
    ("LoggerId", int),
    ("Name", str),
    ("LogFile", str),
    ("InstanceGuid", str),
    ("LoggerMode", format_hints.Hex),
    ("ModeFlags", str),
    ("BufferSize", int),
    ("MinimumBuffers", int),
    ("MaximumBuffers", int),
    ("NumberOfBuffers", int),
    ("EventsLost", int),
    ("LoggerThread", format_hints.Hex),
    ("Consumers", str),
    ("Clock", str),
    ("StartTime", datetime.datetime),
    ("Problem", str),
]


def _int(fields, name):
    value = fields.get(name)
    return value if isinstance(value, int) else MISSING


def _clock(fields) -> str:
    parts = []
    if "ClockType" in fields:
        parts.append(knowledge.CLOCK_TYPES.get(fields["ClockType"], f"type {fields['ClockType']}"))
    if "GetCpuClock" in fields:
        kind = "routine" if fields.get("GetCpuClockIsPointer") else "index"
        parts.append(f"GetCpuClock {kind} 0x{fields['GetCpuClock']:x}")
    return ", ".join(parts) or MISSING


def logger_rows(silos: List[SiloEtw]) -> Iterator[tuple]:
    for silo in silos:
        for logger in silo.loggers:
            fields = logger.fields
            mode = fields.get("LoggerMode")
            start = filetime_to_datetime(fields.get("StartTime", 0) or 0)
            yield (
                0,
                (
                    silo.label,
                    logger.slot,
                    format_hints.Hex(logger.address),
                    _int(fields, "LoggerId"),
                    str(fields.get("LoggerName", "")) or MISSING,
                    str(fields.get("LogFileName", "")) or MISSING,
                    str(fields["InstanceGuid"]) if "InstanceGuid" in fields else MISSING,
                    hex_or_na(mode),
                    knowledge.logger_mode_names(mode) if isinstance(mode, int) else MISSING,
                    _int(fields, "BufferSize"),
                    _int(fields, "MinimumBuffers"),
                    _int(fields, "MaximumBuffers"),
                    _int(fields, "NumberOfBuffers"),
                    _int(fields, "EventsLost"),
                    hex_or_na(fields.get("LoggerThread")),
                    "-" if logger.consumers is None else (", ".join(logger.consumers) or "none"),
                    _clock(fields),
                    start if start else MISSING,
                    logger.problem or MISSING,
                ),
            )


PROVIDER_COLUMNS = [
    ("Silo", str),
    ("Bucket", int),
    ("List", str),
    ("GuidEntry", format_hints.Hex),
    ("Guid", str),
    ("Name", str),
    ("Registrations", int),
    ("RegisteredBy", str),
    ("Enabled", bool),
    ("Level", int),
    ("MatchAnyKeyword", format_hints.Hex),
    ("EnabledBy", str),
]


def provider_rows(silos: List[SiloEtw]) -> Iterator[tuple]:
    for silo in silos:
        names = {logger.slot: logger.name for logger in silo.loggers}
        for provider in silo.providers:
            enable = provider.provider_enable
            owners = sorted({registration.owner for registration in provider.registrations})
            yield (
                0,
                (
                    silo.label,
                    provider.bucket,
                    provider.list_name,
                    format_hints.Hex(provider.guid_entry),
                    "{" + provider.guid + "}",
                    provider.name or MISSING,
                    len(provider.registrations),
                    ", ".join(owners) or MISSING,
                    provider.is_enabled,
                    enable.get("Level", 0),
                    format_hints.Hex(enable.get("MatchAnyKeyword", 0)),
                    ", ".join(
                        f"{names[i]} ({i})" if i in names else f"LoggerId {i} (not running)"
                        for i in provider.enabled_by
                    )
                    or MISSING,
                ),
            )


TAMPER_COLUMNS = [
    ("Kind", str),
    ("Severity", str),
    ("Confidence", str),
    ("Silo", str),
    ("Address", format_hints.Hex),
    ("Reason", str),
    ("Evidence", str),
]


def tamper_rows(findings: List[Finding]) -> Iterator[tuple]:
    for finding in findings:
        yield (
            0,
            (
                finding.kind,
                finding.severity.name.lower(),
                finding.confidence.name.lower(),
                finding.module,
                format_hints.Hex(finding.start),
                finding.reason,
                "; ".join(finding.evidence) or MISSING,
            ),
        )


def attach_consumers(context, module_name: str, silos: List[SiloEtw]) -> None:
    """Which processes hold an EtwConsumer handle on each logger (from every process's handle table).

    Left unknown (None) when no EtwConsumer handle is found anywhere: handle tables paged out or
    unreadable say nothing about consumers."""
    from ..backends import handles
    from ..backends import kernel as kernel_backend

    walker = handles.walker_for(context, module_name)
    found: Dict[Tuple[Optional[int], int], List[str]] = {}
    notes: List[str] = []
    for proc in kernel_backend.list_processes(kernel_backend.KernelView(context, module_name)):
        owner = f"{kernel_backend.process_name(proc)} ({int(proc.UniqueProcessId)})"
        for logger_id, silo_state in walker.consumers(proc, notes):
            found.setdefault((silo_state, logger_id), []).append(owner)
    if not found:
        return
    for index, silo in enumerate(silos):
        for logger in silo.loggers:
            logger_id = logger.fields.get("LoggerId", logger.slot)
            owners = list(found.get((silo.address, logger_id), []))
            if index == 0:  # consumers without a silo state belong to the host
                owners += found.get((None, logger_id), [])
            logger.consumers = owners
