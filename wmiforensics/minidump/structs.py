"""MDMP structures, each defined once, in the order and with the names of ``minidumpapiset.h``.

Reference: https://learn.microsoft.com/en-us/windows/win32/api/minidumpapiset/
(every ``MINIDUMP_*`` page there), cross-checked with LLVM's ``llvm/BinaryFormat/Minidump.h`` and
Breakpad's ``google_breakpad/common/minidump_format.h``. All integers are little-endian and
structures are packed (the format has no alignment padding beyond the explicit fields).

Flat fixed-size records that can occur many thousands of times (memory descriptors, memory info)
are also exposed as :class:`FlatRecord` codecs derived from the same definition, so bulk parsing
runs at ``struct`` speed without a second, hand-written layout.
"""

from __future__ import annotations

import re
import struct
import sys
from array import array
from collections import namedtuple
from typing import Any, Dict, Iterator, Sequence, Tuple

from construct import (
    Array,
    Bytes,
    Const,
    FormatField,
    Int8ul,
    Int16ul,
    Int32ul,
    Int64ul,
    Padded,
    Padding,
    Renamed,
    Struct,
)

# https://learn.microsoft.com/en-us/windows/win32/api/minidumpapiset/ns-minidumpapiset-minidump_header
MINIDUMP_HEADER = Struct(
    "Signature" / Const(b"MDMP"),
    "Version" / Int32ul,
    "NumberOfStreams" / Int32ul,
    "StreamDirectoryRva" / Int32ul,
    "CheckSum" / Int32ul,
    "TimeDateStamp" / Int32ul,
    "Flags" / Int64ul,
)

# https://learn.microsoft.com/en-us/windows/win32/api/minidumpapiset/ns-minidumpapiset-minidump_location_descriptor
MINIDUMP_LOCATION_DESCRIPTOR = Struct(
    "DataSize" / Int32ul,
    "Rva" / Int32ul,
)

# https://learn.microsoft.com/en-us/windows/win32/api/minidumpapiset/ns-minidumpapiset-minidump_directory
MINIDUMP_DIRECTORY = Struct(
    "StreamType" / Int32ul,
    "DataSize" / Int32ul,
    "Rva" / Int32ul,
)

# https://learn.microsoft.com/en-us/windows/win32/api/minidumpapiset/ns-minidumpapiset-minidump_memory_descriptor
MINIDUMP_MEMORY_DESCRIPTOR = Struct(
    "StartOfMemoryRange" / Int64ul,
    "DataSize" / Int32ul,
    "Rva" / Int32ul,
)

# https://learn.microsoft.com/en-us/windows/win32/api/minidumpapiset/ns-minidumpapiset-minidump_memory_list
MINIDUMP_MEMORY_LIST_HEADER = Struct(
    "NumberOfMemoryRanges" / Int32ul,
)

# https://learn.microsoft.com/en-us/windows/win32/api/minidumpapiset/ns-minidumpapiset-minidump_memory64_list
MINIDUMP_MEMORY64_LIST_HEADER = Struct(
    "NumberOfMemoryRanges" / Int64ul,
    "BaseRva" / Int64ul,
)

# https://learn.microsoft.com/en-us/windows/win32/api/minidumpapiset/ns-minidumpapiset-minidump_memory_descriptor64
MINIDUMP_MEMORY_DESCRIPTOR64 = Struct(
    "StartOfMemoryRange" / Int64ul,
    "DataSize" / Int64ul,
)

# https://learn.microsoft.com/en-us/windows/win32/api/minidumpapiset/ns-minidumpapiset-minidump_memory_info_list
MINIDUMP_MEMORY_INFO_LIST_HEADER = Struct(
    "SizeOfHeader" / Int32ul,
    "SizeOfEntry" / Int32ul,
    "NumberOfEntries" / Int64ul,
)

