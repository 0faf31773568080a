"""ETW names and flags: well-known providers, logger mode bits, sessions a healthy system runs.

Provider GUIDs are the manifest GUIDs Windows registers (``logman query providers``); mode bits
are from evntrace.h (https://learn.microsoft.com/en-us/windows/win32/etw/logging-mode-constants).
"""

from __future__ import annotations

from typing import Dict, List

THREAT_INTELLIGENCE = "F4E1897C-BB5D-5668-F1D8-040F4D8DD344"
WMI_ACTIVITY = "1418EF04-B0B4-4623-BF7E-D74AB47BBDAA"

PROVIDERS: Dict[str, str] = {
    THREAT_INTELLIGENCE: "Microsoft-Windows-Threat-Intelligence",
    WMI_ACTIVITY: "Microsoft-Windows-WMI-Activity",
    "22FB2CD6-0E7B-422B-A0C7-2FAD1FD0E716": "Microsoft-Windows-Kernel-Process",
    "EDD08927-9CC4-4E65-B970-C2560FB5C289": "Microsoft-Windows-Kernel-File",
    "7DD42A49-5329-4832-8DFD-43D979153A88": "Microsoft-Windows-Kernel-Network",
    "70EB4F03-C1DE-4F73-A051-33D13D5413BD": "Microsoft-Windows-Kernel-Registry",
    "54849625-5478-4994-A5BA-3E3B0328C30D": "Microsoft-Windows-Security-Auditing",
    "FC65DDD8-D6EF-4962-83D5-6E5CFE9CE148": "Microsoft-Windows-Eventlog",
    "2A576B87-09A7-520E-C21A-4942F0271D67": "Microsoft-Antimalware-Scan-Interface",
    "11CD958A-C507-4EF3-B3F2-5FD9DFBD2C78": "Microsoft-Windows-Windows Defender",
    "A0C1853B-5C40-4B15-8766-3CF1C58F985A": "Microsoft-Windows-PowerShell",
    "F90714A8-5509-434A-BF6D-B1624C8A19A2": "Microsoft-Windows-DotNETRuntime",
    "E13C0D23-CCBC-4E12-931B-D9CC2EEE27E4": "Microsoft-Windows-DotNETRuntime (CLR)",
    "555908D1-A6D7-4695-8E1E-26931D2012F4": "Microsoft-Windows-Services",
    "9E814AAD-3204-11D2-9A82-006008A86939": "NT Kernel Logger (SystemTraceControlGuid)",
    "DE7B24EA-73C8-4A09-985D-5BDADCFA9017": "Microsoft-Windows-TaskScheduler",
    "1C95126E-7EEA-49A9-A3FE-A378B03DDB4D": "Microsoft-Windows-DNS-Client",
}

#: Sessions every Windows 10/11 machine runs, and why losing each matters.
EXPECTED_SESSIONS: Dict[str, str] = {
    "EventLog-System": "it feeds the System event log, where service, driver and WMI-Activity events land",
    "EventLog-Application": "it feeds the Application event log",
    "EventLog-Security": "it feeds the Security event log: process creation, logons",
    "Circular Kernel Context Logger": "it is the always-on kernel context logger",
    "DefenderApiLogger": "it is Microsoft Defender's API logger",
    "DefenderAuditLogger": "it is Microsoft Defender's audit logger, a Threat-Intelligence consumer",
}

#: evntrace.h "Logger Mode flags" (Windows SDK 10.0.22621), by value.
LOGGER_MODE_FLAGS = {
    0x00000001: "FILE_MODE_SEQUENTIAL",
    0x00000002: "FILE_MODE_CIRCULAR",
    0x00000004: "FILE_MODE_APPEND",
    0x00000008: "FILE_MODE_NEWFILE",
    0x00000020: "FILE_MODE_PREALLOCATE",
    0x00000040: "NONSTOPPABLE_MODE",
    0x00000080: "SECURE_MODE",
    0x00000100: "REAL_TIME_MODE",
    0x00000200: "DELAY_OPEN_FILE_MODE",
    0x00000400: "BUFFERING_MODE",
    0x00000800: "PRIVATE_LOGGER_MODE",
    0x00001000: "ADD_HEADER_MODE",
    0x00002000: "USE_KBYTES_FOR_SIZE",
    0x00004000: "USE_GLOBAL_SEQUENCE",
    0x00008000: "USE_LOCAL_SEQUENCE",
    0x00010000: "RELOG_MODE",
    0x00020000: "PRIVATE_IN_PROC",
    0x00100000: "MODE_RESERVED",
    0x00400000: "STOP_ON_HYBRID_SHUTDOWN",
    0x00800000: "PERSIST_ON_HYBRID_SHUTDOWN",
    0x01000000: "USE_PAGED_MEMORY",
    0x02000000: "SYSTEM_LOGGER_MODE",
    0x04000000: "COMPRESSED_MODE",
    0x08000000: "INDEPENDENT_SESSION_MODE",
    0x10000000: "NO_PER_PROCESSOR_BUFFERING",
    0x80000000: "ADDTO_TRIAGE_DUMP",
}

REAL_TIME_MODE = 0x00000100
#: Real-time sessions whose only purpose is a consumer (casefolded names).
SECURITY_SESSIONS = frozenset({"eventlog-security"})

#: ETW clock types a WNODE/ClockType may name (evntrace.h: 1 QPC, 2 system time, 3 CPU cycle counter).
CLOCK_TYPES = {0: "default", 1: "QPC", 2: "system time", 3: "CPU cycle counter"}

GUID_LISTS = ("trace", "notification", "group")


def logger_mode_names(mode: int) -> str:
    names: List[str] = [name for bit, name in LOGGER_MODE_FLAGS.items() if mode & bit]
    rest = mode & ~sum(LOGGER_MODE_FLAGS)
    if rest:
        names.append(f"0x{rest:X}")
    return "|".join(names) or "0"


def provider_name(guid: str) -> str:
    return PROVIDERS.get(guid.upper().strip("{}"), "")
