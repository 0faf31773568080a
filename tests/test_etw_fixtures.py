"""The synthetic ETW kernel state (`fixtures.etw`) read back twice, independently of the writer.

For every build and scenario the standalone memory is checked (1) with a small ISF reader of this
module that resolves offsets from the ISF JSON and walks raw bytes, and (2) through Volatility objects
over the same memory with the real ntoskrnl ISF. Both must agree with the manifest, so a layout mistake
in the writer shows up twice. One full 19041 image built with ``etw="clean"`` is then read by
``vol``: windows.info still works, and a throwaway plugin follows ``nt!EtwpHostSiloState`` and
``nt!PspJobList`` to the loggers and providers.
"""

from __future__ import annotations

import json
import lzma
import os
import shutil
import struct
import subprocess
import sys
import textwrap
import uuid
from functools import cache
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest

from fixtures.etw import (
    BUILDS,
    SCENARIOS,
    EtwManifest,
    EtwMemory,
    ScenarioNotApplicable,
    build_etw_memory,
    scenario_applies,
)
from fixtures.winimage.isf import KERNEL_ISF_FILES

SHARED_ISF = Path(__file__).resolve().parents[2] / "shared" / "isf"
FREE = 1
USER_LIMIT = 0x0000_8000_0000_0000

pytestmark = pytest.mark.skipif(
    not (SHARED_ISF / "windows" / "ntkrnlmp.pdb").is_dir(), reason=f"ntoskrnl ISFs not found in {SHARED_ISF}"
)

CASES = [
    (build, scenario)
    for build in BUILDS
    for scenario in SCENARIOS
    if (SHARED_ISF / "windows").is_dir() and scenario_applies(build, scenario)
]


# --- an ISF reader of this test's own --------------------------------------------------------------


class RawIsf:
    """Offsets, sizes and symbols straight from the ISF JSON."""

    def __init__(self, build: int) -> None:
        path = SHARED_ISF / "windows" / "ntkrnlmp.pdb" / f"{KERNEL_ISF_FILES[build]}.json.xz"
        with lzma.open(path, "rt", encoding="utf-8") as handle:
            data = json.load(handle)
        self.types: Dict[str, Any] = data["user_types"]
        self.bases: Dict[str, Any] = data["base_types"]
        self.symbols: Dict[str, int] = {
            name: int(entry["address"]) for name, entry in data["symbols"].items() if "address" in entry
        }
        self.pointer = int(self.bases["pointer"]["size"])
        self.order = self.bases["pointer"]["endian"]

    def has(self, type_name: str, member: str) -> bool:
        return member in self.types[type_name]["fields"]

    def size(self, type_name: str) -> int:
        return int(self.types[type_name]["size"])

    def member(self, type_name: str, path: str) -> Tuple[int, Dict[str, Any]]:
        """(offset, type description) of ``A.B[2].C`` inside ``type_name``."""
        offset = 0
        desc: Dict[str, Any] = {"kind": "struct", "name": type_name}
        for part in path.split("."):
            name, _, index = part.partition("[")
            entry = self.types[desc["name"]]["fields"][name]
            offset += int(entry["offset"])
            desc = entry["type"]
            if index:
                desc = desc["subtype"]
                offset += int(index.rstrip("]")) * self.sizeof(desc)
        return offset, desc

    def sizeof(self, desc: Dict[str, Any]) -> int:
        kind = desc["kind"]
        if kind == "pointer":
            return self.pointer
        if kind == "base":
            return int(self.bases[desc["name"]]["size"])
        if kind == "array":
            return desc["count"] * self.sizeof(desc["subtype"])
        if kind in ("struct", "union", "class"):
            return self.size(desc["name"])
        raise KeyError(kind)

    def extent(self, symbol: str) -> int:
        """Bytes from an untyped global to the next symbol."""
        address = self.symbols[symbol]
        return min(value for value in self.symbols.values() if value > address) - address


@cache
def raw_isf(build: int) -> RawIsf:
    return RawIsf(build)


