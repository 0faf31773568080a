"""Handle tables of the synthetic images: what the builder wrote, read by Volatility's windows.handles
(an implementation we did not write), by the suite's kernel backend and through wmi.handles."""

from __future__ import annotations

import pytest

from fixtures.winimage import KERNEL_ISF_FILES
from fixtures.winimage.kernel import BUILD_FACTS
from tests.conftest import ISF_DIR, image_kernel, vol_json
from wmiforensics.backends.handles import process_handles, walker_for
from wmiforensics.engine.facts import HandleFact
from wmiforensics.vol.inspection import image_handle_rows

IMAGE_BUILDS = sorted(set(KERNEL_ISF_FILES) & set(BUILD_FACTS))

pytestmark = pytest.mark.skipif(
    not (ISF_DIR / "windows" / "ntkrnlmp.pdb").is_dir(), reason=f"ntoskrnl ISFs not found in {ISF_DIR}"
)


def expected_name(handle, etw_loggers) -> str:
    """What the suite shows for a handle the builder wrote."""
    if handle.type_name == "EtwConsumer":
        return f"LoggerId {handle.logger_id}"
    return handle.name


def volatility_name(handle):
    """windows.handles: keys without the \\REGISTRY root, other objects by their leaf name."""
    if handle.type_name == "File":
        return handle.name
    if handle.type_name == "Key":
        return handle.name.removeprefix("\\REGISTRY\\")
    if handle.type_name in ("EtwConsumer", "EtwRegistration"):
        return None  # unnamed objects
    return handle.name.rpartition("\\")[2]


@pytest.mark.parametrize("build", IMAGE_BUILDS)
def test_kernel_backend_reads_every_handle_the_builder_wrote(build, winimage):
    path, manifest = winimage(build, "clean")
    context, name = image_kernel(path, manifest)
    module = context.modules[name]
    assert any(record.handles for record in manifest.processes)
    for record in manifest.processes:
        proc = module.object(object_type="_EPROCESS", offset=record.eprocess, absolute=True)
        notes: list = []
        found = process_handles(context, name, proc, notes)
        assert notes == []
        assert [(h.handle, h.type_name, h.object_name, h.granted_access) for h in found] == [
            (h.handle, h.type_name, expected_name(h, manifest.etw), h.access) for h in record.handles
        ]
    svchost = manifest.process("svchost.exe")
    consumers = {h.name: h.logger_id for h in svchost.handles if h.type_name == "EtwConsumer"}
    running = {lg["name"]: lg["logger_id"] for lg in manifest.etw["loggers"] if lg["silo"] == "host"}
    assert consumers == {name: running[name] for name in consumers} and "EventLog-Security" in consumers
    wmi = manifest.process("WmiPrvSE.exe")
    registered = {
        (p["guid"], r["address"])
        for p in manifest.etw["providers"]
        for r in p["registrations"]
        if r["process"] == wmi.eprocess
    }
    held = {(h.name, h.obj) for h in wmi.handles if h.type_name == "EtwRegistration"}
    assert held == registered
    assert "{1418EF04-B0B4-4623-BF7E-D74AB47BBDAA}" in {name for name, _ in held}  # WMI-Activity


def test_volatility_and_wmi_handles_agree_with_the_manifest(winimage, symbol_cache):
    path, manifest = winimage(19041, "clean")
    rows = vol_json(path, "windows.handles", symbols=symbol_cache)
    theirs = {
        (row["PID"], row["HandleValue"], row["Type"], row["GrantedAccess"], row["Name"]) for row in rows
    }
    expected = {
        (record.pid, h.handle, h.type_name, h.access, volatility_name(h))
        for record in manifest.processes
        for h in record.handles
    }
    assert theirs == expected

    wmi = manifest.process("WmiPrvSE.exe")
    ours = vol_json(path, "wmi.handles", "--pid", str(wmi.pid), symbols=symbol_cache)
    assert [
        (r["PID"], r["Process"], r["Handle"], r["Type"], r["Name"], r["GrantedAccess"]) for r in ours
    ] == [(wmi.pid, "WmiPrvSE.exe", h.handle, h.type_name, h.name, h.access) for h in wmi.handles]
    assert "\\BaseNamedObjects\\WBEM_ESS_OPEN_FOR_BUSINESS" in {r["Name"] for r in ours}
    svchost = manifest.process("svchost.exe")
    facts = [
        (
            svchost.pid,
            "svchost.exe",
            [HandleFact(h.handle, h.type_name, h.name, h.access) for h in svchost.handles],
        )
    ]
    pipes = [row[1] for row in image_handle_rows(facts, type_filter="file")]
    assert [(row[3], row[4]) for row in pipes] == [("File", "\\Device\\NamedPipe\\epmapper")]


def test_damaged_handle_tables_are_noted_not_raised(winimage):
    path, manifest = winimage(19041, "clean")
    context, name = image_kernel(path, manifest)
    walker = walker_for(context, name)
    notes: list = []
    assert walker.leaf_pages(0xFFFF_8000_DEAD_0002, notes) == []  # a level-2 table nothing maps
    assert notes == ["handle table page 0xffff8000dead0000 cannot be read"]
    system = manifest.process("System")
    proc = context.modules[name].object(object_type="_EPROCESS", offset=system.eprocess, absolute=True)
    assert process_handles(context, name, proc, notes) == [] and len(notes) == 1  # empty table


def etw_state(path, manifest):
    from wmiforensics.etw.reader import EtwReader
    from wmiforensics.vol.etw import attach_consumers

    context, name = image_kernel(path, manifest)
    reader = EtwReader(context, name)
    silos = reader.silos()
    attach_consumers(context, name, silos)
    return reader, silos


def test_consumers_are_attached_to_their_loggers(winimage):
    from wmiforensics.etw.checks import check_all

    path, manifest = winimage(19041, "clean")
    reader, silos = etw_state(path, manifest)
    svchost = manifest.process("svchost.exe")
    by_name = {logger.name: logger.consumers for logger in silos[0].loggers}
    owner = f"svchost.exe ({svchost.pid})"
    assert by_name["EventLog-Security"] == by_name["EventLog-System"] == [owner]
    assert by_name["Circular Kernel Context Logger"] == []
    assert all(logger.consumers == [] for silo in silos[1:] for logger in silo.loggers)
    assert check_all(reader, silos) == []


def test_security_session_without_a_consumer_is_flagged(tmp_path):
    from fixtures.winimage import build_image
    from wmiforensics.etw.checks import check_all

    path = tmp_path / "unconsumed.raw"
    manifest = build_image(
        19041, out_path=path, etw="clean", size=64 << 20, etw_consumers=("EventLog-System",)
    )
    reader, silos = etw_state(path, manifest)
    security = next(lg for lg in manifest.etw["loggers"] if lg["name"] == "EventLog-Security")
    found = [(f.kind, f.start) for f in check_all(reader, silos)]
    assert found == [("security_session_unconsumed", security["address"])]