# https://learn.microsoft.com/en-us/windows/win32/api/minidumpapiset/ns-minidumpapiset-minidump_memory_info
MINIDUMP_MEMORY_INFO = Struct(
    "BaseAddress" / Int64ul,
    "AllocationBase" / Int64ul,
    "AllocationProtect" / Int32ul,
    Padding(4),
    "RegionSize" / Int64ul,
    "State" / Int32ul,
    "Protect" / Int32ul,
    "Type" / Int32ul,
    Padding(4),
)

# https://learn.microsoft.com/en-us/windows/win32/api/minidumpapiset/ns-minidumpapiset-minidump_thread
MINIDUMP_THREAD = Struct(
    "ThreadId" / Int32ul,
    "SuspendCount" / Int32ul,
    "PriorityClass" / Int32ul,
    "Priority" / Int32ul,
    "Teb" / Int64ul,
    "Stack" / MINIDUMP_MEMORY_DESCRIPTOR,
    "ThreadContext" / MINIDUMP_LOCATION_DESCRIPTOR,
)

# https://learn.microsoft.com/en-us/windows/win32/api/minidumpapiset/ns-minidumpapiset-minidump_thread_ex
MINIDUMP_THREAD_EX = Struct(
    "ThreadId" / Int32ul,
    "SuspendCount" / Int32ul,
    "PriorityClass" / Int32ul,
    "Priority" / Int32ul,
    "Teb" / Int64ul,
    "Stack" / MINIDUMP_MEMORY_DESCRIPTOR,
    "ThreadContext" / MINIDUMP_LOCATION_DESCRIPTOR,
    "BackingStore" / MINIDUMP_MEMORY_DESCRIPTOR,
)

# https://learn.microsoft.com/en-us/windows/win32/api/minidumpapiset/ns-minidumpapiset-minidump_thread_info_list
MINIDUMP_THREAD_INFO_LIST_HEADER = Struct(
    "SizeOfHeader" / Int32ul,
    "SizeOfEntry" / Int32ul,
    "NumberOfEntries" / Int32ul,
)

# https://learn.microsoft.com/en-us/windows/win32/api/minidumpapiset/ns-minidumpapiset-minidump_thread_info
MINIDUMP_THREAD_INFO = Struct(
    "ThreadId" / Int32ul,
    "DumpFlags" / Int32ul,
    "DumpError" / Int32ul,
    "ExitStatus" / Int32ul,
    "CreateTime" / Int64ul,
    "ExitTime" / Int64ul,
    "KernelTime" / Int64ul,
    "UserTime" / Int64ul,
    "StartAddress" / Int64ul,
    "Affinity" / Int64ul,
)

# https://learn.microsoft.com/en-us/windows/win32/api/verrsrc/ns-verrsrc-vs_fixedfileinfo
VS_FIXEDFILEINFO = Struct(
    "dwSignature" / Int32ul,
    "dwStrucVersion" / Int32ul,
    "dwFileVersionMS" / Int32ul,
    "dwFileVersionLS" / Int32ul,
    "dwProductVersionMS" / Int32ul,
    "dwProductVersionLS" / Int32ul,
    "dwFileFlagsMask" / Int32ul,
    "dwFileFlags" / Int32ul,
    "dwFileOS" / Int32ul,
    "dwFileType" / Int32ul,
    "dwFileSubtype" / Int32ul,
    "dwFileDateMS" / Int32ul,
    "dwFileDateLS" / Int32ul,
)
VS_FFI_SIGNATURE = 0xFEEF04BD

# https://learn.microsoft.com/en-us/windows/win32/api/minidumpapiset/ns-minidumpapiset-minidump_module
MINIDUMP_MODULE = Struct(
    "BaseOfImage" / Int64ul,
    "SizeOfImage" / Int32ul,
    "CheckSum" / Int32ul,
    "TimeDateStamp" / Int32ul,
    "ModuleNameRva" / Int32ul,
    "VersionInfo" / VS_FIXEDFILEINFO,
    "CvRecord" / MINIDUMP_LOCATION_DESCRIPTOR,
    "MiscRecord" / MINIDUMP_LOCATION_DESCRIPTOR,
    "Reserved0" / Int64ul,
    "Reserved1" / Int64ul,
)

