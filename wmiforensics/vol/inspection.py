"""Row builders for the minidump inspection plugins (``wmi.dumpinfo``, ``wmi.regions``, ...).

Kept out of ``plugins/`` so the plugin files stay thin and the logic is testable without the CLI.
Each ``*_COLUMNS`` list is the TreeGrid header; each generator yields ``(0, row)`` tuples.
"""

from __future__ import annotations

import datetime
from typing import Iterator, Optional

from volatility3.framework.renderers import format_hints

from ..addressmap import AddressMap
from ..minidump import constants
from ..minidump.flags import describe_flags
from ..minidump.reader import Minidump
from .common import MISSING, hex_or_na, name_or_na, text_or_na

SUMMARY_COLUMNS = [("Section", str), ("Item", str), ("Value", str)]


def _size_text(value: int) -> str:
    return f"{value:,} bytes ({value / (1 << 20):,.1f} MiB)"


def _time_text(value: Optional[datetime.datetime]):
    return value.isoformat() if value else MISSING


def committed_bytes(dump: Minidump) -> int:
    table = dump.memory_info
    return sum(size for size, state in zip(table.sizes, table.states) if state == constants.MEM_COMMIT)


def committed_not_captured(dump: Minidump) -> tuple[int, int]:
    """Committed bytes with no data in the dump, and how many committed regions lack some bytes.

    Each region costs two bisects over the segments' prefix sums, never a walk over segments.
    """
    missing, regions = 0, 0
    table, captured_within = dump.memory_info, dump.captured_within
    for base, size, state in zip(table.bases, table.sizes, table.states):
        if state == constants.MEM_COMMIT:
            gap = size - captured_within(base, base + size)
            if gap:
                missing += gap
                regions += 1
    return missing, regions


def summary_rows(dump: Minidump, file_size: int) -> Iterator[tuple]:
    """Dump-level facts a responder checks first, then the stream inventory and every warning."""

    def row(section: str, item: str, value: object) -> tuple:
        return (0, (section, item, str(value)))

    header = dump.header
    yield row("dump", "File", dump.name)
    yield row("dump", "File size", _size_text(file_size))
    yield row(
        "dump",
        "Format",
        f"MDMP version 0x{header.version & 0xFFFF:04X} (writer-specific 0x{header.version >> 16:04X})",
    )
    yield row("dump", "Written at", _time_text(header.written_at))
    yield row("dump", "Writer flags", f"0x{header.flags:X} {describe_flags(header.flags)}")
    yield row("dump", "Streams", f"{len(dump.streams)} directory entries")

    main = dump.main_module
    misc = dump.misc_info
    yield row("process", "Process ID", dump.process_id if dump.process_id is not None else MISSING)
    yield row("process", "Image", main.path if main else MISSING)
    yield row("process", "Created", _time_text(misc.process_created_at) if misc else MISSING)
    arch = dump.arch + (" (WOW64: 32-bit process in a 64-bit dump)" if dump.is_wow64 else "")
    yield row("process", "Architecture", arch)
    info = dump.system_info
    if info:
        yield row("system", "Windows version", info.version_text)
        yield row("system", "Platform", info.platform_name)
        yield row("system", "Processors", info.number_of_processors)
        yield row(
            "system",
            "Product type",
            {1: "workstation", 2: "domain controller", 3: "server"}.get(
                info.product_type, str(info.product_type)
            ),
        )
    else:
        yield row("system", "Windows version", "unknown (no SystemInfo stream)")
    if misc and misc.build_string:
        yield row("system", "Build string", misc.build_string)
    if dump.exception:
        exc = dump.exception
        text = f"code 0x{exc.code:08X} at 0x{exc.address:x} in thread {exc.thread_id}"
        if exc.context_ip is not None and exc.context_ip != exc.address:
            text += f" (faulting IP 0x{exc.context_ip:x})"
        yield row("process", "Exception", text)

    yield row("contents", "Modules", len(dump.modules))
    yield row("contents", "Unloaded modules", len(dump.unloaded_modules))
    yield row("contents", "Threads", len(dump.threads))
    yield row("contents", "Handles", len(dump.handles))
    yield row("contents", "Memory regions (MemoryInfoList)", len(dump.memory_info))
    yield row("memory", "Memory ranges declared", len(dump.memory_ranges))
    yield row("memory", "Segments after merging", len(dump.segments))
    yield row("memory", "Captured", _size_text(dump.captured_bytes))
    if dump.memory_info:
        committed = committed_bytes(dump)
        missing, regions = committed_not_captured(dump)
        yield row("memory", "Committed", _size_text(committed))
        yield row("memory", "Committed but not captured", f"{_size_text(missing)} in {regions} regions")
    else:
        yield row("memory", "Committed", "unknown (no MemoryInfoList stream)")

    for stream in dump.streams:
        value = f"{stream.size:,} bytes at RVA 0x{stream.rva:X}"
        if stream.present_size < stream.size:
            value += f" ({stream.present_size:,} present)"
        if stream.note:
            value += f"; {stream.note}"
        yield row("stream", f"[{stream.index}] {stream.type_name}", value)
    for message in dump.warnings:
        yield row("warning", "Warning", message)


