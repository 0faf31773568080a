"""Minidump stream types, memory states, protections and platform identifiers.

Values come from ``minidumpapiset.h`` and ``winnt.h``:
https://learn.microsoft.com/en-us/windows/win32/api/minidumpapiset/ne-minidumpapiset-minidump_stream_type
https://learn.microsoft.com/en-us/windows/win32/memory/memory-protection-constants
"""

from __future__ import annotations

import functools
from enum import IntEnum

SIGNATURE = b"MDMP"
#: Only the low 16 bits of MINIDUMP_HEADER.Version are defined; the high half is writer-specific.
VERSION_LOW = 0xA793


class StreamType(IntEnum):
    UNUSED = 0
    RESERVED_0 = 1
    RESERVED_1 = 2
    THREAD_LIST = 3
    MODULE_LIST = 4
    MEMORY_LIST = 5
    EXCEPTION = 6
    SYSTEM_INFO = 7
    THREAD_EX_LIST = 8
    MEMORY64_LIST = 9
    COMMENT_A = 10
    COMMENT_W = 11
    HANDLE_DATA = 12
    FUNCTION_TABLE = 13
    UNLOADED_MODULE_LIST = 14
    MISC_INFO = 15
    MEMORY_INFO_LIST = 16
    THREAD_INFO_LIST = 17
    HANDLE_OPERATION_LIST = 18
    TOKEN = 19
    JAVASCRIPT_DATA = 20
    SYSTEM_MEMORY_INFO = 21
    PROCESS_VM_COUNTERS = 22
    IPT_TRACE = 23
    THREAD_NAMES = 24
    # 25+ are newer Windows additions (e.g. compressed memory); named by number when seen.
    CE_NULL = 0x8000
    # Breakpad and Crashpad private streams (0x4767xxxx 'Gg', 0x43500000 'CP').
    BREAKPAD_INFO = 0x47670001
    BREAKPAD_ASSERTION_INFO = 0x47670002
    LINUX_CPU_INFO = 0x47670003
    LINUX_PROC_STATUS = 0x47670004
    LINUX_LSB_RELEASE = 0x47670005
    LINUX_CMD_LINE = 0x47670006
    LINUX_ENVIRON = 0x47670007
    LINUX_AUXV = 0x47670008
    LINUX_MAPS = 0x47670009
    LINUX_DSO_DEBUG = 0x4767000A
    CRASHPAD_INFO = 0x43500001


def stream_type_name(value: int) -> str:
    """Readable name of a stream type, or its number in hex for types this reader does not know."""
    try:
        return StreamType(value).name
    except ValueError:
        return f"0x{value:X}"


class ProcessorArchitecture(IntEnum):
    INTEL = 0
    MIPS = 1
    ALPHA = 2
    PPC = 3
    SHX = 4
    ARM = 5
    IA64 = 6
    ALPHA64 = 7
    MSIL = 8
    AMD64 = 9
    IA32_ON_WIN64 = 10
    ARM64 = 12
    ARM32_ON_WIN64 = 13
    IA32_ON_ARM64 = 14
    # Breakpad extensions
    SPARC = 0x8001
    PPC64 = 0x8002
    ARM64_OLD = 0x8003
    MIPS64 = 0x8004
    UNKNOWN = 0xFFFF


#: Short architecture names used throughout the suite.
ARCHITECTURE_NAMES = {
    ProcessorArchitecture.INTEL: "x86",
    ProcessorArchitecture.AMD64: "x64",
    ProcessorArchitecture.ARM64: "arm64",
    ProcessorArchitecture.ARM64_OLD: "arm64",
    ProcessorArchitecture.ARM: "arm",
    ProcessorArchitecture.IA64: "ia64",
    ProcessorArchitecture.IA32_ON_WIN64: "x86",
}

#: MINIDUMP_SYSTEM_INFO.PlatformId values: Windows ones from winnt.h, the rest from Breakpad's
#: minidump_format.h (MD_OS_*).
PLATFORM_NAMES = {
    0: "Win32s",
    1: "Windows 9x",
    2: "Windows NT",
    3: "Windows CE",
    0x8000: "Unix",
    0x8101: "macOS",
    0x8102: "iOS",
    0x8201: "Linux",
    0x8202: "Solaris",
    0x8203: "Android",
    0x8204: "PS3",
    0x8205: "Native Client",
    0x8206: "Fuchsia",
}
WINDOWS_PLATFORM_IDS = frozenset({0, 1, 2, 3})

