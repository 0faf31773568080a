"""ETW readings on every build the image builder supports, without false alarms.

Each image is read the way Volatility presents it: its own Intel32e layer over the raw file and the
kernel module at the 48-bit-masked base Volatility's automagic reports (pointers the kernel stored
stay canonical). A clean image of every build must give zero tamper findings; a symbol table from
another patch level must be named as such instead of listing garbage.
"""

from __future__ import annotations

import json
import lzma
import uuid
from pathlib import Path

import pytest
from volatility3.framework import contexts

from fixtures.etw import BUILDS, build_etw_memory, kernel_isf_url, load_kernel, scenario_applies
from fixtures.etw import constants as etw_constants
from fixtures.winimage import KERNEL_ISF_FILES, kernel_isf
from fixtures.winimage.kernel import BUILD_FACTS
from tests.conftest import ISF_DIR, image_kernel
from tests.independent import etw_walk
from wmiforensics.etw import knowledge
from wmiforensics.etw.checks import check_all
from wmiforensics.etw.reader import EtwReader

IMAGE_BUILDS = sorted(set(KERNEL_ISF_FILES) & set(BUILD_FACTS))
POINTER_CLOCK_BUILDS = (14393, 17763, 18362)  # _WMI_LOGGER_CONTEXT.GetCpuClock is a routine pointer
#: 17763/18362 RTM vs their late-patch ISFs: _ETW_SILODRIVERSTATE members after the embedded
#: EtwpSecurityProviderGuidEntry sit 0x18 bytes apart (RESEARCH section 6).
PATCH_SHIFT = 0x18

pytestmark = pytest.mark.skipif(
    not (ISF_DIR / "windows" / "ntkrnlmp.pdb").is_dir(), reason=f"ntoskrnl ISFs not found in {ISF_DIR}"
)


def image_reader(path: Path, manifest, isf_url: str) -> EtwReader:
    """An EtwReader over the image through Volatility's own Intel32e layer, kernel base masked."""
    context, name = image_kernel(path, manifest, isf_url)
    assert context.modules[name].offset != manifest.kernel_base  # as Volatility reports it: not canonical
    return EtwReader(context, name)


@pytest.mark.parametrize("build", IMAGE_BUILDS)
def test_clean_image_of_every_build_has_no_tampering(build, winimage):
    path, manifest = winimage(build, "clean")
    reader = image_reader(path, manifest, kernel_isf_url(build))
    silos = reader.silos()
    assert check_all(reader, silos) == []
    loggers = [logger for silo in silos for logger in silo.loggers]
    assert len(loggers) == len(manifest.etw["loggers"])
    for logger in loggers:
        clock = logger.fields["GetCpuClock"]
        if logger.fields["GetCpuClockIsPointer"]:
            assert clock >> 48 == 0xFFFF  # the raw pointer, as stored
            assert reader.in_kernel_image(clock)
    assert all(silo.layout_mismatch is None for silo in silos)


@pytest.mark.parametrize("build", POINTER_CLOCK_BUILDS)
def test_hijacked_clock_routine_is_still_reported(build, winimage):
    path, manifest = winimage(build, "clock_tampered")
    reader = image_reader(path, manifest, kernel_isf_url(build))
    planted = [t for t in manifest.etw["tamperings"] if t["kind"] == "clock_out_of_range"]
    found = [(f.kind, f.start) for f in check_all(reader, reader.silos())]
    assert found == [("clock_out_of_range", planted[0]["address"])]


def test_mode_flag_names_follow_evntrace_h():
    names = knowledge.logger_mode_names
    assert names(etw_constants.EVENT_TRACE_SYSTEM_LOGGER_MODE) == "SYSTEM_LOGGER_MODE"
    assert names(0x10000000) == "NO_PER_PROCESSOR_BUFFERING"
    assert names(0x80000000) == "ADDTO_TRIAGE_DUMP"
    assert names(0x08000000) == "INDEPENDENT_SESSION_MODE"
    assert names(0x00400000 | 0x00800000) == "STOP_ON_HYBRID_SHUTDOWN|PERSIST_ON_HYBRID_SHUTDOWN"
    assert names(0x00100000) == "MODE_RESERVED"
    assert names(0x00080000) == "0x80000"  # no evntrace.h name: shown as a number
    assert names(etw_constants.EVENT_TRACE_REAL_TIME_MODE | etw_constants.EVENT_TRACE_SECURE_MODE) == (
        "SECURE_MODE|REAL_TIME_MODE"
    )