# https://learn.microsoft.com/en-us/windows/win32/api/minidumpapiset/ns-minidumpapiset-minidump_unloaded_module_list
MINIDUMP_UNLOADED_MODULE_LIST_HEADER = Struct(
    "SizeOfHeader" / Int32ul,
    "SizeOfEntry" / Int32ul,
    "NumberOfEntries" / Int32ul,
)

# https://learn.microsoft.com/en-us/windows/win32/api/minidumpapiset/ns-minidumpapiset-minidump_unloaded_module
MINIDUMP_UNLOADED_MODULE = Struct(
    "BaseOfImage" / Int64ul,
    "SizeOfImage" / Int32ul,
    "CheckSum" / Int32ul,
    "TimeDateStamp" / Int32ul,
    "ModuleNameRva" / Int32ul,
)

# https://learn.microsoft.com/en-us/windows/win32/api/minidumpapiset/ns-minidumpapiset-minidump_handle_data_stream
MINIDUMP_HANDLE_DATA_STREAM_HEADER = Struct(
    "SizeOfHeader" / Int32ul,
    "SizeOfDescriptor" / Int32ul,
    "NumberOfDescriptors" / Int32ul,
    "Reserved" / Int32ul,
)

# https://learn.microsoft.com/en-us/windows/win32/api/minidumpapiset/ns-minidumpapiset-minidump_handle_descriptor
# (MINIDUMP_HANDLE_DESCRIPTOR_2 appends ObjectInfoRva and Reserved0: 40 bytes instead of 32.)
MINIDUMP_HANDLE_DESCRIPTOR = Struct(
    "Handle" / Int64ul,
    "TypeNameRva" / Int32ul,
    "ObjectNameRva" / Int32ul,
    "Attributes" / Int32ul,
    "GrantedAccess" / Int32ul,
    "HandleCount" / Int32ul,
    "PointerCount" / Int32ul,
)

# https://learn.microsoft.com/en-us/windows/win32/api/minidumpapiset/ns-minidumpapiset-minidump_system_info
MINIDUMP_SYSTEM_INFO = Struct(
    "ProcessorArchitecture" / Int16ul,
    "ProcessorLevel" / Int16ul,
    "ProcessorRevision" / Int16ul,
    "NumberOfProcessors" / Int8ul,
    "ProductType" / Int8ul,
    "MajorVersion" / Int32ul,
    "MinorVersion" / Int32ul,
    "BuildNumber" / Int32ul,
    "PlatformId" / Int32ul,
    "CSDVersionRva" / Int32ul,
    "SuiteMask" / Int16ul,
    "Reserved2" / Int16ul,
    "Cpu" / Bytes(24),
)

