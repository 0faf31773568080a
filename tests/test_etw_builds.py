"""ETW readings on every build the image builder supports, without false alarms.

Each image is read the way Volatility presents it: its own Intel32e layer over the raw file and the
kernel module at the 48-bit-masked base Volatility's automagic reports (pointers the kernel stored
stay canonical). A clean image of every build must give zero tamper findings; a symbol table from
another patch level must be named as such instead of listing garbage.
"""

from __future__ import annotations

import json
import lzma
from pathlib import Path

import pytest
from volatility3.framework import contexts
from volatility3.framework.layers.intel import WindowsIntel32e
from volatility3.framework.layers.physical import FileLayer
from volatility3.framework.symbols.windows import WindowsKernelIntermedSymbols

from fixtures.etw import build_etw_memory, kernel_isf_url, load_kernel, scenario_applies
from fixtures.etw import constants as etw_constants
from fixtures.winimage import KERNEL_ISF_FILES
from fixtures.winimage.kernel import BUILD_FACTS
from tests.conftest import ISF_DIR
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
    context = contexts.Context()
    context.config["raw.location"] = path.as_uri()
    context.add_layer(FileLayer(context, "raw", "raw"))
    context.config["virtual.memory_layer"] = "raw"
    context.config["virtual.page_map_offset"] = manifest.dtb
    layer = WindowsIntel32e(context, "virtual", "virtual")
    context.add_layer(layer)
    table = WindowsKernelIntermedSymbols(context, "nt", "nt", isf_url=isf_url, validate=False)
    context.symbol_space.append(table)
    module = context.module("nt", "virtual", offset=manifest.kernel_base & layer.maximum_address)
    assert module.offset != manifest.kernel_base  # as Volatility reports it: not canonical
    return EtwReader(context, module.name)


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
    target = folder / f"shifted-{build}.json.xz"
    target.write_bytes(lzma.compress(json.dumps(document).encode()))
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