MEM_COMMIT = 0x1000
MEM_RESERVE = 0x2000
MEM_FREE = 0x10000
MEM_PRIVATE = 0x20000
MEM_MAPPED = 0x40000
MEM_IMAGE = 0x1000000

STATE_NAMES = {MEM_COMMIT: "MEM_COMMIT", MEM_RESERVE: "MEM_RESERVE", MEM_FREE: "MEM_FREE"}
TYPE_NAMES = {MEM_PRIVATE: "MEM_PRIVATE", MEM_MAPPED: "MEM_MAPPED", MEM_IMAGE: "MEM_IMAGE"}

PAGE_NOACCESS = 0x01
PAGE_READONLY = 0x02
PAGE_READWRITE = 0x04
PAGE_WRITECOPY = 0x08
PAGE_EXECUTE = 0x10
PAGE_EXECUTE_READ = 0x20
PAGE_EXECUTE_READWRITE = 0x40
PAGE_EXECUTE_WRITECOPY = 0x80
PAGE_GUARD = 0x100
PAGE_NOCACHE = 0x200
PAGE_WRITECOMBINE = 0x400
PAGE_TARGETS_INVALID = 0x40000000

_BASE_PROTECTIONS = {
    PAGE_NOACCESS: "PAGE_NOACCESS",
    PAGE_READONLY: "PAGE_READONLY",
    PAGE_READWRITE: "PAGE_READWRITE",
    PAGE_WRITECOPY: "PAGE_WRITECOPY",
    PAGE_EXECUTE: "PAGE_EXECUTE",
    PAGE_EXECUTE_READ: "PAGE_EXECUTE_READ",
    PAGE_EXECUTE_READWRITE: "PAGE_EXECUTE_READWRITE",
    PAGE_EXECUTE_WRITECOPY: "PAGE_EXECUTE_WRITECOPY",
}
_PROTECTION_MODIFIERS = {
    PAGE_GUARD: "PAGE_GUARD",
    PAGE_NOCACHE: "PAGE_NOCACHE",
    PAGE_WRITECOMBINE: "PAGE_WRITECOMBINE",
    PAGE_TARGETS_INVALID: "PAGE_TARGETS_INVALID",
}
EXECUTABLE_PROTECTIONS = frozenset(
    {PAGE_EXECUTE, PAGE_EXECUTE_READ, PAGE_EXECUTE_READWRITE, PAGE_EXECUTE_WRITECOPY}
)
WRITABLE_PROTECTIONS = frozenset(
    {PAGE_READWRITE, PAGE_WRITECOPY, PAGE_EXECUTE_READWRITE, PAGE_EXECUTE_WRITECOPY}
)


@functools.lru_cache(maxsize=1024)
def protection_name(value: int) -> str:
    """``PAGE_EXECUTE_READ|PAGE_GUARD`` style text; 0 (unset, e.g. free memory) gives ``-``.

    Cached: a listing of a million regions asks for a handful of distinct values.
    """
    if value == 0:
        return "-"
    base = value & 0xFF
    parts = [_BASE_PROTECTIONS.get(base, f"0x{base:X}")] if base else []
    for bit, name in _PROTECTION_MODIFIERS.items():
        if value & bit:
            parts.append(name)
    rest = value & ~(0xFF | sum(_PROTECTION_MODIFIERS))
    if rest:
        parts.append(f"0x{rest:X}")
    return "|".join(parts)


def is_executable(protection: int) -> bool:
    return (protection & 0xFF) in EXECUTABLE_PROTECTIONS


def is_writable(protection: int) -> bool:
    return (protection & 0xFF) in WRITABLE_PROTECTIONS


def state_name(value: int) -> str:
    return STATE_NAMES.get(value, f"0x{value:X}")


def type_name(value: int) -> str:
    if value == 0:
        return "-"
    return TYPE_NAMES.get(value, f"0x{value:X}")
