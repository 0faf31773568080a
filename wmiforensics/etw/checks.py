"""Tamper checks on ETW kernel state: each a finding with evidence, in the engine's result model."""

from __future__ import annotations

from typing import Iterator, List, Optional

from ..engine.findings import Confidence, Finding, Severity
from . import knowledge
from .reader import EtwReader, SiloEtw

#: ETW clock types are an index (QPC, system time, cycle counter) on builds that store one.
MAX_CLOCK_INDEX = 3
#: The registry's EtwMaxLoggers is clamped by the kernel to this range.
MAX_LOGGERS_RANGE = (32, 256)


def _finding(
    kind: str,
    severity: Severity,
    silo: SiloEtw,
    address: Optional[int],
    reason: str,
    evidence: List[str],
    confidence: Confidence = Confidence.HIGH,
) -> Finding:
    start = address or 0
    return Finding(
        kind,
        severity,
        confidence,
        start,
        start + 1,
        reason,
        module=silo.label,
        evidence=evidence,
        region_type="kernel",
        process="kernel",
    )


def check_silo(reader: EtwReader, silo: SiloEtw, *, host: bool) -> Iterator[Finding]:
    if silo.layout_mismatch:
        # Read through the wrong layout every other check would only describe the misreading.
        yield _finding(
            "symbol_table_mismatch",
            Severity.MEDIUM,
            silo,
            silo.address,
            silo.layout_mismatch,
            [f"_ETW_SILODRIVERSTATE 0x{silo.address or 0:x}", f"slots: {silo.slots_source}"],
            Confidence.MEDIUM,
        )
        return
    yield from _slot_checks(reader, silo)
    yield from _max_logger_checks(silo)
    if host:
        yield from _expected_sessions(silo, defender_expected=silo.address is not None)
    yield from _provider_checks(silo)
    yield from _consumer_checks(silo)


def _consumer_checks(silo: SiloEtw) -> Iterator[Finding]:
    """A real-time security session nobody consumes records events no one ever receives."""
    for logger in silo.loggers:
        mode = logger.fields.get("LoggerMode")
        real_time = isinstance(mode, int) and bool(mode & knowledge.REAL_TIME_MODE)
        if logger.consumers == [] and real_time and logger.name.casefold() in knowledge.SECURITY_SESSIONS:
            yield _finding(
                "security_session_unconsumed",
                Severity.HIGH,
                silo,
                logger.address,
                f"{logger.name} is a real-time session but no process holds an EtwConsumer handle on it: "
                "its events reach no event log (the EventLog service's consumer was closed or killed)",
                [f"context 0x{logger.address:x}, LoggerId {logger.fields.get('LoggerId')}"],
            )


def _slot_checks(reader: EtwReader, silo: SiloEtw) -> Iterator[Finding]:
    for logger in silo.loggers:
        if logger.problem == "not a kernel address":
            yield _finding(
                "slot_not_kernel_address",
                Severity.CRITICAL,
                silo,
                logger.slot_value,
                f"logger slot {logger.slot} holds 0x{logger.slot_value:x}, not a kernel address: "
                "the slot was overwritten (a free slot holds 1)",
                [f"slot {logger.slot} ({silo.slots_source})"],
            )
            continue
        if logger.problem:
            yield _finding(
                "slot_unreadable",
                Severity.MEDIUM,
                silo,
                logger.slot_value,
                f"logger slot {logger.slot} points to 0x{logger.slot_value:x}, which cannot be read",
                [f"slot {logger.slot}"],
                Confidence.MEDIUM,
            )
            continue
        fields = logger.fields
        logger_id = fields.get("LoggerId")
        if logger_id is not None and logger_id != logger.slot:
            yield _finding(
                "logger_id_mismatch",
                Severity.HIGH,
                silo,
                logger.address,
                f"the logger context in slot {logger.slot} ({logger.name or 'unnamed'}) says LoggerId "
                f"{logger_id}: contexts are always stored in the slot of their own id",
                [f"context 0x{logger.address:x}"],
            )
        clock = fields.get("GetCpuClock")
        if clock is not None:
            if fields.get("GetCpuClockIsPointer"):
                bad = bool(clock) and not reader.in_kernel_image(clock)
                expectation = "a clock routine inside ntoskrnl"
            else:
                bad = clock > MAX_CLOCK_INDEX
                expectation = f"a clock index 0..{MAX_CLOCK_INDEX}"
            if bad:
                yield _finding(
                    "clock_out_of_range",
                    Severity.HIGH,
                    silo,
                    logger.address,
                    f"{logger.name or 'logger ' + str(logger.slot)}: GetCpuClock is 0x{clock:x}, not "
                    f"{expectation}: a hijacked clock callback runs attacker code on every event",
                    [f"context 0x{logger.address:x}, slot {logger.slot}"],
                )