# https://learn.microsoft.com/en-us/windows/win32/api/minidumpapiset/ns-minidumpapiset-minidump_misc_info
# The later MINIDUMP_MISC_INFO_2..5 only append fields; SizeOfInfo says how many are present.
MINIDUMP_MISC_INFO = Struct(
    "SizeOfInfo" / Int32ul,
    "Flags1" / Int32ul,
    "ProcessId" / Int32ul,
    "ProcessCreateTime" / Int32ul,
    "ProcessUserTime" / Int32ul,
    "ProcessKernelTime" / Int32ul,
)
# https://learn.microsoft.com/en-us/windows/win32/api/minidumpapiset/ns-minidumpapiset-minidump_misc_info_2
MINIDUMP_MISC_INFO_2_TAIL = Struct(
    "ProcessorMaxMhz" / Int32ul,
    "ProcessorCurrentMhz" / Int32ul,
    "ProcessorMhzLimit" / Int32ul,
    "ProcessorMaxIdleState" / Int32ul,
    "ProcessorCurrentIdleState" / Int32ul,
)
# https://learn.microsoft.com/en-us/windows/win32/api/minidumpapiset/ns-minidumpapiset-minidump_misc_info_3
# (TIME_ZONE_INFORMATION is 172 bytes and kept raw.)
MINIDUMP_MISC_INFO_3_TAIL = Struct(
    "ProcessIntegrityLevel" / Int32ul,
    "ProcessExecuteFlags" / Int32ul,
    "ProtectedProcess" / Int32ul,
    "TimeZoneId" / Int32ul,
    "TimeZone" / Bytes(172),
)
# https://learn.microsoft.com/en-us/windows/win32/api/minidumpapiset/ns-minidumpapiset-minidump_misc_info_4
MINIDUMP_MISC_INFO_4_TAIL = Struct(
    "BuildString" / Bytes(260 * 2),
    "DbgBldStr" / Bytes(40 * 2),
)
MISC_INFO_SIZE = 24
MISC_INFO_2_SIZE = 44
MISC_INFO_3_SIZE = 232
MISC_INFO_4_SIZE = 832
MINIDUMP_MISC1_PROCESS_ID = 0x1
MINIDUMP_MISC1_PROCESS_TIMES = 0x2
MINIDUMP_MISC3_PROCESS_INTEGRITY = 0x10
MINIDUMP_MISC3_PROCESS_EXECUTE_FLAGS = 0x20
MINIDUMP_MISC3_PROTECTED_PROCESS = 0x80
MINIDUMP_MISC4_BUILDSTRING = 0x100

# https://learn.microsoft.com/en-us/windows/win32/api/minidumpapiset/ns-minidumpapiset-minidump_exception_stream
MINIDUMP_EXCEPTION_STREAM = Struct(
    "ThreadId" / Int32ul,
    Padding(4),
    "ExceptionCode" / Int32ul,
    "ExceptionFlags" / Int32ul,
    "ExceptionRecord" / Int64ul,
    "ExceptionAddress" / Int64ul,
    "NumberParameters" / Int32ul,
    Padding(4),
    "ExceptionInformation" / Array(15, Int64ul),
    "ThreadContext" / MINIDUMP_LOCATION_DESCRIPTOR,
)

# https://learn.microsoft.com/en-us/windows/win32/api/minidumpapiset/ns-minidumpapiset-minidump_thread_name
MINIDUMP_THREAD_NAME_LIST_HEADER = Struct("NumberOfThreadNames" / Int32ul)
MINIDUMP_THREAD_NAME = Struct(
    "ThreadId" / Int32ul,
    "RvaOfThreadName" / Int64ul,
)

# CodeView record of a PE's debug directory ('RSDS' form), as minidump writers copy it:
# https://github.com/dotnet/runtime/blob/main/docs/design/specs/PE-COFF.md#codeview-debug-directory-entry-type-2
CV_INFO_PDB70_HEADER = Struct(
    "CvSignature" / Const(b"RSDS"),
    "Signature" / Bytes(16),
    "Age" / Int32ul,
)

# CONTEXT layouts (winnt.h): only the registers the suite uses, as (offset, size) pairs.
# x64 CONTEXT is 1232 bytes: Rsp at 0x98, Rip at 0xF8. x86 CONTEXT is 716 bytes: Esp 0xC4, Eip 0xB8.
# ARM64 CONTEXT: Sp at 0x100, Pc at 0x108.
CONTEXT_REGISTERS = {
    "x64": {"ip": (0xF8, 8), "sp": (0x98, 8), "size": 1232},
    "x86": {"ip": (0xB8, 4), "sp": (0xC4, 4), "size": 716},
    "arm64": {"ip": (0x108, 8), "sp": (0x100, 8), "size": 912},
}


#: ``array`` codes for the unsigned standard-size ``struct`` codes of flat records ("<L" is 4 bytes).
_ARRAY_CODES = {"B": "B", "H": "H", "I": "I", "L": "I", "Q": "Q"}