class Reader:
    """Typed reads of one structure kind at an address, by member path."""

    def __init__(self, memory: EtwMemory, isf: RawIsf) -> None:
        self.memory = memory
        self.isf = isf

    def raw(self, address: int, length: int) -> bytes:
        return self.memory.read(address, length)

    def number(self, address: int, size: int) -> int:
        return int.from_bytes(self.raw(address, size), self.isf.order)

    def ptr(self, address: int) -> int:
        return self.number(address, self.isf.pointer)

    def field(self, type_name: str, base: int, path: str) -> int:
        offset, desc = self.isf.member(type_name, path)
        if desc["kind"] == "bitfield":
            inner = self.isf.bases[desc["type"]["name"]]["size"]
            value = self.number(base + offset, inner)
            return (value >> desc["bit_position"]) & ((1 << desc["bit_length"]) - 1)
        if desc["kind"] in ("struct", "union") and desc["name"] == "_LARGE_INTEGER":
            return self.number(base + offset, 8)
        return self.number(base + offset, self.isf.sizeof(desc))

    def address(self, type_name: str, base: int, path: str) -> int:
        return base + self.isf.member(type_name, path)[0]

    def unicode(self, type_name: str, base: int, path: str) -> str:
        at = self.address(type_name, base, path)
        length = self.field("_UNICODE_STRING", at, "Length")
        buffer = self.field("_UNICODE_STRING", at, "Buffer")
        return self.raw(buffer, length).decode("utf-16-le") if buffer else ""

    def guid(self, type_name: str, base: int, path: str) -> str:
        return "{" + str(uuid.UUID(bytes_le=self.raw(self.address(type_name, base, path), 16))).upper() + "}"

    def walk(self, head: int) -> List[int]:
        """Nodes of a circular LIST_ENTRY list, checking each Blink."""
        nodes = []
        previous, node = head, self.ptr(head)
        while node != head:
            assert self.ptr(node + self.isf.pointer) == previous, f"broken Blink at {node:#x}"
            nodes.append(node)
            previous, node = node, self.ptr(node)
            assert len(nodes) < 1000, "list does not close"
        assert self.ptr(head + self.isf.pointer) == previous
        return nodes


def expected_bucket(guid: str) -> int:
    d0, d1, d2, d3 = struct.unpack("<4I", uuid.UUID(guid).bytes_le)
    return (d0 ^ d1 ^ d2 ^ d3) & 0x3F


# --- raw checks ------------------------------------------------------------------------------------


def silo_states(reader: Reader, manifest: EtwManifest) -> Dict[str, int]:
    """Host and server silo ETW states found the way the kernel finds them."""
    isf = reader.isf
    base = manifest.kernel_base
    host = reader.ptr(base + isf.symbols["EtwpHostSiloState"])
    globals_ = base + isf.symbols["PspHostSiloGlobals"]
    assert reader.field("_ESERVERSILO_GLOBALS", globals_, "EtwSiloState") == host
    states = {"host": host}
    for link in reader.walk(base + isf.symbols["PspJobList"]):
        job = link - isf.member("_EJOB", "JobLinks")[0]
        server = reader.field("_EJOB", job, "ServerSiloGlobals")
        if not reader.field("_EJOB", job, "Silo") or not server:
            continue
        state = reader.field("_ESERVERSILO_GLOBALS", server, "EtwSiloState")
        states["container"] = state
        if isf.has("_ETW_SILODRIVERSTATE", "Silo"):
            assert reader.field("_ETW_SILODRIVERSTATE", state, "Silo") == job
            assert reader.field("_ETW_SILODRIVERSTATE", state, "SiloGlobals") == server
    if isf.has("_ETW_SILODRIVERSTATE", "SiloGlobals"):
        assert reader.field("_ETW_SILODRIVERSTATE", host, "Silo") == 0
        assert reader.field("_ETW_SILODRIVERSTATE", host, "SiloGlobals") == globals_
    return states


