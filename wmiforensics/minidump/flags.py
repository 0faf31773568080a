"""MINIDUMP_TYPE flags: what the writer was asked to include (not proof of what is present).

https://learn.microsoft.com/en-us/windows/win32/api/minidumpapiset/ne-minidumpapiset-minidump_type
"""

from __future__ import annotations

MINIDUMP_TYPE_FLAGS = {
    0x00000001: "WithDataSegs",
    0x00000002: "WithFullMemory",
    0x00000004: "WithHandleData",
    0x00000008: "FilterMemory",
    0x00000010: "ScanMemory",
    0x00000020: "WithUnloadedModules",
    0x00000040: "WithIndirectlyReferencedMemory",
    0x00000080: "FilterModulePaths",
    0x00000100: "WithProcessThreadData",
    0x00000200: "WithPrivateReadWriteMemory",
    0x00000400: "WithoutOptionalData",
    0x00000800: "WithFullMemoryInfo",
    0x00001000: "WithThreadInfo",
    0x00002000: "WithCodeSegs",
    0x00004000: "WithoutAuxiliaryState",
    0x00008000: "WithFullAuxiliaryState",
    0x00010000: "WithPrivateWriteCopyMemory",
    0x00020000: "IgnoreInaccessibleMemory",
    0x00040000: "WithTokenInformation",
    0x00080000: "WithModuleHeaders",
    0x00100000: "FilterTriage",
    0x00200000: "WithAvxXStateContext",
    0x00400000: "WithIptTrace",
    0x00800000: "ScanInaccessiblePartialPages",
    0x01000000: "FilterWriteCombinedMemory",
}


def describe_flags(flags: int) -> str:
    """``WithFullMemory|WithHandleData|...``; ``Normal`` for 0; unknown bits in hex."""
    if flags == 0:
        return "Normal"
    names = [name for bit, name in MINIDUMP_TYPE_FLAGS.items() if flags & bit]
    unknown = flags & ~sum(MINIDUMP_TYPE_FLAGS)
    if unknown:
        names.append(f"0x{unknown:X}")
    return "|".join(names)