def _max_logger_checks(silo: SiloEtw) -> Iterator[Finding]:
    if silo.max_loggers is None:
        return
    low, high = MAX_LOGGERS_RANGE
    if not low <= silo.max_loggers <= high:
        yield _finding(
            "maxloggers_out_of_range",
            Severity.HIGH,
            silo,
            silo.max_loggers_address,
            f"MaxLoggers is {silo.max_loggers}, outside the {low}..{high} the kernel allows",
            [f"_ETW_SILODRIVERSTATE 0x{silo.address or 0:x}"],
        )


def _expected_sessions(silo: SiloEtw, *, defender_expected: bool) -> Iterator[Finding]:
    """Sessions every machine runs; Defender's only from Windows 10 (the silo-era kernels) on."""
    running = {logger.name for logger in silo.loggers if not logger.problem}
    running_folded = {name.casefold() for name in running}  # "Eventlog-Security" on some machines
    for name, why in knowledge.EXPECTED_SESSIONS.items():
        defender = name.startswith("Defender")
        if defender and not defender_expected:
            continue
        if name.casefold() not in running_folded:
            yield _finding(
                "session_missing",
                Severity.MEDIUM if defender else Severity.HIGH,
                silo,
                silo.address,
                f"the {name} trace session is not running: {why}",
                [f"{len(running)} sessions run in this silo: {', '.join(sorted(running)) or 'none'}"],
                Confidence.MEDIUM if defender else Confidence.HIGH,
            )


def _provider_checks(silo: SiloEtw) -> Iterator[Finding]:
    loggers = {logger.slot: logger.name for logger in silo.loggers}
    confidence = Confidence.MEDIUM if silo.providers_damaged else Confidence.HIGH
    for provider in silo.providers:
        if provider.guid == knowledge.THREAT_INTELLIGENCE and provider.registrations:
            enable = provider.provider_enable
            zeroed = (
                not enable.get("IsEnabled") and not enable.get("MatchAnyKeyword") and not enable.get("Level")
            )
            if zeroed and provider.enabled_by:
                names = ", ".join(
                    f"{loggers[i]} ({i})" if i in loggers else f"LoggerId {i} (no longer running)"
                    for i in provider.enabled_by
                )
                yield _finding(
                    "ti_provider_disabled",
                    Severity.CRITICAL,
                    silo,
                    provider.provider_enable_address,
                    "Microsoft-Windows-Threat-Intelligence is registered and still listed as enabled by "
                    f"{names}, but its ProviderEnableInfo is zeroed: the kernel stops emitting its events "
                    "(the data-only EtwThreatIntProvRegHandle attack)",
                    [f"_ETW_GUID_ENTRY 0x{provider.guid_entry:x}", f"ProviderEnableInfo {enable}"],
                    confidence,
                )
        if provider.guid == knowledge.WMI_ACTIVITY and provider.registrations and not provider.is_enabled:
            yield _finding(
                "wmi_activity_disabled",
                Severity.HIGH,
                silo,
                provider.guid_entry,
                "Microsoft-Windows-WMI-Activity is registered but no trace session enables it: WMI "
                "operations (queries, method calls, provider loads) are no longer logged",
                [
                    f"_ETW_GUID_ENTRY 0x{provider.guid_entry:x}",
                    f"registered by {', '.join(r.owner for r in provider.registrations)}",
                ],
                confidence,
            )


def check_all(reader: EtwReader, silos: List[SiloEtw]) -> List[Finding]:
    findings: List[Finding] = []
    for index, silo in enumerate(silos):
        findings.extend(check_silo(reader, silo, host=index == 0))
    findings.sort(key=lambda item: (-item.severity, item.kind, item.start))
    return findings