REGION_COLUMNS = [
    ("Base", format_hints.Hex),
    ("End", format_hints.Hex),
    ("Size", format_hints.Hex),
    ("State", str),
    ("Protection", str),
    ("AllocationBase", format_hints.Hex),
    ("AllocationProtection", str),
    ("Type", str),
    ("CapturedBytes", int),
    ("Module", str),
]


def region_rows(dump: Minidump, include_free: bool = False) -> Iterator[tuple]:
    """MemoryInfoList entries like ``windows.vadinfo``; captured ranges when a writer left it out."""
    address_map = AddressMap(dump.memory_info, dump.modules)
    if not dump.memory_info:
        for segment in dump.segments:
            module = address_map.module_of(segment.start)
            yield (
                0,
                (
                    format_hints.Hex(segment.start),
                    format_hints.Hex(segment.end - 1),
                    format_hints.Hex(segment.size),
                    "captured (no MemoryInfoList)",
                    MISSING,
                    MISSING,
                    MISSING,
                    MISSING,
                    segment.size,
                    module.name if module else MISSING,
                ),
            )
        return
    # Straight from the table's columns: a million rows without a million intermediate records.
    table = dump.memory_info
    module_of, captured_within = address_map.module_of, dump.captured_within
    protection_name, state_name, type_name = (
        constants.protection_name,
        constants.state_name,
        constants.type_name,
    )
    hex_value, free, committed, image = (
        format_hints.Hex,
        constants.MEM_FREE,
        constants.MEM_COMMIT,
        constants.MEM_IMAGE,
    )
    columns = (table.bases, table.sizes, table.states, table.protects, table.allocation_bases)
    for base, size, state, protect, allocation_base, allocation_protect, kind in zip(
        *columns, table.allocation_protects, table.types
    ):
        if state == free and not include_free:
            continue
        module = module_of(base)
        end = base + size
        yield (
            0,
            (
                hex_value(base),
                hex_value(end - 1),
                hex_value(size),
                name_or_na(state_name(state)),
                name_or_na(protection_name(protect)),
                hex_value(allocation_base) if state != free else MISSING,
                name_or_na(protection_name(allocation_protect)),
                name_or_na(type_name(kind)),
                captured_within(base, end) if state == committed else 0,
                module.name if module else (MISSING if kind != image else "unlisted image"),
            ),
        )


MODULE_COLUMNS = [
    ("Base", format_hints.Hex),
    ("Size", format_hints.Hex),
    ("Name", str),
    ("Path", str),
    ("Loaded", bool),
    ("FileVersion", str),
    ("TimeDateStamp", datetime.datetime),
    ("PdbName", str),
    ("HeaderCaptured", bool),
]


