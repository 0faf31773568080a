"""Typed, read-only views of what a minidump says about the process.

Plugins and the detection engine see these objects, never raw construct containers.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Optional

from . import constants


def filetime_to_datetime(value: int) -> Optional[datetime.datetime]:
    """FILETIME (100 ns since 1601) to an aware UTC datetime; None for 0 or absurd values."""
    if value <= 0:
        return None
    try:
        return datetime.datetime(1601, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(
            microseconds=value // 10
        )
    except OverflowError:
        return None


def unix_to_datetime(value: int) -> Optional[datetime.datetime]:
    if value <= 0:
        return None
    try:
        return datetime.datetime.fromtimestamp(value, tz=datetime.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


@dataclass(frozen=True)
class Header:
    version: int
    number_of_streams: int
    stream_directory_rva: int
    checksum: int
    timestamp: int
    flags: int

    @property
    def written_at(self) -> Optional[datetime.datetime]:
        return unix_to_datetime(self.timestamp)

    @property
    def implementation_version(self) -> int:
        """The writer-specific high half of Version (dbghelp puts its build there)."""
        return self.version >> 16


@dataclass(frozen=True)
class StreamInfo:
    index: int
    stream_type: int
    rva: int
    size: int
    #: Bytes of the stream actually inside the file (less than ``size`` when truncated).
    present_size: int
    #: Why the stream was not used, or "" when it was parsed.
    note: str = ""

    @property
    def type_name(self) -> str:
        return constants.stream_type_name(self.stream_type)


@dataclass(frozen=True)
class SystemInfo:
    processor_architecture: int
    processor_level: int
    processor_revision: int
    number_of_processors: int
    product_type: int
    major_version: int
    minor_version: int
    build_number: int
    platform_id: int
    csd_version: str
    suite_mask: int
    vendor_id: str

    @property
    def arch(self) -> str:
        # IntEnum members hash as their values: a plain dict lookup, no enum built per call.
        return constants.ARCHITECTURE_NAMES.get(self.processor_architecture, "unknown")

    @property
    def platform_name(self) -> str:
        return constants.PLATFORM_NAMES.get(self.platform_id, f"unknown platform 0x{self.platform_id:X}")

    @property
    def is_windows(self) -> bool:
        return self.platform_id in constants.WINDOWS_PLATFORM_IDS

    @property
    def version_text(self) -> str:
        text = f"{self.major_version}.{self.minor_version}.{self.build_number}"
        return f"{text} {self.csd_version}".strip()


@dataclass(frozen=True)
class MiscInfo:
    size_of_info: int
    flags1: int
    process_id: Optional[int]
    process_create_time: Optional[int]
    process_user_time: Optional[int]
    process_kernel_time: Optional[int]
    process_integrity_level: Optional[int] = None
    protected_process: Optional[int] = None
    build_string: Optional[str] = None

    @property
    def process_created_at(self) -> Optional[datetime.datetime]:
        return unix_to_datetime(self.process_create_time or 0)


@dataclass(frozen=True)
class Module:
    base: int
    size: int
    checksum: int
    timestamp: int
    path: str
    file_version: Optional[str] = None
    pdb_name: Optional[str] = None
    pdb_guid: Optional[str] = None
    pdb_age: Optional[int] = None

    @property
    def end(self) -> int:
        return self.base + self.size

    @property
    def name(self) -> str:
        """File name part of the path, whichever separator the writer used."""
        return self.path.replace("/", "\\").rsplit("\\", 1)[-1]

    def contains(self, address: int) -> bool:
        return self.base <= address < self.end


@dataclass(frozen=True)
class UnloadedModule:
    base: int
    size: int
    checksum: int
    timestamp: int
    path: str

    @property
    def name(self) -> str:
        return self.path.replace("/", "\\").rsplit("\\", 1)[-1]


@dataclass(frozen=True)
class Thread:
    thread_id: int
    suspend_count: int
    priority_class: int
    priority: int
    teb: int
    stack_start: int
    stack_size: int
    context_size: int
    instruction_pointer: Optional[int] = None
    stack_pointer: Optional[int] = None
    #: From ThreadInfoList when the writer included it.
    start_address: Optional[int] = None
    create_time: Optional[int] = None
    exit_status: Optional[int] = None
    dump_flags: Optional[int] = None
    name: Optional[str] = None
    #: Rbp/Ebp from the CONTEXT, for frame-chain walks.
    frame_pointer: Optional[int] = None

    @property
    def created_at(self) -> Optional[datetime.datetime]:
        return filetime_to_datetime(self.create_time or 0)


class RegionProperties:
    """Derived views of a region's state, protection and type, shared by every region record."""

    base: int
    size: int
    state: int
    protect: int
    allocation_protect: int
    type: int

    @property
    def end(self) -> int:
        return self.base + self.size

    @property
    def is_committed(self) -> bool:
        return self.state == constants.MEM_COMMIT

    @property
    def is_executable(self) -> bool:
        return self.is_committed and constants.is_executable(self.protect)

    @property
    def is_image(self) -> bool:
        return self.type == constants.MEM_IMAGE

    @property
    def state_name(self) -> str:
        return constants.state_name(self.state)

    @property
    def type_name(self) -> str:
        return constants.type_name(self.type)

    @property
    def protect_name(self) -> str:
        return constants.protection_name(self.protect)

    @property
    def allocation_protect_name(self) -> str:
        return constants.protection_name(self.allocation_protect)


@dataclass(frozen=True)
class MemoryInfo(RegionProperties):
    """One MINIDUMP_MEMORY_INFO entry: the only source of current protection and region type."""

    base: int
    allocation_base: int
    allocation_protect: int
    size: int
    state: int
    protect: int
    type: int


@dataclass(frozen=True)
class Handle:
    handle: int
    type_name: Optional[str]
    object_name: Optional[str]
    attributes: int
    granted_access: int
    handle_count: int
    pointer_count: int


@dataclass(frozen=True)
class ExceptionInfo:
    thread_id: int
    code: int
    flags: int
    address: int
    #: Instruction pointer in the exception's own CONTEXT (the faulting state).
    context_ip: Optional[int] = None


@dataclass
class Warnings:
    """Deduplicated, ordered problems found while reading; each says what was lost."""

    messages: list[str] = field(default_factory=list)

    def add(self, message: str) -> None:
        if message not in self.messages and len(self.messages) < 200:
            self.messages.append(message)

    def __iter__(self):
        return iter(self.messages)

    def __len__(self) -> int:
        return len(self.messages)