def shifted_isf(build: int, folder: Path) -> str:
    """The build's ISF as another patch level would have it: silo-state members 0x18 bytes later."""
    source = ISF_DIR / "windows" / "ntkrnlmp.pdb" / f"{KERNEL_ISF_FILES[build]}.json.xz"
    with lzma.open(source) as compressed:
        document = json.loads(compressed.read())
    state = document["user_types"]["_ETW_SILODRIVERSTATE"]
    pivot = state["fields"]["EtwpSecurityProviderGuidEntry"]["offset"]
    for member in state["fields"].values():
        if member["offset"] > pivot:
            member["offset"] += PATCH_SHIFT
    state["size"] += PATCH_SHIFT
    target = folder / f"shifted-{build}.json"  # uncompressed: compressing 50 MB of JSON takes long
    target.write_text(json.dumps(document))
    return target.as_uri()


@pytest.mark.parametrize("build", (14393, 17763))
def test_symbol_table_of_another_patch_level_is_named_not_listed(build, tmp_path, winimage):
    path, manifest = winimage(build, "clean")
    reader = image_reader(path, manifest, shifted_isf(build, tmp_path))
    silos = reader.silos()
    host = silos[0]
    assert host.layout_mismatch is not None
    assert "another patch level" in host.layout_mismatch
    assert f"found {PATCH_SHIFT:#x} bytes before where the symbol table puts it" in host.layout_mismatch
    assert f"NtBuildLab '{BUILD_FACTS[build].build_lab}" in host.layout_mismatch
    assert host.loggers == [] and host.providers == []
    findings = check_all(reader, silos)
    assert {f.kind for f in findings} == {"symbol_table_mismatch"}
    assert len(findings) == sum(1 for silo in silos if silo.layout_mismatch)


@pytest.mark.parametrize("scenario", ("slot_overwritten", "sessions_stopped"))
def test_tampering_is_not_mistaken_for_a_symbol_table_mismatch(scenario):
    assert scenario_applies(17763, scenario)
    memory = build_etw_memory(17763, scenario)
    context = contexts.Context()
    reader = EtwReader(context, load_kernel(context, 17763, memory, validate=False))
    silos = reader.silos()
    assert all(silo.layout_mismatch is None for silo in silos)
    kinds = sorted(t.kind for t in memory.manifest.tamperings)
    assert sorted(f.kind for f in check_all(reader, silos)) == kinds


# --- hostile kernel state ---------------------------------------------------------------------------


def hostile_reader(build: int, scenario: str):
    """The standalone ETW state of ``scenario`` and a reader over it whose memory a test may overwrite."""
    memory = build_etw_memory(build, scenario)
    context = contexts.Context()
    name = load_kernel(context, build, memory, validate=False)
    layer = context.layers[context.modules[name].layer_name]
    isf = kernel_isf(build)

    def poke(address: int, value: int, size: int = 8) -> None:
        layer.write(address, value.to_bytes(size, "little"))

    return memory.manifest, EtwReader(context, name), isf, poke


def test_cycles_in_every_list_are_bounded_noted_and_listed_once():
    manifest, reader, isf, poke = hostile_reader(19041, "wmi_activity_disabled")
    link = isf.field("_ETW_GUID_ENTRY", "GuidList").offset
    host = [p for p in manifest.providers if p.silo == "host"]
    wmi = next(p for p in host if p.name == "Microsoft-Windows-WMI-Activity")
    other = next(p for p in host if p.bucket != wmi.bucket)
    # another bucket's chain runs into WMI-Activity's entry, whose own Flink loops back to itself
    poke(other.guid_entry + link, wmi.guid_entry + link)
    poke(wmi.guid_entry + link, wmi.guid_entry + link)
    # a registration list that loops into its middle
    registered = next(p for p in host if len(p.registrations) >= 1)
    reg_link = isf.field("_ETW_REG_ENTRY", "RegList").offset
    first = registered.registrations[0].address
    poke(first + reg_link, first + reg_link)
    # the job list loops: the server silo's job links to itself
    job_links = isf.field("_EJOB", "JobLinks").offset
    container = manifest.silo("container")
    poke(container.silo + job_links, container.silo + job_links)
    silos = reader.silos()

    assert [silo.label.split(" ")[0] for silo in silos] == ["host", "server"]
    entries = [p.guid_entry for p in silos[0].providers]
    assert len(entries) == len(set(entries))
    assert [p.guid for p in silos[0].providers].count(wmi.guid.strip("{}").upper()) == 1
    notes = " | ".join(silos[0].notes)
    assert "listed before" in notes and "loops back" in notes and "PspJobList" in notes
    assert "RegListHead" in notes
    findings = check_all(reader, silos)
    keys = [(f.kind, f.start, f.module) for f in findings]
    assert len(keys) == len(set(keys))
    assert [f.kind for f in findings].count("wmi_activity_disabled") == 1


