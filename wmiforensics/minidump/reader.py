"""Read a Windows user-mode minidump without trusting it.

Every count, offset, size and string is bounded by the stream and file that hold it before it is
used. A damaged stream costs only that stream: the reader records a warning that says what was
lost and goes on, so that what can still be read is still reported. Only a file whose header or
stream directory is unusable raises :class:`~wmiforensics.errors.MinidumpError`.
"""

from __future__ import annotations

import dataclasses
import os
import struct
from array import array
from typing import Callable, Dict, List, Optional, Tuple

from construct import ConstructError, Struct

from ..errors import InputError, MinidumpError, NotAMinidumpError
from . import constants, structs
from .constants import StreamType
from .model import (
    ExceptionInfo,
    Handle,
    Header,
    MiscInfo,
    Module,
    StreamInfo,
    SystemInfo,
    Thread,
    UnloadedModule,
    Warnings,
)
from .segments import MemoryRange, MergeReport
from .source import ByteSource, FileSource
from .tables import MemoryInfoTable, RangeTable, SegmentTable, merge_table

# Bounds on what one file may make the reader allocate. Real procdump -ma dumps of large
# processes have tens of thousands of ranges and handles; these limits sit far above that. Regions
# and ranges live in compact tables (about 40 bytes each), so 4 Mi of each stays well inside 1 GiB;
# a list cut by one of these ceilings says so with its declared and kept counts.
MAX_DIRECTORY_ENTRIES = 65_536
MAX_MEMORY_RANGES = 4 << 20
MAX_MEMORY_INFO_ENTRIES = 4 << 20
MAX_MODULES = 65_536
MAX_THREADS = 65_536
MAX_HANDLES = 262_144
MAX_STRING_BYTES = 65_534  # a UNICODE_STRING holds at most 32,767 UTF-16 units
MAX_CONTEXT_BYTES = 16_384
MAX_CV_RECORD_BYTES = 4_096
MAX_RECORD_STRIDE = 4_096  # a declared entry size above this is not a real writer's
MAX_OVERLAP_COMPARISON_BYTES = 64 << 20  # overlapping copies compared byte for byte, in total


class MemoryNotCaptured(LookupError):
    """The address lies in no memory range of the dump."""

    def __init__(self, address: int) -> None:
        super().__init__(f"address 0x{address:x} is not captured in the dump")
        self.address = address


def identify_foreign_format(head: bytes) -> str:
    """Name the kind of file a non-MDMP input is, for an error message that helps."""
    known = [
        (b"PAGEDU64", "a 64-bit Windows kernel crash dump (PAGEDU64), not a process minidump"),
        (b"PAGEDUMP", "a 32-bit Windows kernel crash dump (PAGEDUMP), not a process minidump"),
        (b"USERDU64", "a legacy 64-bit Windows user dump (USERDU64), which wmi-forensics does not read"),
        (b"USERDUMP", "a legacy 32-bit Windows user dump (USERDUMP), which wmi-forensics does not read"),
        (b"\x7fELF", "an ELF file (e.g. a Linux core dump), not a Windows minidump"),
        (b"MZ", "a Windows PE executable, not a memory dump"),
        (b"EMiL", "a LiME memory image"),
        (b"HIBR", "a Windows hibernation file"),
    ]
    for magic, text in known:
        if head.startswith(magic):
            return text
    if b"BEGIN BREAKPAD MICRODUMP" in head:
        return "a Breakpad text microdump, not a binary minidump"
    if len(head) >= 8 and struct.unpack_from("<H", head, 4)[0] == constants.VERSION_LOW:
        return (
            f"a file with the minidump version 0xA793 but the signature {head[:4]!r}: the signature "
            "looks deliberately corrupted (as nanodump can do); restoring the first four bytes to "
            "'MDMP' makes it readable"
        )
    return f"not a minidump (it starts with {head[:8].hex(' ')}, not 'MDMP')"