def logger_slots(reader: Reader, manifest: EtwManifest, state: Optional[int]) -> Tuple[int, List[int]]:
    """(address of slot 0, raw slot values) for one silo."""
    isf = reader.isf
    if state is None:
        start = manifest.kernel_base + isf.symbols["WmipLoggerContext"]
        count = isf.extent("WmipLoggerContext") // isf.pointer
    elif isf.has("_ETW_SILODRIVERSTATE", "EtwpLoggerContext"):
        start = reader.field("_ETW_SILODRIVERSTATE", state, "EtwpLoggerContext")
        count = reader.field("_ETW_SILODRIVERSTATE", state, "MaxLoggers")
        # a tampered MaxLoggers must not send the walk past the array: the pool block bounds it
        header = start - isf.size("_POOL_HEADER")
        capacity = reader.field("_POOL_HEADER", header, "BlockSize") * 16 - isf.size("_POOL_HEADER")
        count = min(count, capacity // isf.pointer)
    else:
        offset, desc = isf.member("_ETW_SILODRIVERSTATE", "WmipLoggerContext")
        start, count = state + offset, desc["count"]
    values = []
    for index in range(count):
        if not reader.memory.is_mapped(start + index * isf.pointer, isf.pointer):
            break
        values.append(reader.ptr(start + index * isf.pointer))
    return start, values


def hash_buckets(reader: Reader, manifest: EtwManifest, state: Optional[int]) -> Tuple[int, int, int]:
    """(table address, bucket stride, list heads per bucket)."""
    isf = reader.isf
    entry = isf.size("_LIST_ENTRY")
    if state is None:
        stride = isf.extent("EtwpGuidHashTable") // 64
        return (
            manifest.kernel_base + isf.symbols["EtwpGuidHashTable"],
            stride,
            (stride - isf.pointer) // entry,
        )
    offset, desc = isf.member("_ETW_SILODRIVERSTATE", "EtwpGuidHashTable")
    assert desc["count"] == 64
    bucket = desc["subtype"]["name"]
    lists = isf.member(bucket, "ListHead")[1]["count"]
    return state + offset, isf.size(bucket), lists


def check_loggers(reader: Reader, manifest: EtwManifest, silo: str, slots: List[int]) -> None:
    isf = reader.isf
    context = "_WMI_LOGGER_CONTEXT"
    records = [logger for logger in manifest.loggers if logger.silo == silo]
    in_slot = {logger.slot: logger for logger in records if logger.in_slot}
    assert slots == manifest.silo(silo).slots
    for slot, value in enumerate(slots):
        if slot in in_slot:
            assert value == in_slot[slot].address
        elif value != FREE:
            assert value < USER_LIMIT  # only a planted user-mode pointer is neither free nor a context
            assert any(t.slot == slot and t.value == value for t in manifest.tamperings)
    for logger in records:
        at = logger.address
        assert reader.field(context, at, "LoggerId") == logger.logger_id
        assert reader.unicode(context, at, "LoggerName") == logger.name
        assert reader.unicode(context, at, "LogFileName") == logger.log_file
        assert reader.guid(context, at, "InstanceGuid") == logger.instance_guid
        assert reader.field(context, at, "LoggerMode") == logger.logger_mode
        assert reader.field(context, at, "BufferSize") == logger.buffer_size
        assert reader.field(context, at, "MinimumBuffers") == logger.minimum_buffers
        assert reader.field(context, at, "MaximumBuffers") == logger.maximum_buffers
        assert reader.field(context, at, "NumberOfBuffers") == logger.number_of_buffers
        assert reader.field(context, at, "EventsLost") == logger.events_lost
        assert reader.field(context, at, "ClockType") == logger.clock_type
        assert reader.field(context, at, "GetCpuClock") == logger.get_cpu_clock
        assert reader.field(context, at, "StartTime") == logger.start_time
        assert reader.field(context, at, "LoggerThread") == logger.logger_thread
        tid = reader.field("_ETHREAD", logger.logger_thread, "Cid.UniqueThread")
        assert tid == logger.logger_thread_id
        start = reader.field("_ETHREAD", logger.logger_thread, "StartAddress")
        assert start == manifest.kernel_base + isf.symbols["EtwpLogger"]
        if isf.has(context, "SiloState"):
            assert reader.field(context, at, "SiloState") == manifest.silo(silo).state
        clock = logger.get_cpu_clock
        tampered = any(t.kind == "clock_out_of_range" and t.address == at for t in manifest.tamperings)
        if isf.types[context]["fields"]["GetCpuClock"]["type"]["kind"] == "pointer":
            names = {"EtwpGetPerfCounter": 1, "EtwpGetSystemTime": 2, "EtwpGetCycleCount": 3}
            routine = {manifest.kernel_base + isf.symbols[name]: kind for name, kind in names.items()}
            assert tampered or routine[clock] == logger.clock_type
        else:
            assert tampered or clock == {1: 1, 2: 0, 3: 3}[logger.clock_type]
        assert tampered == (
            clock > 3 and clock not in (manifest.kernel_base + v for v in isf.symbols.values())
        )


def check_providers(reader: Reader, manifest: EtwManifest, silo: str, state: Optional[int]) -> None:
    isf = reader.isf
    entry_type = "_ETW_GUID_ENTRY"
    table, stride, lists = hash_buckets(reader, manifest, state)
    assert lists == 3
    found: Dict[str, Tuple[int, int, int]] = {}
    link = isf.member(entry_type, "GuidList")[0]
    for bucket in range(64):
        for index in range(lists):
            head = table + bucket * stride + index * isf.size("_LIST_ENTRY")
            for node in reader.walk(head):
                entry = node - link
                guid = reader.guid(entry_type, entry, "Guid")
                assert expected_bucket(guid) == bucket
                found[guid] = (entry, bucket, index)
    records = [provider for provider in manifest.providers if provider.silo == silo]
    assert sorted(found) == sorted(provider.guid for provider in records)
    for provider in records:
        entry, bucket, index = found[provider.guid]
        assert (entry, bucket, index) == (provider.guid_entry, provider.bucket, provider.list_index)
        aggregate = provider.provider_enable_info
        assert reader.field(entry_type, entry, "ProviderEnableInfo.IsEnabled") == aggregate.is_enabled
        assert reader.field(entry_type, entry, "ProviderEnableInfo.Level") == aggregate.level
        assert (
            reader.field(entry_type, entry, "ProviderEnableInfo.MatchAnyKeyword")
            == aggregate.match_any_keyword
        )
        used = {enable.index: enable for enable in provider.enable_info}
        for slot in range(8):
            logger_id = reader.field(entry_type, entry, f"EnableInfo[{slot}].LoggerId")
            enabled = reader.field(entry_type, entry, f"EnableInfo[{slot}].IsEnabled")
            if slot in used:
                assert (enabled, logger_id) == (1, used[slot].logger_id)
                level = reader.field(entry_type, entry, f"EnableInfo[{slot}].Level")
                assert level == used[slot].level
            else:
                assert (enabled, logger_id) == (0, 0)
        if isf.has(entry_type, "SiloState"):
            assert reader.field(entry_type, entry, "SiloState") == (state or 0)
        if isf.has(entry_type, "HostEntry"):
            assert reader.field(entry_type, entry, "HostEntry") == provider.host_entry
        regs = [
            node - isf.member("_ETW_REG_ENTRY", "RegList")[0]
            for node in reader.walk(entry + isf.member(entry_type, "RegListHead")[0])
        ]
        assert regs == [reg.address for reg in provider.registrations]
        for reg in provider.registrations:
            assert reader.field("_ETW_REG_ENTRY", reg.address, "GuidEntry") == entry
            assert reader.field("_ETW_REG_ENTRY", reg.address, "EnableMask") == reg.enable_mask
            flags = reader.field("_ETW_REG_ENTRY", reg.address, "Flags")
            assert flags == reg.flags
            assert flags & 3 == (1 if reg.kind == "kernel" else 2)
            if reg.kind == "user":
                process = reader.field("_ETW_REG_ENTRY", reg.address, "Process")
                assert process == reg.process
                assert reader.field("_EPROCESS", process, "UniqueProcessId") == reg.pid
                name = reader.raw(reader.address("_EPROCESS", process, "ImageFileName"), 15)
                assert name.rstrip(b"\x00").decode() == reg.process_name


def check_raw(memory: EtwMemory) -> None:
    manifest = memory.manifest
    assert manifest is not None
    isf = raw_isf(memory.build)
    reader = Reader(memory, isf)
    if "EtwpHostSiloState" in isf.symbols:
        states: Dict[str, Optional[int]] = dict(silo_states(reader, manifest))
        assert set(states) == {"host", "container"}
    else:
        states = {"host": None}
    for name, state in states.items():
        record = manifest.silo(name)
        assert (state or 0) == record.state
        start, slots = logger_slots(reader, manifest, state)
        assert start == record.logger_array
        assert len(slots) == record.logger_slots
        if state is not None and isf.has("_ETW_SILODRIVERSTATE", "MaxLoggers"):
            assert reader.field("_ETW_SILODRIVERSTATE", state, "MaxLoggers") == record.max_loggers
        check_loggers(reader, manifest, name, slots)
        check_providers(reader, manifest, name, state)
    host = manifest.silo("host")
    if host.state:
        pid = reader.field("_ETW_SILODRIVERSTATE", host.state, "EtwpSecurityProviderPID")
        mask = reader.field("_ETW_SILODRIVERSTATE", host.state, "EtwpSecurityProviderEnableMask")
        first = reader.field("_ETW_SILODRIVERSTATE", host.state, "EtwpSecurityLoggers[0]")
        assert (pid, mask, [first]) == (host.security_provider_pid, 1, host.security_loggers)
        assert first == manifest.logger("EventLog-Security").logger_id
    else:
        pid = reader.number(manifest.kernel_base + isf.symbols["EtwpSecurityProviderPID"], 4)
        assert pid == host.security_provider_pid
    assert reader.guid("_ETW_GUID_ENTRY", host.security_provider_guid_entry, "Guid") == (
        "{54849625-5478-4994-A5BA-3E3B0328C30D}"
    )
    if "EtwThreatIntProvRegHandle" in isf.symbols and manifest.ti_reg_handle:
        handle = reader.ptr(manifest.kernel_base + isf.symbols["EtwThreatIntProvRegHandle"])
        assert handle == manifest.ti_reg_handle
        entry = reader.field("_ETW_REG_ENTRY", handle, "GuidEntry")
        assert reader.guid("_ETW_GUID_ENTRY", entry, "Guid") == "{F4E1897C-BB5D-5668-F1D8-040F4D8DD344}"
        assert reader.field("_ETW_REG_ENTRY", handle, "DbgKernelRegistration") == 1


# --- what each scenario must plant -----------------------------------------------------------------

EXPECTED_KINDS = {
    "clean": [],
    "ti_disabled": ["ti_provider_disabled"],
    "wmi_activity_disabled": ["wmi_activity_disabled"],
    "sessions_stopped": ["session_missing"] * 3,
    "slot_overwritten": ["slot_not_kernel_address", "logger_id_mismatch"],
    "clock_tampered": ["clock_out_of_range"],
    "maxloggers_bad": ["maxloggers_out_of_range"],
    "lab_tampered": ["ti_provider_disabled"] + ["session_missing"] * 3,
}


def check_scenario(memory: EtwMemory) -> None:
    manifest = memory.manifest
    assert manifest is not None
    reader = Reader(memory, raw_isf(memory.build))
    kinds = [t.kind for t in manifest.tamperings]
    expected = EXPECTED_KINDS[memory.scenario]
    if memory.build == 7601:  # no Defender loggers on Windows 7: two sessions to stop
        expected = [kind for kind in expected if kind != "session_missing"] + ["session_missing"] * (
            kinds.count("session_missing")
        )
        assert kinds.count("session_missing") == (
            2 if "session_missing" in EXPECTED_KINDS[memory.scenario] else 0
        )
    assert sorted(kinds) == sorted(expected)
    names = {logger.name for logger in manifest.loggers}
    host = manifest.silo("host")
    for record in manifest.tamperings:
        if record.kind == "ti_provider_disabled":
            ti = manifest.provider("Microsoft-Windows-Threat-Intelligence")
            assert reader.raw(record.address or 0, 0x20) == bytes(0x20)
            assert ti.enable_info and ti.enable_info[0].session == "DefenderAuditLogger"
            assert reader.field("_ETW_GUID_ENTRY", ti.guid_entry, "EnableInfo[0].IsEnabled") == 1
        elif record.kind == "wmi_activity_disabled":
            wmi = manifest.provider("Microsoft-Windows-WMI-Activity")
            assert wmi.registrations and wmi.registrations[0].kind == "user"
            assert wmi.enable_info == [] and wmi.provider_enable_info.is_enabled == 0
            assert all(reg.enable_mask == 0 for reg in wmi.registrations)
        elif record.kind == "session_missing":
            assert record.session not in names
            assert host.slots[record.slot or 0] == FREE
        elif record.kind == "slot_not_kernel_address":
            assert reader.ptr(record.address or 0) == 0x0000_7FF6_1234_0000
            assert not manifest.logger(record.session or "").in_slot
        elif record.kind == "logger_id_mismatch":
            assert reader.field("_WMI_LOGGER_CONTEXT", record.address or 0, "LoggerId") != record.slot
            assert host.slots[record.slot or 0] == record.address
        elif record.kind == "clock_out_of_range":
            assert (
                reader.field("_WMI_LOGGER_CONTEXT", record.address or 0, "GetCpuClock")
                == 0xFFFF_F800_1234_5678
            )
            assert not manifest.kernel_base <= 0xFFFF_F800_1234_5678 < manifest.kernel_base + 0x0200_0000
        elif record.kind == "maxloggers_out_of_range":
            assert reader.number(record.address or 0, 4) == 0xFFFF_FFFF
            assert host.logger_slots == 64
    if memory.scenario == "clean":
        assert len([logger for logger in manifest.loggers if logger.silo == "host"]) == (
            6 if memory.build == 7601 else 8
        )


@pytest.mark.parametrize("build,scenario", CASES)
def test_raw_bytes_match_the_manifest(build: int, scenario: str):
    memory = build_etw_memory(build, scenario)
    check_raw(memory)
    check_scenario(memory)
    assert EtwManifest.from_json(memory.manifest.to_json()) == memory.manifest  # type: ignore[union-attr]


def test_scenarios_a_build_cannot_have_are_refused():
    assert not scenario_applies(7601, "ti_disabled")
    assert not scenario_applies(14393, "maxloggers_bad")
    assert scenario_applies(17763, "lab_tampered")
    with pytest.raises(ScenarioNotApplicable):
        build_etw_memory(14393, "ti_disabled")
    with pytest.raises(ValueError):
        build_etw_memory(19041, "no_such_scenario")


def test_layouts_differ_between_builds_as_the_isfs_say():
    offsets = {build: raw_isf(build).member("_WMI_LOGGER_CONTEXT", "LoggerName")[0] for build in BUILDS}
    assert offsets == {7601: 0x78, 14393: 0x88, 17763: 0x98, 19041: 0x98, 22000: 0x88}
    kinds = {build: build_etw_memory(build).manifest.silo().logger_array_kind for build in BUILDS}  # type: ignore[union-attr]
    assert kinds == {7601: "global", 14393: "inline", 17763: "pointer", 19041: "pointer", 22000: "pointer"}
    clean = build_etw_memory(19041).manifest
    assert clean is not None
    assert clean.silo("container").max_loggers == 32 and clean.silo().max_loggers == 64
    assert (
        clean.provider("Microsoft-Windows-WMI-Activity").bucket
        == clean.provider("Microsoft-Windows-Security-Auditing").bucket
        == 59
    )


# --- through Volatility ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def volatility_tables() -> Dict[int, Tuple[Any, str]]:
    """One Volatility context per build, holding the build's ntoskrnl table once."""
    return {}


def vol_module(tables: Dict[int, Tuple[Any, str]], memory: EtwMemory) -> Any:
    from volatility3.framework import contexts

    from fixtures.etw import load_kernel

    if memory.build not in tables:
        context = contexts.Context()
        name = load_kernel(context, memory.build, memory, validate=False)
        tables[memory.build] = (context, context.modules[name].symbol_table_name)
        return context.modules[name]
    context, table = tables[memory.build]
    return context.modules[load_kernel(context, memory.build, memory, symbol_table=table)]


def vol_guid(guid: Any) -> str:
    data4 = bytes(guid.Data4)
    raw = struct.pack("<IHH", int(guid.Data1), int(guid.Data2), int(guid.Data3)) + data4
    return "{" + str(uuid.UUID(bytes_le=raw)).upper() + "}"


@pytest.mark.parametrize("build,scenario", CASES)
def test_volatility_objects_match_the_manifest(build: int, scenario: str, volatility_tables):
    memory = build_etw_memory(build, scenario)
    manifest = memory.manifest
    assert manifest is not None
    nt = vol_module(volatility_tables, memory)
    table = nt.symbol_table_name
    for silo in manifest.silos:
        if silo.state:
            state = nt.object(object_type="_ETW_SILODRIVERSTATE", offset=silo.state, absolute=True)
            if state.has_member("MaxLoggers"):
                assert int(state.MaxLoggers) == silo.max_loggers
                array = state.EtwpLoggerContext
                assert int(array) & 0xFFFF_FFFF_FFFF == silo.logger_array & 0xFFFF_FFFF_FFFF
        if silo.name == "host" and silo.state:
            pointer = nt.object(
                object_type="pointer",
                offset=nt.get_symbol("EtwpHostSiloState").address,
                subtype=nt.get_type("_ETW_SILODRIVERSTATE"),
            )
            assert pointer.dereference().vol.offset == silo.state & 0xFFFF_FFFF_FFFF
        slots = nt.object(
            object_type="array",
            offset=silo.logger_array,
            absolute=True,
            subtype=nt.get_type("pointer"),
            count=silo.logger_slots,
        )
        raw = [int(value) for value in slots]
        assert [value & 0xFFFF_FFFF_FFFF for value in silo.slots] == raw
    for logger in manifest.loggers:
        context = nt.object(object_type="_WMI_LOGGER_CONTEXT", offset=logger.address, absolute=True)
        assert int(context.LoggerId) == logger.logger_id
        assert context.LoggerName.get_string() == logger.name
        if logger.log_file:
            assert context.LogFileName.get_string() == logger.log_file
        else:
            assert int(context.LogFileName.Length) == 0
        assert vol_guid(context.InstanceGuid) == logger.instance_guid
        assert int(context.LoggerMode) == logger.logger_mode
        assert int(context.BufferSize) == logger.buffer_size
        assert int(context.MaximumBuffers) == logger.maximum_buffers
        assert int(context.EventsLost) == logger.events_lost
        assert int(context.StartTime.QuadPart) == logger.start_time
        assert int(context.GetCpuClock) & 0xFFFF_FFFF_FFFF == logger.get_cpu_clock & 0xFFFF_FFFF_FFFF
        thread = context.LoggerThread.dereference()
        assert int(thread.Cid.UniqueThread) == logger.logger_thread_id
    for provider in manifest.providers:
        head = nt.object(object_type="_LIST_ENTRY", offset=provider.bucket_list_head, absolute=True)
        entries = {entry.vol.offset: entry for entry in head.to_list(f"{table}!_ETW_GUID_ENTRY", "GuidList")}
        entry = entries[provider.guid_entry & 0xFFFF_FFFF_FFFF]
        assert vol_guid(entry.Guid) == provider.guid
        assert int(entry.ProviderEnableInfo.IsEnabled) == provider.provider_enable_info.is_enabled
        for enable in provider.enable_info:
            assert int(entry.EnableInfo[enable.index].LoggerId) == enable.logger_id
        regs = list(entry.RegListHead.to_list(f"{table}!_ETW_REG_ENTRY", "RegList"))
        assert [reg.vol.offset for reg in regs] == [
            r.address & 0xFFFF_FFFF_FFFF for r in provider.registrations
        ]
        for reg, record in zip(regs, provider.registrations):
            if record.kind == "user":
                process = reg.Process.dereference()
                assert int(process.UniqueProcessId) == record.pid
                assert (
                    process.ImageFileName.cast("string", max_length=15, errors="replace")
                    == record.process_name
                )


# --- a full image ----------------------------------------------------------------------------------

PROBE = '''
from volatility3.framework import interfaces, renderers
from volatility3.framework.configuration import requirements


class EtwFixtureProbe(interfaces.plugins.PluginInterface):
    """Loggers and providers of every ETW silo, found through kernel globals."""

    _required_framework_version = (2, 0, 0)

    @classmethod
    def get_requirements(cls):
        return [requirements.ModuleRequirement(name="kernel", architectures=["Intel64"])]

    def _silos(self, kernel):
        host = kernel.object(
            object_type="pointer",
            offset=kernel.get_symbol("EtwpHostSiloState").address,
            subtype=kernel.get_type("_ETW_SILODRIVERSTATE"),
        ).dereference()
        yield "host", host
        head = kernel.object(object_type="_LIST_ENTRY", offset=kernel.get_symbol("PspJobList").address)
        for job in head.to_list(kernel.symbol_table_name + "!_EJOB", "JobLinks"):
            if job.Silo and job.ServerSiloGlobals:
                yield "container", job.ServerSiloGlobals.dereference().EtwSiloState.dereference()

    def _generator(self):
        kernel = self.context.modules[self.config["kernel"]]
        table = kernel.symbol_table_name
        for name, state in self._silos(kernel):
            slots = kernel.object(
                object_type="array",
                offset=state.EtwpLoggerContext,
                absolute=True,
                subtype=kernel.get_type("pointer"),
                count=int(state.MaxLoggers),
            )
            for index, value in enumerate(slots):
                if int(value) & 1:
                    continue
                context = kernel.object(object_type="_WMI_LOGGER_CONTEXT", offset=value, absolute=True)
                thread = context.LoggerThread.dereference()
                yield 0, ("logger", name, index, int(context.LoggerId), context.LoggerName.get_string(),
                          int(thread.Cid.UniqueThread))
            for bucket in state.EtwpGuidHashTable:
                for entry in bucket.ListHead[0].to_list(table + "!_ETW_GUID_ENTRY", "GuidList"):
                    guid = entry.Guid
                    text = "%08X-%04X-%04X" % (guid.Data1, guid.Data2, guid.Data3)
                    for reg in entry.RegListHead.to_list(table + "!_ETW_REG_ENTRY", "RegList"):
                        pid = int(reg.Process.dereference().UniqueProcessId) if reg.DbgUserRegistration else 0
                        yield 0, ("registration", name, int(entry.ProviderEnableInfo.IsEnabled), 0, text, pid)

    def run(self):
        columns = [("Kind", str), ("Silo", str), ("Slot", int), ("LoggerId", int), ("Name", str), ("Id", int)]
        return renderers.TreeGrid(columns, self._generator())
'''


def run_vol(image: Path, cache: Path, plugin: str, plugins: Optional[Path] = None) -> List[Dict[str, Any]]:
    found = shutil.which("vol")
    command = [found] if found else [sys.executable, "-m", "volatility3.cli"]
    command += ["-q", "-s", str(SHARED_ISF), "--offline", "--cache-path", str(cache)]
    if plugins is not None:
        command += ["-p", str(plugins)]
    command += ["-f", str(image), "-r", "json", plugin]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=image.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_full_image_exposes_the_state_through_kernel_globals(tmp_path):
    from fixtures.winimage import build_image

    image = tmp_path / "etw19041.raw"
    manifest = build_image(19041, out_path=image, etw="clean")
    assert manifest.etw is not None
    etw = EtwManifest.from_dict(manifest.etw)
    assert json.loads((tmp_path / "etw19041.raw.json").read_text())["etw"]["scenario"] == "clean"
    cache = tmp_path / "cache"
    cache.mkdir()
    info = {row["Variable"]: row["Value"] for row in run_vol(image, cache, "windows.info")}
    assert int(info["Kernel Base"], 16) == manifest.kernel_base & 0xFFFF_FFFF_FFFF

    plugins = tmp_path / "probe"
    plugins.mkdir()
    (plugins / "etwfixtureprobe.py").write_text(textwrap.dedent(PROBE))
    rows = run_vol(image, cache, "etwfixtureprobe", plugins)
    loggers = {
        (row["Silo"], row["Slot"], row["LoggerId"], row["Name"], row["Id"])
        for row in rows
        if row["Kind"] == "logger"
    }
    expected = {(lg.silo, lg.slot, lg.logger_id, lg.name, lg.logger_thread_id) for lg in etw.loggers}
    assert loggers == expected
    assert ("container", 2, 2, "EventLog-Application") in {row[:4] for row in loggers}

    # logger threads are System threads of the image; registrations belong to the image's processes
    system = manifest.process("System")
    logger_threads = {
        thread.tid for thread in system.threads if thread.ethread in {lg.logger_thread for lg in etw.loggers}
    }
    assert logger_threads == {lg.logger_thread_id for lg in etw.loggers}
    wmi = manifest.process("WmiPrvSE.exe")
    registrations = {(row["Name"], row["Id"]) for row in rows if row["Kind"] == "registration"}
    # the probe's Slot column carries ProviderEnableInfo.IsEnabled: every provider is on in "clean"
    assert {row["Slot"] for row in rows if row["Kind"] == "registration"} == {1}
    assert ("1418EF04-B0B4-4623", wmi.pid) in registrations  # WMI-Activity, owned by WmiPrvSE.exe
    assert ("2A576B87-09A7-520E", wmi.pid) in registrations  # AMSI
    assert ("F4E1897C-BB5D-5668", 0) in registrations  # Threat-Intelligence, a kernel registration
    assert ("FC65DDD8-D6EF-4962", manifest.process("svchost.exe").pid) in registrations
    auditing = etw.provider("Microsoft-Windows-Security-Auditing")
    lsass = manifest.process("lsass.exe")  # the boot tree's lsass.exe registers the auditing provider
    assert [(r.process, r.pid) for r in auditing.registrations] == [(lsass.eprocess, lsass.pid)]
    assert etw.provider("Microsoft-Windows-WMI-Activity").registrations[0].process == wmi.eprocess