def module_rows(dump: Minidump) -> Iterator[tuple]:
    """Loader-reported modules, then unloaded ones (Loaded = False)."""
    for module in dump.modules:
        yield (
            0,
            (
                format_hints.Hex(module.base),
                format_hints.Hex(module.size),
                module.name,
                module.path,
                True,
                text_or_na(module.file_version),
                _timestamp(module.timestamp),
                text_or_na(module.pdb_name),
                dump.captured_within(module.base, module.base + 2) == 2,
            ),
        )
    for module in dump.unloaded_modules:
        yield (
            0,
            (
                format_hints.Hex(module.base),
                format_hints.Hex(module.size),
                module.name,
                module.path,
                False,
                MISSING,
                _timestamp(module.timestamp),
                MISSING,
                dump.captured_within(module.base, module.base + 2) == 2,
            ),
        )


def _timestamp(value: int):
    if not value:
        return MISSING
    return datetime.datetime.fromtimestamp(value, tz=datetime.timezone.utc)


THREAD_COLUMNS = [
    ("TID", int),
    ("Teb", format_hints.Hex),
    ("StartAddress", format_hints.Hex),
    ("StartLocation", str),
    ("InstructionPointer", format_hints.Hex),
    ("IpLocation", str),
    ("StackPointer", format_hints.Hex),
    ("StackBase", format_hints.Hex),
    ("StackSize", format_hints.Hex),
    ("SuspendCount", int),
    ("Priority", int),
    ("CreateTime", datetime.datetime),
    ("Name", str),
]


def thread_rows(dump: Minidump) -> Iterator[tuple]:
    """Threads with where their start address and current instruction pointer lie."""
    address_map = AddressMap(dump.memory_info, dump.modules)
    for thread in dump.threads:
        created = thread.created_at
        yield (
            0,
            (
                thread.thread_id,
                format_hints.Hex(thread.teb),
                hex_or_na(thread.start_address),
                address_map.describe(thread.start_address) if thread.start_address is not None else MISSING,
                hex_or_na(thread.instruction_pointer),
                address_map.describe(thread.instruction_pointer)
                if thread.instruction_pointer is not None
                else MISSING,
                hex_or_na(thread.stack_pointer),
                format_hints.Hex(thread.stack_start),
                format_hints.Hex(thread.stack_size),
                thread.suspend_count,
                thread.priority,
                created if created else MISSING,
                text_or_na(thread.name),
            ),
        )


HANDLE_COLUMNS = [
    ("PID", int),
    ("Process", str),
    ("Handle", format_hints.Hex),
    ("Type", str),
    ("Name", str),
    ("GrantedAccess", format_hints.Hex),
    ("Attributes", format_hints.Hex),
    ("HandleCount", int),
    ("PointerCount", int),
]


def handle_rows(dump: Minidump, type_filter: Optional[str] = None) -> Iterator[tuple]:
    """HandleData entries; a named pipe shows as type File, name ``\\Device\\NamedPipe\\...``."""
    wanted = type_filter.lower() if type_filter else None
    pid = dump.process_id
    process = dump.modules[0].path.replace("/", "\\").rpartition("\\")[2] if dump.modules else None
    for handle in dump.handles:
        if wanted and (handle.type_name or "").lower() != wanted:
            continue
        yield (
            0,
            (
                pid if pid is not None else MISSING,
                text_or_na(process),
                format_hints.Hex(handle.handle),
                text_or_na(handle.type_name),
                text_or_na(handle.object_name),
                format_hints.Hex(handle.granted_access),
                format_hints.Hex(handle.attributes),
                handle.handle_count,
                handle.pointer_count,
            ),
        )


def image_handle_rows(processes, type_filter: Optional[str] = None) -> Iterator[tuple]:
    """Handles of full-image processes: ``processes`` yields (pid, name, [HandleFact])."""
    wanted = type_filter.lower() if type_filter else None
    for pid, name, handles in processes:
        for handle in handles:
            if wanted and (handle.type_name or "").lower() != wanted:
                continue
            yield (
                0,
                (
                    pid,
                    text_or_na(name),
                    format_hints.Hex(handle.handle),
                    text_or_na(handle.type_name),
                    text_or_na(handle.object_name),
                    format_hints.Hex(handle.granted_access),
                    MISSING,
                    MISSING,
                    MISSING,
                ),
            )