class Minidump:
    """A parsed minidump over a :class:`ByteSource`; memory bytes are read on demand."""

    def __init__(self, source: ByteSource, name: str = "minidump") -> None:
        self.source = source
        self.name = name
        self.file_size = source.size
        self.warnings = Warnings()
        self.streams: List[StreamInfo] = []
        self.system_info: Optional[SystemInfo] = None
        self.misc_info: Optional[MiscInfo] = None
        self.modules: List[Module] = []
        self.unloaded_modules: List[UnloadedModule] = []
        self.threads: List[Thread] = []
        #: MemoryInfoList entries in address order: a compact table of :class:`MemoryInfo` records.
        self.memory_info: MemoryInfoTable = MemoryInfoTable()
        self.handles: List[Handle] = []
        self.exception: Optional[ExceptionInfo] = None
        #: Ranges exactly as the lists declared them (after bounding), before merging.
        self.memory_ranges: RangeTable = RangeTable()
        #: Sorted, non-overlapping, coalesced memory segments (see :mod:`.segments`), with an index
        #: that answers "captured bytes in [start, end)" in two bisects.
        self.segments: SegmentTable = SegmentTable()
        self.merge_report = MergeReport()
        self._sign_extension_seen = False
        self._comparison_budget = MAX_OVERLAP_COMPARISON_BYTES
        self._guessed_arch: Optional[str] = None
        self._settle_arch()
        self.header = self._read_header()
        self._directory = self._read_directory()
        self._parse_streams()

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Minidump:
        """Open a dump file; close it with :meth:`close` or use ``with``."""
        return cls(FileSource(path), name=os.path.basename(os.fspath(path)))

    def close(self) -> None:
        close = getattr(self.source, "close", None)
        if close:
            close()

    def __enter__(self) -> Minidump:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- derived facts --------------------------------------------------------------------------

    def _settle_arch(self) -> None:
        """Decide the architecture and address width once, whenever what they depend on changes."""
        if self.system_info and self.system_info.arch != "unknown":
            self._arch = self.system_info.arch
        else:
            self._arch = self._guessed_arch or "unknown"
        self._address_bits = 32 if self._arch in ("x86", "arm") else 64

    @property
    def arch(self) -> str:
        """x64, x86, arm64, ... from SystemInfo, else guessed from the thread context size."""
        return self._arch

    @property
    def address_bits(self) -> int:
        return self._address_bits

    @property
    def is_windows(self) -> bool:
        """True unless SystemInfo names another platform (a dump without SystemInfo is assumed Windows)."""
        return self.system_info is None or self.system_info.is_windows

    @property
    def is_wow64(self) -> bool:
        """A 64-bit dump of a 32-bit process: WOW64's own modules are loaded."""
        names = {module.name.lower() for module in self.modules}
        return self.arch == "x64" and bool(names & {"wow64.dll", "wow64cpu.dll", "wow64win.dll"})

    @property
    def process_id(self) -> Optional[int]:
        return self.misc_info.process_id if self.misc_info else None

    @property
    def main_module(self) -> Optional[Module]:
        """Windows writers list the process image first."""
        return self.modules[0] if self.modules else None

    @property
    def captured_bytes(self) -> int:
        return self.segments.total_bytes

    def stream(self, stream_type: int) -> Optional[StreamInfo]:
        for info in self.streams:
            if info.stream_type == stream_type and not info.note:
                return info
        return None

    # -- memory ---------------------------------------------------------------------------------

    def find_segment(self, address: int) -> Optional[MemoryRange]:
        return self.segments.find(address)

    def read(self, address: int, length: int) -> bytes:
        """Read captured memory; raises :class:`MemoryNotCaptured` at the first missing byte."""
        data = self.read_prefix(address, length)
        if len(data) != length:
            raise MemoryNotCaptured(address + len(data))
        return data

    def read_prefix(self, address: int, length: int) -> bytes:
        """The captured bytes from ``address`` on, up to ``length``; b"" when none are captured."""
        chunks, cursor, end = [], address, address + length
        segments = self.segments
        while cursor < end:
            index = segments.index_of(cursor)
            if index < 0:
                break
            start = segments.starts[index]
            take = min(end, start + segments.sizes[index]) - cursor
            data = self.source.read(segments.file_offsets[index] + (cursor - start), take)
            chunks.append(data)
            cursor += len(data)
            if len(data) != take:
                break
        return b"".join(chunks)

    def captured_within(self, start: int, end: int) -> int:
        """How many bytes of [start, end) the dump holds: two bisects over the segment prefix sums."""
        return self.segments.captured_within(start, end)

    # -- header and directory -------------------------------------------------------------------

    def _read_header(self) -> Header:
        head = self.source.read(0, structs.MINIDUMP_HEADER.sizeof())
        if not head.startswith(constants.SIGNATURE):
            raise NotAMinidumpError(f"{self.name}: {identify_foreign_format(head)}")
        if len(head) < structs.MINIDUMP_HEADER.sizeof():
            raise MinidumpError(
                f"{self.name}: truncated minidump: the file is {self.file_size} bytes, "
                f"shorter than the 32-byte MINIDUMP_HEADER"
            )
        raw = structs.MINIDUMP_HEADER.parse(head)
        if raw.Version & 0xFFFF != constants.VERSION_LOW:
            self.warnings.add(
                f"header version 0x{raw.Version:08X} does not have 0xA793 in its low 16 bits; "
                "reading it as a minidump anyway"
            )
        return Header(
            raw.Version,
            raw.NumberOfStreams,
            raw.StreamDirectoryRva,
            raw.CheckSum,
            raw.TimeDateStamp,
            raw.Flags,
        )

    def _read_directory(self) -> List[Tuple[int, int, int]]:
        entry_size = structs.MINIDUMP_DIRECTORY.sizeof()
        rva, declared = self.header.stream_directory_rva, self.header.number_of_streams
        if declared == 0:
            raise MinidumpError(f"{self.name}: the minidump header declares no streams: nothing to read")
        if rva < structs.MINIDUMP_HEADER.sizeof():
            self.warnings.add(f"the stream directory (RVA 0x{rva:X}) overlaps the 32-byte header")
        if rva >= self.file_size:
            raise MinidumpError(
                f"{self.name}: the stream directory (RVA 0x{rva:X}) lies beyond the end of the file "
                f"({self.file_size} bytes): the dump is truncated or corrupt and no stream can be found"
            )
        fits = (self.file_size - rva) // entry_size
        count = min(declared, fits, MAX_DIRECTORY_ENTRIES)
        if count < declared:
            reason = "the file ends first" if fits < declared else f"at most {MAX_DIRECTORY_ENTRIES} are read"
            self.warnings.add(
                f"the header declares {declared} streams but only {count} directory entries are read "
                f"({reason})"
            )
        if count == 0:
            raise MinidumpError(
                f"{self.name}: the stream directory at RVA 0x{rva:X} is cut off by the end of the file"
            )
        data = self.source.read(rva, count * entry_size)
        return [struct.unpack_from("<III", data, index * entry_size) for index in range(count)]

    # -- streams --------------------------------------------------------------------------------

    def _parse_streams(self) -> None:
        parsers: Dict[int, Callable[[bytes], None]] = {
            StreamType.SYSTEM_INFO: self._parse_system_info,
            StreamType.MISC_INFO: self._parse_misc_info,
            StreamType.MODULE_LIST: self._parse_module_list,
            StreamType.UNLOADED_MODULE_LIST: self._parse_unloaded_module_list,
            StreamType.MEMORY_INFO_LIST: self._parse_memory_info_list,
            StreamType.HANDLE_DATA: self._parse_handle_data,
            StreamType.EXCEPTION: self._parse_exception,
            StreamType.MEMORY64_LIST: self._parse_memory64_list,
            StreamType.MEMORY_LIST: self._parse_memory_list,
            StreamType.THREAD_LIST: self._parse_thread_list,
            StreamType.THREAD_EX_LIST: self._parse_thread_ex_list,
            StreamType.THREAD_INFO_LIST: self._parse_thread_info_list,
            StreamType.THREAD_NAMES: self._parse_thread_names,
        }
        # SystemInfo first: the architecture decides how addresses and contexts are read.
        # Thread streams last: their stacks fill gaps the memory lists leave.
        order = [
            StreamType.SYSTEM_INFO,
            StreamType.MISC_INFO,
            StreamType.MODULE_LIST,
            StreamType.UNLOADED_MODULE_LIST,
            StreamType.MEMORY_INFO_LIST,
            StreamType.HANDLE_DATA,
            StreamType.EXCEPTION,
            StreamType.MEMORY64_LIST,
            StreamType.MEMORY_LIST,
            StreamType.THREAD_INFO_LIST,
            StreamType.THREAD_NAMES,
            StreamType.THREAD_LIST,
            StreamType.THREAD_EX_LIST,
        ]
        self._thread_infos: Dict[int, object] = {}
        self._thread_names: Dict[int, str] = {}
        self._stack_ranges = RangeTable()
        self._memory64 = RangeTable()
        self._memory_list = RangeTable()
        seen: Dict[int, int] = {}
        notes: Dict[int, str] = {}
        for index, (stream_type, size, rva) in enumerate(self._directory):
            if stream_type == StreamType.UNUSED and size == 0 and rva == 0:
                notes[index] = "unused directory entry"
            elif stream_type in seen:
                notes[index] = f"duplicate of directory entry {seen[stream_type]}; the first is used"
                self.warnings.add(
                    f"stream {constants.stream_type_name(stream_type)} appears more than once; "
                    f"only directory entry {seen[stream_type]} is used"
                )
            else:
                seen[stream_type] = index
                if stream_type not in parsers:
                    notes[index] = "not interpreted"
        pending: Dict[int, Tuple[int, bytes]] = {}
        for index, (stream_type, size, rva) in enumerate(self._directory):
            present = max(0, min(size, self.file_size - rva)) if rva < self.file_size else 0
            note = notes.get(index, "")
            if not note and size and present < size:
                self.warnings.add(
                    f"stream {constants.stream_type_name(stream_type)} declares {size} bytes at RVA "
                    f"0x{rva:X} but only {present} are in the file; reading what is there"
                )
            if not note:
                limit = self._stream_read_limit(stream_type, self.source.read(rva, min(present, 16)))
                data = self.source.read(rva, min(present, limit)) if present else b""
                pending[stream_type] = (index, data)
            self.streams.append(StreamInfo(index, stream_type, rva, size, present, note))
        for stream_type in order:
            if stream_type in pending:
                index, data = pending[stream_type]
                self._run_parser(index, stream_type, parsers[stream_type], data)
        self._finish_threads()
        self._build_segments()

    def _stream_read_limit(self, stream_type: int, head: bytes) -> int:
        """How many bytes of a stream to read: enough for every entry up to the list's ceiling.

        Lists with their own {SizeOfHeader, SizeOfEntry} header are sized from it, so a ceiling is
        reached only by the entry count (and reported as such), never by a byte guess.
        """
        described = {
            StreamType.MEMORY_INFO_LIST: MAX_MEMORY_INFO_ENTRIES,
            StreamType.HANDLE_DATA: MAX_HANDLES,
            StreamType.THREAD_INFO_LIST: MAX_THREADS,
            StreamType.UNLOADED_MODULE_LIST: MAX_MODULES,
        }
        if stream_type in described and len(head) >= 8:
            size_of_header, size_of_entry = struct.unpack_from("<II", head)
            return min(size_of_header, MAX_RECORD_STRIDE) + described[stream_type] * min(
                size_of_entry, MAX_RECORD_STRIDE
            )
        # Fixed-stride lists; 8 covers the padded count some writers use.
        fixed = {
            StreamType.MEMORY64_LIST: 16 + MAX_MEMORY_RANGES * 16,
            StreamType.MEMORY_LIST: 8 + MAX_MEMORY_RANGES * 16,
            StreamType.THREAD_LIST: 8 + MAX_THREADS * 48,
            StreamType.THREAD_EX_LIST: 8 + MAX_THREADS * 64,
            StreamType.MODULE_LIST: 8 + MAX_MODULES * 108,
            StreamType.THREAD_NAMES: 4 + MAX_THREADS * 12,
        }
        return fixed.get(stream_type, 1 << 20)

    def _run_parser(self, index: int, stream_type: int, parser: Callable[[bytes], None], data: bytes) -> None:
        try:
            parser(data)
        except (ConstructError, struct.error, _StreamProblem, ValueError, OverflowError) as error:
            name = constants.stream_type_name(stream_type)
            detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            self.warnings.add(f"stream {name} could not be read ({detail}); it is ignored")
            self.streams[index] = StreamInfo(
                index,
                stream_type,
                self.streams[index].rva,
                self.streams[index].size,
                self.streams[index].present_size,
                f"unreadable: {detail}",
            )

    def _bounded_count(self, stream: str, declared: int, available: int, limit: int) -> int:
        """Entries to read: what is declared, bounded by the bytes present and the suite's ceiling."""
        count = min(declared, available, limit)
        if count < declared:
            if count == limit:
                why = f"the suite keeps at most {limit:,} entries of this list; the rest are not read"
            else:
                why = "the stream ends first"
            self.warnings.add(f"{stream} declares {declared:,} entries; only {count:,} are read ({why})")
        return count

    def _read_list_header(self, stream: str, data: bytes, header: Struct, minimum_entry: int):
        """Parse an {SizeOfHeader, SizeOfEntry, Number...} list header and bound the entry size."""
        if len(data) < header.sizeof():
            raise _StreamProblem(f"{len(data)} bytes is too short for its header")
        # Only the header's bytes: construct keeps its input alive in a reference cycle.
        raw = header.parse(data[: header.sizeof()])
        size_of_header = raw.SizeOfHeader
        size_of_entry = raw.get("SizeOfEntry", raw.get("SizeOfDescriptor"))
        if size_of_header < header.sizeof() or size_of_header > len(data):
            raise _StreamProblem(f"SizeOfHeader {size_of_header} is out of range")
        if size_of_entry < minimum_entry or size_of_entry > MAX_RECORD_STRIDE:
            raise _StreamProblem(f"entry size {size_of_entry} is out of range (expected >= {minimum_entry})")
        return raw, size_of_header, size_of_entry

    def _address(self, value: int) -> int:
        """Undo sign extension of 32-bit addresses that some x86 writers store in 64-bit fields."""
        if self._address_bits == 32 and value >> 32 == 0xFFFFFFFF:
            if not self._sign_extension_seen:
                self._sign_extension_seen = True
                self.warnings.add("sign-extended 32-bit addresses found and truncated to 32 bits")
            return value & 0xFFFFFFFF
        return value

    def _clip_size(self, base: int, size: int, what: str) -> int:
        """``size``, cut so that [base, base + size) stays inside the address space (with a warning)."""
        limit = 1 << self._address_bits
        if base + size <= limit:
            return size
        kept = max(limit - base, 0)
        self.warnings.add(
            f"{what}: 0x{base:X} + 0x{size:X} runs past the {self._address_bits}-bit address space; "
            f"the size is cut to 0x{kept:X}"
        )
        return kept

    def _read_string(self, rva: int, what: str) -> Optional[str]:
        """A MINIDUMP_STRING (u32 byte length + UTF-16LE) with every bound checked."""
        if rva == 0:
            return None
        head = self.source.read(rva, 4)
        if len(head) < 4:
            self.warnings.add(f"{what}: string RVA 0x{rva:X} lies outside the file")
            return None
        length = struct.unpack("<I", head)[0]
        if length > MAX_STRING_BYTES:
            self.warnings.add(f"{what}: string length {length} is implausible; truncated")
            length = MAX_STRING_BYTES
        if length % 2:
            self.warnings.add(f"{what}: string at RVA 0x{rva:X} has an odd byte length {length}")
            length -= 1
        data = self.source.read(rva + 4, length)
        if len(data) < length:
            self.warnings.add(f"{what}: string at RVA 0x{rva:X} is cut off by the end of the file")
            data = data[: len(data) - len(data) % 2]
        return data.decode("utf-16-le", errors="replace").split("\x00", 1)[0]

    def _parse_system_info(self, data: bytes) -> None:
        raw = structs.MINIDUMP_SYSTEM_INFO.parse(data)
        vendor = ""
        if raw.ProcessorArchitecture == constants.ProcessorArchitecture.INTEL:
            vendor = raw.Cpu[:12].decode("ascii", errors="replace").strip("\x00")
        csd = self._read_string(raw.CSDVersionRva, "SystemInfo CSDVersion") or ""
        self.system_info = SystemInfo(
            raw.ProcessorArchitecture,
            raw.ProcessorLevel,
            raw.ProcessorRevision,
            raw.NumberOfProcessors,
            raw.ProductType,
            raw.MajorVersion,
            raw.MinorVersion,
            raw.BuildNumber,
            raw.PlatformId,
            csd,
            raw.SuiteMask,
            vendor,
        )
        self._settle_arch()

    def _parse_misc_info(self, data: bytes) -> None:
        raw = structs.MINIDUMP_MISC_INFO.parse(data)
        size = min(raw.SizeOfInfo, len(data))
        flags = raw.Flags1
        integrity = protected = build = None
        if size >= structs.MISC_INFO_3_SIZE:
            tail = structs.MINIDUMP_MISC_INFO_3_TAIL.parse(data[structs.MISC_INFO_2_SIZE :])
            if flags & structs.MINIDUMP_MISC3_PROCESS_INTEGRITY:
                integrity = tail.ProcessIntegrityLevel
            if flags & structs.MINIDUMP_MISC3_PROTECTED_PROCESS:
                protected = tail.ProtectedProcess
        if size >= structs.MISC_INFO_4_SIZE and flags & structs.MINIDUMP_MISC4_BUILDSTRING:
            tail4 = structs.MINIDUMP_MISC_INFO_4_TAIL.parse(data[structs.MISC_INFO_3_SIZE :])
            build = tail4.BuildString.decode("utf-16-le", errors="replace").split("\x00", 1)[0] or None
        has_times = bool(flags & structs.MINIDUMP_MISC1_PROCESS_TIMES)
        self.misc_info = MiscInfo(
            raw.SizeOfInfo,
            flags,
            raw.ProcessId if flags & structs.MINIDUMP_MISC1_PROCESS_ID else None,
            raw.ProcessCreateTime if has_times else None,
            raw.ProcessUserTime if has_times else None,
            raw.ProcessKernelTime if has_times else None,
            integrity,
            protected,
            build,
        )

    def _parse_module_list(self, data: bytes) -> None:
        entry = structs.MINIDUMP_MODULE.sizeof()
        declared = struct.unpack_from("<I", data)[0]
        # Some writers pad the count to 8 bytes; Breakpad documents both forms.
        start = 4
        if len(data) == 8 + declared * entry:
            start = 8
        count = self._bounded_count("ModuleList", declared, (len(data) - start) // entry, MAX_MODULES)
        parse = structs.MINIDUMP_MODULE.compile().parse
        for index in range(count):
            raw = parse(data[start + index * entry : start + (index + 1) * entry])
            path = self._read_string(raw.ModuleNameRva, f"module {index} name")
            version = None
            info = raw.VersionInfo
            if info.dwSignature == structs.VS_FFI_SIGNATURE:
                ms, ls = info.dwFileVersionMS, info.dwFileVersionLS
                version = f"{ms >> 16}.{ms & 0xFFFF}.{ls >> 16}.{ls & 0xFFFF}"
            pdb_name, pdb_guid, pdb_age = self._read_cv_record(raw.CvRecord.Rva, raw.CvRecord.DataSize)
            base = self._address(raw.BaseOfImage)
            self.modules.append(
                Module(
                    base,
                    self._clip_size(base, raw.SizeOfImage, f"module {index} (SizeOfImage)"),
                    raw.CheckSum,
                    raw.TimeDateStamp,
                    path if path is not None else f"<unreadable name, module {index}>",
                    version,
                    pdb_name,
                    pdb_guid,
                    pdb_age,
                )
            )

    def _read_cv_record(self, rva: int, size: int) -> Tuple[Optional[str], Optional[str], Optional[int]]:
        if not rva or size < 24:
            return None, None, None
        data = self.source.read(rva, min(size, MAX_CV_RECORD_BYTES))
        if not data.startswith(b"RSDS") or len(data) < 24:
            return None, None, None
        raw = structs.CV_INFO_PDB70_HEADER.parse(data)
        guid = raw.Signature
        guid_text = (
            f"{struct.unpack_from('<I', guid)[0]:08X}{struct.unpack_from('<H', guid, 4)[0]:04X}"
            f"{struct.unpack_from('<H', guid, 6)[0]:04X}{guid[8:].hex().upper()}"
        )
        name = data[24:].split(b"\x00", 1)[0].decode("utf-8", errors="replace")
        return name, guid_text, raw.Age

    def _parse_unloaded_module_list(self, data: bytes) -> None:
        raw, header_size, entry_size = self._read_list_header(
            "UnloadedModuleList",
            data,
            structs.MINIDUMP_UNLOADED_MODULE_LIST_HEADER,
            structs.UNLOADED_MODULE.size,
        )
        count = self._bounded_count(
            "UnloadedModuleList", raw.NumberOfEntries, (len(data) - header_size) // entry_size, MAX_MODULES
        )
        for index, item in enumerate(
            structs.UNLOADED_MODULE.iter_parse(data[header_size:], count, entry_size)
        ):
            path = self._read_string(item.ModuleNameRva, f"unloaded module {index} name")
            self.unloaded_modules.append(
                UnloadedModule(
                    self._address(item.BaseOfImage),
                    item.SizeOfImage,
                    item.CheckSum,
                    item.TimeDateStamp,
                    path if path is not None else f"<unreadable name, unloaded module {index}>",
                )
            )

    def _parse_memory_info_list(self, data: bytes) -> None:
        raw, header_size, entry_size = self._read_list_header(
            "MemoryInfoList", data, structs.MINIDUMP_MEMORY_INFO_LIST_HEADER, structs.MEMORY_INFO.size
        )
        count = self._bounded_count(
            "MemoryInfoList",
            raw.NumberOfEntries,
            (len(data) - header_size) // entry_size,
            MAX_MEMORY_INFO_ENTRIES,
        )
        # Column-wise: a million entries never become a million Python objects.
        fields = structs.MEMORY_INFO.columns(memoryview(data)[header_size:], count, entry_size)
        bases, allocation_bases, sizes = fields["BaseAddress"], fields["AllocationBase"], fields["RegionSize"]
        if self._address_bits == 32:
            bases = array(bases.typecode, map(self._address, bases))
            allocation_bases = array(allocation_bases.typecode, map(self._address, allocation_bases))
        table = self.memory_info
        table.extend_columns(
            (
                bases,
                allocation_bases,
                fields["AllocationProtect"],
                sizes,
                fields["State"],
                fields["Protect"],
                fields["Type"],
            )
        )
        limit = 1 << self._address_bits
        outside = [index for index, (base, size) in enumerate(zip(bases, sizes)) if base + size > limit]
        empty = [index for index, size in enumerate(sizes) if not size] if 0 in sizes else []
        if outside or empty:
            dropped = set(outside) | set(empty)
            table.keep(index for index in range(len(table)) if index not in dropped)
        if outside:
            self.warnings.add(
                f"MemoryInfoList: {len(outside)} entries extend past the {self._address_bits}-bit address "
                "space and are ignored"
            )
        if empty:
            self.warnings.add(
                f"MemoryInfoList: {len(empty)} entries declare a RegionSize of 0 and are ignored"
            )
        if not table.is_sorted():
            self.warnings.add("MemoryInfoList entries are not in address order; they were sorted")
            table.sort()

    def _parse_handle_data(self, data: bytes) -> None:
        raw, header_size, entry_size = self._read_list_header(
            "HandleData", data, structs.MINIDUMP_HANDLE_DATA_STREAM_HEADER, structs.HANDLE_DESCRIPTOR.size
        )
        count = self._bounded_count(
            "HandleData", raw.NumberOfDescriptors, (len(data) - header_size) // entry_size, MAX_HANDLES
        )
        names: Dict[int, Optional[str]] = {}

        def name_at(rva: int, what: str) -> Optional[str]:
            if rva not in names:
                names[rva] = self._read_string(rva, what)
            return names[rva]

        for item in structs.HANDLE_DESCRIPTOR.iter_parse(data[header_size:], count, entry_size):
            self.handles.append(
                Handle(
                    item.Handle,
                    name_at(item.TypeNameRva, "handle type name"),
                    name_at(item.ObjectNameRva, "handle object name"),
                    item.Attributes,
                    item.GrantedAccess,
                    item.HandleCount,
                    item.PointerCount,
                )
            )

    def _parse_exception(self, data: bytes) -> None:
        raw = structs.MINIDUMP_EXCEPTION_STREAM.parse(data)
        self._exception_raw = raw
        self.exception = ExceptionInfo(
            raw.ThreadId, raw.ExceptionCode, raw.ExceptionFlags, self._address(raw.ExceptionAddress)
        )

    def _check_range(self, start: int, size: int, what: str, counters: Dict[str, int]) -> Optional[int]:
        """Return the usable start of a declared range, or None (and count why) when it is unusable."""
        start = self._address(start)
        if start + size > 1 << 64:
            counters["wrap"] += 1
            return None
        if start + size > 1 << self._address_bits:
            counters["space"] += 1
            return None
        return start

    def _report_range_problems(self, stream: str, counters: Dict[str, int]) -> None:
        if counters["wrap"]:
            self.warnings.add(f"{stream}: {counters['wrap']} ranges wrap past 2^64 and are ignored")
        if counters["space"]:
            self.warnings.add(
                f"{stream}: {counters['space']} ranges lie outside the {self.address_bits}-bit address space "
                "and are ignored"
            )
        if counters["missing"] or counters["partial"]:
            self.warnings.add(
                f"{stream}: data truncated: {counters['missing']} ranges lie wholly beyond the end of the "
                f"file and {counters['partial']} are cut short ({counters['lost']:,} bytes of memory lost); "
                "the bytes that are present are still read"
            )

    def _add_file_range(
        self,
        target: RangeTable,
        start: int,
        size: int,
        offset: int,
        source: str,
        counters: Dict[str, int],
    ) -> None:
        usable = self._check_range(start, size, source, counters)
        if usable is None or size == 0:
            return
        present = max(0, min(size, self.file_size - offset))
        if present < size:
            counters["missing" if present == 0 else "partial"] += 1
            counters["lost"] += size - present
        if present:
            target.append(usable, present, offset, source)

    def _parse_memory64_list(self, data: bytes) -> None:
        raw = structs.MINIDUMP_MEMORY64_LIST_HEADER.parse(
            data[: structs.MINIDUMP_MEMORY64_LIST_HEADER.sizeof()]
        )
        header_size = structs.MINIDUMP_MEMORY64_LIST_HEADER.sizeof()
        count = self._bounded_count(
            "Memory64List", raw.NumberOfMemoryRanges, (len(data) - header_size) // 16, MAX_MEMORY_RANGES
        )
        counters = {"wrap": 0, "space": 0, "missing": 0, "partial": 0, "lost": 0}
        offset = raw.BaseRva
        fields = structs.MEMORY_DESCRIPTOR64.columns(memoryview(data)[header_size:], count, 16)
        starts, sizes = fields["StartOfMemoryRange"], fields["DataSize"]
        table, file_size, space = self._memory64, self.file_size, 1 << self._address_bits
        source_id = table.source_id("Memory64List")
        append_start, append_size = table.starts.append, table.sizes.append
        append_offset, append_source = table.file_offsets.append, table.source_ids.append
        for start, size in zip(starts, sizes):
            # The common case inline (a range inside the address space and the file); the rest
            # goes through the checks that count what was wrong.
            if self._address_bits == 64 and start + size <= space and offset + size <= file_size and size:
                append_start(start)
                append_size(size)
                append_offset(offset)
                append_source(source_id)
            else:
                self._add_file_range(table, start, size, offset, "Memory64List", counters)
            offset += size
        self._report_range_problems("Memory64List", counters)

    def _parse_memory_list(self, data: bytes) -> None:
        declared = struct.unpack_from("<I", data)[0]
        entry = structs.MEMORY_DESCRIPTOR.size
        start = 8 if len(data) == 8 + declared * entry else 4
        count = self._bounded_count("MemoryList", declared, (len(data) - start) // entry, MAX_MEMORY_RANGES)
        counters = {"wrap": 0, "space": 0, "missing": 0, "partial": 0, "lost": 0}
        for item in structs.MEMORY_DESCRIPTOR.iter_parse(data[start:], count, entry):
            self._add_file_range(
                self._memory_list, item.StartOfMemoryRange, item.DataSize, item.Rva, "MemoryList", counters
            )
        self._report_range_problems("MemoryList", counters)

    def _parse_thread_info_list(self, data: bytes) -> None:
        raw, header_size, entry_size = self._read_list_header(
            "ThreadInfoList", data, structs.MINIDUMP_THREAD_INFO_LIST_HEADER, structs.THREAD_INFO.size
        )
        count = self._bounded_count(
            "ThreadInfoList", raw.NumberOfEntries, (len(data) - header_size) // entry_size, MAX_THREADS
        )
        for item in structs.THREAD_INFO.iter_parse(data[header_size:], count, entry_size):
            self._thread_infos.setdefault(item.ThreadId, item)

    def _parse_thread_names(self, data: bytes) -> None:
        declared = struct.unpack_from("<I", data)[0]
        count = self._bounded_count("ThreadNames", declared, (len(data) - 4) // 12, MAX_THREADS)
        for item in structs.THREAD_NAME.iter_parse(data[4:], count, 12):
            if item.RvaOfThreadName < self.file_size:
                name = self._read_string(item.RvaOfThreadName, "thread name")
                if name:
                    self._thread_names[item.ThreadId] = name

    def _parse_thread_list(self, data: bytes) -> None:
        self._parse_threads(data, structs.MINIDUMP_THREAD, "ThreadList")

    def _parse_thread_ex_list(self, data: bytes) -> None:
        if self.threads:
            return  # ThreadExList repeats ThreadList with backing stores (IA64 only).
        self._parse_threads(data, structs.MINIDUMP_THREAD_EX, "ThreadExList")

    def _parse_threads(self, data: bytes, layout, stream: str) -> None:
        entry = layout.sizeof()
        declared = struct.unpack_from("<I", data)[0]
        start = 8 if len(data) == 8 + declared * entry else 4
        count = self._bounded_count(stream, declared, (len(data) - start) // entry, MAX_THREADS)
        parse = layout.compile().parse
        counters = {"wrap": 0, "space": 0, "missing": 0, "partial": 0, "lost": 0}
        self._raw_threads = []
        for index in range(count):
            raw = parse(data[start + index * entry : start + (index + 1) * entry])
            stack = raw.Stack
            # dbghelp full dumps may leave Stack.Rva 0: the stack is then found by address.
            if stack.Rva and stack.DataSize:
                self._add_file_range(
                    self._stack_ranges,
                    stack.StartOfMemoryRange,
                    stack.DataSize,
                    stack.Rva,
                    "thread stack",
                    counters,
                )
            self._raw_threads.append(raw)
        self._report_range_problems(f"{stream} stacks", counters)

    def _finish_threads(self) -> None:
        for raw in getattr(self, "_raw_threads", []):
            context = raw.ThreadContext
            ip = sp = fp = None
            if context.Rva and context.DataSize:
                blob = self.source.read(context.Rva, min(context.DataSize, MAX_CONTEXT_BYTES))
                if self._guessed_arch is None and not self.system_info:
                    self._guessed_arch = {1232: "x64", 716: "x86"}.get(context.DataSize)
                    self._settle_arch()
                ip, sp = self._registers(blob)
                fp = self._frame_pointer(blob)
            info = self._thread_infos.get(raw.ThreadId)
            self.threads.append(
                Thread(
                    raw.ThreadId,
                    raw.SuspendCount,
                    raw.PriorityClass,
                    raw.Priority,
                    self._address(raw.Teb),
                    self._address(raw.Stack.StartOfMemoryRange),
                    self._clip_size(
                        self._address(raw.Stack.StartOfMemoryRange),
                        raw.Stack.DataSize,
                        f"thread {raw.ThreadId} stack",
                    ),
                    context.DataSize,
                    ip,
                    sp,
                    self._address(info.StartAddress) if info else None,
                    info.CreateTime if info else None,
                    info.ExitStatus if info else None,
                    info.DumpFlags if info else None,
                    self._thread_names.get(raw.ThreadId),
                    frame_pointer=fp,
                )
            )
        if not self.threads and self._thread_infos:
            self.warnings.add("ThreadInfoList is present but ThreadList is not: thread contexts are unknown")
        raw_exception = getattr(self, "_exception_raw", None)
        if self.exception and raw_exception and raw_exception.ThreadContext.Rva:
            location = raw_exception.ThreadContext
            blob = self.source.read(location.Rva, min(location.DataSize, MAX_CONTEXT_BYTES))
            # The faulting context: ThreadList holds the handler's state at dump time instead.
            self.exception = dataclasses.replace(self.exception, context_ip=self._registers(blob)[0])

    def _registers(self, blob: bytes) -> Tuple[Optional[int], Optional[int]]:
        layout = structs.CONTEXT_REGISTERS.get(self.arch)
        if layout is None:
            return None, None
        values = []
        for register in ("ip", "sp"):
            offset, size = layout[register]
            if len(blob) < offset + size:
                values.append(None)
            else:
                values.append(int.from_bytes(blob[offset : offset + size], "little"))
        return values[0], values[1]

    def _frame_pointer(self, blob: bytes) -> Optional[int]:
        offset, size = structs.CONTEXT_REGISTERS.get(self.arch, {}).get("fp", (0, 0))
        if not size or len(blob) < offset + size:
            return None
        return int.from_bytes(blob[offset : offset + size], "little")

    def _build_segments(self) -> None:
        ranges = RangeTable()
        for part in (self._memory64, self._memory_list, self._stack_ranges):
            ranges.extend(part)
        self.memory_ranges = ranges
        self._memory64 = self._memory_list = self._stack_ranges = RangeTable()
        self.segments, self.merge_report = merge_table(ranges, self._same_file_bytes)
        if self.merge_report.conflicting_ranges:
            self.warnings.add(
                f"{self.merge_report.conflicting_ranges} memory ranges overlap earlier ones stored elsewhere "
                f"in the file ({self.merge_report.conflicting_bytes:,} bytes); the earlier range's bytes "
                "are used"
            )
        if not self.segments:
            self.warnings.add("the dump holds no process memory (no MemoryList or Memory64List data)")

    def _same_file_bytes(self, first: int, second: int, length: int) -> bool:
        """Compare two stored copies of memory, within a total budget so hostile overlaps stay cheap."""
        if length > self._comparison_budget:
            return False
        self._comparison_budget -= length
        for offset in range(0, length, 1 << 20):
            size = min(1 << 20, length - offset)
            if self.source.read(first + offset, size) != self.source.read(second + offset, size):
                return False
        return True

    @property
    def is_usable(self) -> bool:
        """Whether any stream gave the reader something to report."""
        return bool(
            self.system_info
            or self.misc_info
            or self.modules
            or self.threads
            or self.memory_info
            or self.handles
            or self.segments
        )

    def require_usable(self) -> None:
        """Raise :class:`MinidumpError` naming what went wrong when nothing at all could be read."""
        if not self.is_usable:
            problems = "; ".join(self.warnings) or "its directory names no stream this reader understands"
            raise MinidumpError(f"{self.name}: no usable data in this minidump: {problems}")

    def require_windows(self) -> None:
        """Raise :class:`InputError` for Linux, macOS, iOS, Android... minidumps."""
        if not self.is_windows:
            info = self.system_info
            raise InputError(
                f"{self.name}: this minidump was written on {info.platform_name} "
                f"(PlatformId 0x{info.platform_id:X}, {info.version_text}); wmi-forensics reads Windows "
                "process dumps only"
            )


class _StreamProblem(Exception):
    """A stream's own fields contradict themselves; the stream is skipped with a warning."""
