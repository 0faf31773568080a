"""Field layouts of the manifest events that matter to a WMI investigation, written in the suite.

Each layout is the ``<template>`` of the provider's instrumentation manifest as Windows publishes it
(``wevtutil gp <provider> /ge /gm:true``, also on learn.microsoft.com and in public manifest dumps):

- Microsoft-Windows-WMI-Activity {1418EF04-B0B4-4623-BF7E-D74AB47BBDAA}, Operational channel:
  5857 provider started, 5858 operation error, 5859 temporary (polling/intrinsic) subscription,
  5860 temporary subscription registered, 5861 permanent subscription (filter-to-consumer binding).
- Microsoft-Antimalware-Scan-Interface {2A576B87-09A7-520E-C21A-4942F0271D67}: 1101 AmsiScanBuffer
  (``hash`` read as 32 bytes and ``contentFiltered`` as a 4-byte win:Boolean; etl-parser's generated
  layout has 16 bytes and one byte, and no real 1101 capture is at hand to settle it).
- Microsoft-Windows-Kernel-Process {22FB2CD6-0E7B-422B-A0C7-2FAD1FD0E716}: 1 ProcessStart (versions
  0-3), 2 ProcessStop (versions 0-2); later versions insert fields, so each version has its layout.
"""

from __future__ import annotations

import struct
from typing import Dict, Optional, Sequence, Tuple

from .format import guid_text

WMI_ACTIVITY = "1418EF04-B0B4-4623-BF7E-D74AB47BBDAA"
AMSI = "2A576B87-09A7-520E-C21A-4942F0271D67"
KERNEL_PROCESS = "22FB2CD6-0E7B-422B-A0C7-2FAD1FD0E716"

# (name, type); type "binary:<field>" takes its length from an earlier field, "binary#N" is N bytes.
Layout = Sequence[Tuple[str, str]]

LAYOUTS: Dict[Tuple[str, int], Layout] = {
    (WMI_ACTIVITY, 5857): (
        ("ProviderName", "wstr"),
        ("Code", "hex32"),
        ("HostProcess", "wstr"),
        ("ProcessID", "u32"),
        ("ProviderPath", "wstr"),
    ),
    (WMI_ACTIVITY, 5858): (
        ("Id", "wstr"),
        ("ClientMachine", "wstr"),
        ("User", "wstr"),
        ("ClientProcessId", "u32"),
        ("Component", "wstr"),
        ("Operation", "wstr"),
        ("ResultCode", "hex32"),
        ("PossibleCause", "wstr"),
    ),
    (WMI_ACTIVITY, 5859): (
        ("NamespaceName", "wstr"),
        ("Query", "wstr"),
        ("User", "wstr"),
        ("processid", "u32"),
        ("providerName", "wstr"),
        ("queryid", "u32"),
        ("PossibleCause", "wstr"),
    ),
    (WMI_ACTIVITY, 5860): (
        ("NamespaceName", "wstr"),
        ("Query", "wstr"),
        ("User", "wstr"),
        ("processid", "u32"),
        ("MachineName", "wstr"),
        ("PossibleCause", "wstr"),
    ),
    (WMI_ACTIVITY, 5861): (
        ("Namespace", "wstr"),
        ("ESS", "wstr"),
        ("CONSUMER", "wstr"),
        ("PossibleCause", "wstr"),
    ),
    (AMSI, 1101): (
        ("session", "u64"),
        ("scanStatus", "u8"),
        ("scanResult", "u32"),
        ("appname", "wstr"),
        ("contentname", "wstr"),
        ("contentsize", "u32"),
        ("originalsize", "u32"),
        ("content", "binary:contentsize"),
        ("hash", "binary#32"),
        ("contentFiltered", "bool32"),
    ),
}

_PROCESS_START_V0 = (
    ("ProcessID", "u32"),
    ("CreateTime", "u64"),
    ("ParentProcessID", "u32"),
    ("SessionID", "u32"),
)
_PROCESS_STOP_V0 = (
    ("ProcessID", "u32"),
    ("CreateTime", "u64"),
    ("ExitTime", "u64"),
    ("ExitCode", "u32"),
    ("TokenElevationType", "u32"),
    ("HandleCount", "u32"),
    ("CommitCharge", "u64"),
    ("CommitPeak", "u64"),
)
_PROCESS_STOP_COUNTERS = (
    ("CPUCycleCount", "u64"),
    ("ReadOperationCount", "u32"),
    ("WriteOperationCount", "u32"),
    ("ReadTransferKiloBytes", "u32"),
    ("WriteTransferKiloBytes", "u32"),
    ("HardFaultCount", "u32"),
    ("ImageName", "astr"),
)
_PACKAGE = (
    ("ImageChecksum", "u32"),
    ("TimeDateStamp", "u32"),
    ("PackageFullName", "wstr"),
    ("PackageRelativeAppId", "wstr"),
)

