"""A second walk of ETW providers and server-silo loggers, written from public documentation.

It shares no code with ``wmiforensics.etw.reader`` and takes no structure layout from an ISF: the
member offsets below are those Geoff Chappell documents for x64 kernels

- ETW_GUID_ENTRY: https://www.geoffchappell.com/studies/windows/km/ntoskrnl/inc/ntos/etw/guid_entry.htm
  (RefCount became 8 bytes in 1607; 1709 inserted SiloGuidList after GuidList),
- ETW_REG_ENTRY: https://www.geoffchappell.com/studies/windows/km/ntoskrnl/inc/ntos/etw/reg_entry.htm
  (RegList first, GuidEntry at 0x20),
- TRACE_ENABLE_INFO (Microsoft's documented EnumerateTraceGuidsEx output):
  https://learn.microsoft.com/windows/win32/api/evntrace/ns-evntrace-trace_enable_info ,
- the GUID hash: 64 buckets of three list heads and a push lock, index = XOR of the GUID's four
  dwords, low six bits.

Only where a structure sits (a global's address, the hash table's and logger array's place inside the
silo state, which move with patch levels) comes from the caller.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Tuple

Read = Callable[[int, int], bytes]

BUCKETS = 64
BUCKET_SIZE = 3 * 16 + 8
TRACE_ENABLE_INFO_SIZE = 0x20


@dataclass(frozen=True)
class GuidEntryLayout:
    guid: int
    reg_list_head: int
    provider_enable_info: int
    enable_info: int


#: By Windows version, from the pages above.
GUID_ENTRY = {
    "6.1": GuidEntryLayout(guid=0x14, reg_list_head=0x28, provider_enable_info=0x50, enable_info=0x70),
    "1607": GuidEntryLayout(guid=0x18, reg_list_head=0x28, provider_enable_info=0x50, enable_info=0x70),
    "1709+": GuidEntryLayout(guid=0x28, reg_list_head=0x38, provider_enable_info=0x60, enable_info=0x80),
}
REG_ENTRY_GUID_ENTRY = 0x20


def layout_for(build: int) -> GuidEntryLayout:
    if build < 10240:
        return GUID_ENTRY["6.1"]
    return GUID_ENTRY["1607"] if build < 16299 else GUID_ENTRY["1709+"]


@dataclass(frozen=True)
class WalkedProvider:
    guid: str
    entry: int
    bucket: int
    list_index: int
    is_enabled: bool
    enabled_by: Tuple[int, ...]
    registrations: Tuple[int, ...]


def _u64(read: Read, address: int) -> int:
    return struct.unpack("<Q", read(address, 8))[0]


def _chain(read: Read, head: int, limit: int = 10_000) -> Iterator[int]:
    node = _u64(read, head)
    for _ in range(limit):
        if node in (0, head):
            return
        yield node
        node = _u64(read, node)
    raise ValueError(f"list at {head:#x} does not close")


def guid_bucket(raw: bytes) -> int:
    a, b, c, d = struct.unpack("<4I", raw)
    return (a ^ b ^ c ^ d) & (BUCKETS - 1)


def walk_providers(read: Read, hash_table: int, build: int) -> List[WalkedProvider]:
    layout = layout_for(build)
    found: List[WalkedProvider] = []
    for bucket in range(BUCKETS):
        for list_index in range(3):
            for entry in _chain(read, hash_table + bucket * BUCKET_SIZE + list_index * 16):
                raw_guid = read(entry + layout.guid, 16)
                is_enabled = struct.unpack("<I", read(entry + layout.provider_enable_info, 4))[0]
                enabled_by = []
                for index in range(8):
                    info = read(entry + layout.enable_info + index * TRACE_ENABLE_INFO_SIZE, 8)
                    on, _level, _reserved, logger_id = struct.unpack("<IBBH", info)
                    if on:
                        enabled_by.append(logger_id)
                registrations = tuple(_chain(read, entry + layout.reg_list_head))
                for registration in registrations:
                    assert _u64(read, registration + REG_ENTRY_GUID_ENTRY) == entry
                found.append(
                    WalkedProvider(
                        str(uuid.UUID(bytes_le=raw_guid)).upper(),
                        entry,
                        bucket,
                        list_index,
                        bool(is_enabled),
                        tuple(sorted(enabled_by)),
                        registrations,
                    )
                )
    return found


def walk_server_silo_loggers(
    read: Read, job_list_head: int, offsets: Dict[str, int], slot_limit: int = 256
) -> Dict[int, List[Tuple[int, int, str]]]:
    """{job: [(slot, LoggerId, LoggerName)]} for every job with server-silo globals.

    ``offsets`` names where things sit in this build: ``job_links``, ``server_silo_globals``
    (in the job), ``etw_silo_state`` (in the globals), ``logger_array`` and ``max_loggers`` (in the
    silo state), ``logger_id`` and ``logger_name`` (in the logger context).
    """
    silos: Dict[int, List[Tuple[int, int, str]]] = {}
    for link in _chain(read, job_list_head):
        job = link - offsets["job_links"]
        globals_address = _u64(read, job + offsets["server_silo_globals"])
        if not globals_address:
            continue
        state = _u64(read, globals_address + offsets["etw_silo_state"])
        array = _u64(read, state + offsets["logger_array"])
        count = min(struct.unpack("<I", read(state + offsets["max_loggers"], 4))[0], slot_limit)
        loggers = []
        for slot in range(count):
            context = _u64(read, array + 8 * slot)
            if context & 1 or not context:
                continue
            logger_id = struct.unpack("<I", read(context + offsets["logger_id"], 4))[0]
            length, _maximum, _pad, buffer = struct.unpack(
                "<HHIQ", read(context + offsets["logger_name"], 16)
            )
            loggers.append((slot, logger_id, read(buffer, length).decode("utf-16-le")))
        silos[job] = loggers
    return silos