class FlatRecord:
    """A ``struct`` codec derived from a flat construct ``Struct`` of integer fields and padding.

    It exists so that lists with tens of thousands of entries parse quickly while the layout is
    still written only once, above.
    """

    def __init__(self, definition: Struct, name: str) -> None:
        fmt = "<"
        names = []
        for sub in definition.subcons:
            inner = sub.subcon if isinstance(sub, Renamed) else sub
            if isinstance(inner, FormatField):
                fmt += inner.fmtstr.lstrip("<>=!")
                names.append(sub.name)
            elif isinstance(inner, Padded):
                fmt += f"{inner.length}x"
            else:
                raise TypeError(f"{name}: field {sub.name!r} is not a flat integer field")
        self.codec = struct.Struct(fmt)
        self.size = self.codec.size
        self.field_names = tuple(names)
        if self.size != definition.sizeof():
            raise AssertionError(f"{name}: derived size {self.size} != {definition.sizeof()}")
        self.tuple_type = namedtuple(name, names)  # type: ignore[misc]

    def parse(self, data: bytes) -> Any:
        return self.tuple_type._make(self.codec.unpack_from(data))

    def field_offsets(self) -> Dict[str, Tuple[int, str]]:
        """Each field's byte offset and ``struct`` code, in the layout's order."""
        result, offset = {}, 0
        names = iter(self.field_names)
        for code in re.findall(r"\d*[a-zA-Z]", self.codec.format.lstrip("<")):
            size = struct.calcsize("<" + code)
            if not code.endswith("x"):
                result[next(names)] = (offset, code)
            offset += size
        return result

    def columns(self, data: bytes, count: int, stride: int) -> Dict[str, Sequence[int]]:
        """Every field of ``count`` records spaced ``stride`` bytes apart, one ``array`` per field.

        Sliced straight out of the bytes (no per-record objects) when the host is little-endian and
        each field is aligned to its size; per-record unpacking otherwise.
        """
        offsets = self.field_offsets()
        usable = memoryview(data)[: count * stride]
        if sys.byteorder == "little" and all(
            offset % struct.calcsize("<" + code) == 0
            and stride % struct.calcsize("<" + code) == 0
            and array(_ARRAY_CODES[code]).itemsize == struct.calcsize("<" + code)
            for offset, code in offsets.values()
        ):
            result, wholes = {}, {}
            for name, (offset, code) in offsets.items():
                size = struct.calcsize("<" + code)
                if code not in wholes:
                    wholes[code] = array(_ARRAY_CODES[code])
                    wholes[code].frombytes(usable[: len(usable) - len(usable) % size])
                result[name] = wholes[code][offset // size :: stride // size][:count]
            return result
        rows = [self.codec.unpack_from(data, index * stride) for index in range(count)]
        return {
            name: array(_ARRAY_CODES[code], (row[position] for row in rows))
            for position, (name, (_offset, code)) in enumerate(offsets.items())
        }

    def iter_parse(self, data: bytes, count: int, stride: int) -> Iterator[Any]:
        """Parse ``count`` records spaced ``stride`` bytes apart (stride may exceed the record size)."""
        make = self.tuple_type._make
        if stride == self.size:
            yield from map(make, self.codec.iter_unpack(memoryview(data)[: count * stride]))
            return
        unpack_from = self.codec.unpack_from
        for index in range(count):
            yield make(unpack_from(data, index * stride))


MEMORY_DESCRIPTOR = FlatRecord(MINIDUMP_MEMORY_DESCRIPTOR, "MemoryDescriptor")
MEMORY_DESCRIPTOR64 = FlatRecord(MINIDUMP_MEMORY_DESCRIPTOR64, "MemoryDescriptor64")
MEMORY_INFO = FlatRecord(MINIDUMP_MEMORY_INFO, "MemoryInfo")
THREAD_INFO = FlatRecord(MINIDUMP_THREAD_INFO, "ThreadInfo")
UNLOADED_MODULE = FlatRecord(MINIDUMP_UNLOADED_MODULE, "UnloadedModule")
HANDLE_DESCRIPTOR = FlatRecord(MINIDUMP_HANDLE_DESCRIPTOR, "HandleDescriptor")
THREAD_NAME = FlatRecord(MINIDUMP_THREAD_NAME, "ThreadName")