# Kernel-Process templates change between versions (fields are inserted, not only appended).
VERSIONED: Dict[Tuple[str, int], Dict[int, Layout]] = {
    (KERNEL_PROCESS, 1): {
        0: (*_PROCESS_START_V0, ("ImageName", "wstr")),
        1: (*_PROCESS_START_V0, ("Flags", "u32"), ("ImageName", "wstr")),
        2: (*_PROCESS_START_V0, ("Flags", "u32"), ("ImageName", "wstr"), *_PACKAGE),
        3: (
            ("ProcessID", "u32"),
            ("ProcessSequenceNumber", "u64"),
            ("CreateTime", "u64"),
            ("ParentProcessID", "u32"),
            ("ParentProcessSequenceNumber", "u64"),
            ("SessionID", "u32"),
            ("Flags", "u32"),
            ("ProcessTokenElevationType", "u32"),
            ("ProcessTokenIsElevated", "u32"),
            ("MandatoryLabel", "sid"),
            ("ImageName", "wstr"),
            *_PACKAGE,
        ),
    },
    (KERNEL_PROCESS, 2): {
        0: (*_PROCESS_STOP_V0, ("ImageName", "astr")),
        1: (*_PROCESS_STOP_V0, *_PROCESS_STOP_COUNTERS),
        2: (
            _PROCESS_STOP_V0[0],
            ("ProcessSequenceNumber", "u64"),
            *_PROCESS_STOP_V0[1:],
            *_PROCESS_STOP_COUNTERS,
        ),
    },
}

EVENT_NAMES = {
    (WMI_ACTIVITY, 5857): "provider started",
    (WMI_ACTIVITY, 5858): "operation error",
    (WMI_ACTIVITY, 5859): "temporary subscription (polling)",
    (WMI_ACTIVITY, 5860): "temporary subscription registered",
    (WMI_ACTIVITY, 5861): "permanent subscription registered",
    (AMSI, 1101): "AmsiScanBuffer",
    (KERNEL_PROCESS, 1): "ProcessStart",
    (KERNEL_PROCESS, 2): "ProcessStop",
}

_FIXED = {"u8": "<B", "u16": "<H", "u32": "<I", "u64": "<Q", "hex32": "<I", "bool32": "<i"}


def layout(provider: Optional[str], event_id: Optional[int], version: int = 0) -> Optional[Layout]:
    """The template for this event and version (the newest version not above it, for versioned ones)."""
    if provider is None or event_id is None:
        return None
    versions = VERSIONED.get((provider, event_id))
    if versions:
        known = [number for number in versions if number <= version]
        return versions[max(known)] if known else None
    return LAYOUTS.get((provider, event_id))


def decode(fields: Layout, data: bytes) -> Tuple[Dict[str, object], Optional[str]]:
    """Values in template order; the data may end early (older versions have fewer fields)."""
    values: Dict[str, object] = {}
    at = 0
    for name, kind in fields:
        if at >= len(data):
            break
        if kind in _FIXED:
            size = struct.calcsize(_FIXED[kind])
            if at + size > len(data):
                return values, f"{name}: data ends inside the field"
            (value,) = struct.unpack_from(_FIXED[kind], data, at)
            values[name] = bool(value) if kind == "bool32" else value
            at += size
        elif kind in ("wstr", "astr"):
            step, terminator = (2, b"\0\0") if kind == "wstr" else (1, b"\0")
            end = _terminator(data, at, step, terminator)
            if end is None:
                values[name] = _text(data[at:], kind)
                return values, f"{name}: unterminated string"
            values[name] = _text(data[at:end], kind)
            at = end + step
        elif kind == "guid":
            values[name] = guid_text(data[at : at + 16])
            at += 16
        elif kind == "sid":
            count = data[at + 1] if at + 1 < len(data) else 0
            size = 8 + 4 * count
            if at + size > len(data):
                return values, f"{name}: SID runs past the event"
            values[name] = sid_text(data[at : at + size])
            at += size
        else:
            size = _binary_size(kind, values)
            if size is None or at + size > len(data):
                return values, f"{name}: {size} bytes do not fit in the event"
            values[name] = data[at : at + size]
            at += size
    note = f"{len(data) - at} bytes after the last field" if at < len(data) else None
    return values, note


def _terminator(data: bytes, at: int, step: int, terminator: bytes) -> Optional[int]:
    while at + step <= len(data):
        if data[at : at + step] == terminator:
            return at
        at += step
    return None


def _text(raw: bytes, kind: str) -> str:
    return raw.decode("utf-16-le", "replace") if kind == "wstr" else raw.decode("latin-1")


def _binary_size(kind: str, values: Dict[str, object]) -> Optional[int]:
    if kind.startswith("binary#"):
        return int(kind[7:])
    if kind.startswith("binary:"):
        value = values.get(kind[7:])
        return value if isinstance(value, int) else None
    return None


def sid_text(raw: bytes) -> str:
    """S-R-A-S1-S2... from a binary SID (revision, sub-authority count, 48-bit big-endian authority)."""
    authority = int.from_bytes(raw[2:8], "big")
    subs = [str(int.from_bytes(raw[8 + 4 * i : 12 + 4 * i], "little")) for i in range(raw[1])]
    return "-".join(["S", str(raw[0]), str(authority), *subs])