def test_garbage_pointers_and_huge_counts_are_bounded():
    manifest, reader, isf, poke = hostile_reader(19041, "clean")
    host = manifest.silo("host")
    free = [slot for slot, value in enumerate(host.slots) if value == etw_constants.FREE_SLOT]
    poke(host.logger_array + free[0] * 8, 0xFFFF_8000_DEAD_0000)  # a kernel address nothing maps
    poke(host.state + isf.field("_ETW_SILODRIVERSTATE", "MaxLoggers").offset, 0x7FFF_FFFF, 4)
    bucket_head = next(p for p in manifest.providers if p.silo == "host").bucket_list_head
    poke(bucket_head, 0x0000_7FF6_0000_0000)  # a bucket head pointing into user space
    silos = reader.silos()
    notes = " | ".join(silos[0].notes)
    assert "MaxLoggers 2147483647 is out of range" in notes
    assert "not a kernel address" in notes
    kinds = sorted(f.kind for f in check_all(reader, silos))
    assert kinds == ["maxloggers_out_of_range", "slot_unreadable"]


def test_control_characters_in_names_are_escaped():
    manifest, reader, isf, poke = hostile_reader(19041, "clean")
    logger = manifest.logger("EventLog-System")
    name = isf.field("_WMI_LOGGER_CONTEXT", "LoggerName").offset
    buffer = int.from_bytes(memory_read(reader, logger.address + name + 8, 8), "little")
    poke(buffer, 0x1B, 2)  # ESC replaces the first character
    silos = reader.silos()
    shown = next(item for item in silos[0].loggers if item.slot == logger.slot)
    assert shown.name.startswith("\\x1b")
    assert not any(f.kind == "symbol_table_mismatch" for f in check_all(reader, silos))


def memory_read(reader: EtwReader, address: int, length: int) -> bytes:
    return reader.layer.read(address, length)


# --- a second, independent walk ---------------------------------------------------------------------


@pytest.mark.parametrize("build", BUILDS)
def test_providers_and_server_silo_loggers_agree_with_an_independent_walk(build):
    memory = build_etw_memory(build, "lab_tampered" if scenario_applies(build, "lab_tampered") else "clean")
    isf = kernel_isf(build)
    base = memory.kernel_base
    context = contexts.Context()
    reader = EtwReader(context, load_kernel(context, build, memory, validate=False))
    silos = reader.silos()
    if isf.has_type("_ETW_SILODRIVERSTATE"):
        host = memory.read_pointer(base + isf.symbol("EtwpHostSiloState"))
        table = host + isf.field("_ETW_SILODRIVERSTATE", "EtwpGuidHashTable").offset
    else:
        table = base + isf.symbol("EtwpGuidHashTable")
    walked = etw_walk.walk_providers(memory.read, table, build)
    ours = [
        (
            p.guid,
            p.guid_entry,
            p.bucket,
            knowledge.GUID_LISTS.index(p.list_name),
            p.is_enabled,
            tuple(sorted(p.enabled_by)),
            tuple(r.address for r in p.registrations),
        )
        for p in silos[0].providers
    ]
    theirs = [
        (w.guid, w.entry, w.bucket, w.list_index, w.is_enabled, w.enabled_by, w.registrations) for w in walked
    ]
    assert ours == theirs and len(ours) >= 4
    assert all(w.bucket == etw_walk.guid_bucket(uuid.UUID(w.guid).bytes_le) for w in walked)
    if not isf.has_type("_ETW_SILODRIVERSTATE"):
        return
    offsets = {
        "job_links": isf.field("_EJOB", "JobLinks").offset,
        "server_silo_globals": isf.field("_EJOB", "ServerSiloGlobals").offset,
        "etw_silo_state": isf.field("_ESERVERSILO_GLOBALS", "EtwSiloState").offset,
        "logger_id": isf.field("_WMI_LOGGER_CONTEXT", "LoggerId").offset,
        "logger_name": isf.field("_WMI_LOGGER_CONTEXT", "LoggerName").offset,
    }
    if isf.has_field("_ETW_SILODRIVERSTATE", "EtwpLoggerContext"):
        offsets["logger_array"] = isf.field("_ETW_SILODRIVERSTATE", "EtwpLoggerContext").offset
        offsets["max_loggers"] = isf.field("_ETW_SILODRIVERSTATE", "MaxLoggers").offset
    else:
        return  # 1607 keeps its slots inline: the raw walk follows the pointer layout only
    servers = etw_walk.walk_server_silo_loggers(memory.read, base + isf.symbol("PspJobList"), offsets)
    assert servers and any(servers.values())
    for silo in silos[1:]:
        job = int(silo.label.split("job ")[1].rstrip(")"), 16)
        assert [(lg.slot, lg.fields["LoggerId"], lg.name) for lg in silo.loggers] == servers[job]
    assert len(silos) - 1 == len(servers)
