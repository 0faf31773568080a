"""MemProcFS, a memory reader we did not write, opens the synthetic full images unmodified.

MemProcFS 5.19 (PyPI ``memprocfs``) finds the kernel, the EPROCESS offsets, VADs, prototype PTEs, threads
and handles with its own heuristics and static layouts, not from the ISFs the builder uses. Every build
the builder supports is built once (module fixture) with the planted evidence of ``--plant-rwx`` and
``--patch-etw`` and opened in forensic mode; what MemProcFS reports must equal the builder's manifest.
FindEvil must report the planted RWX code and the patched ntdll page (seen through the prototype PTE),
at the addresses ``wmi.injection`` reports on the same image.

MemProcFS needs symbols (its bundled info.db, looked up by the kernel's PDB GUID) for object type names;
info.db 5.19 has no entry for the 20348 kernel of ``shared/isf``, so there handle types stay empty.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import pytest

from fixtures.winimage import ImageManifest, build_image, default_processes
from fixtures.winimage.__main__ import PLANTED_CODE
from fixtures.winimage.isf import KERNEL_ISF_FILES
from fixtures.winimage.kernel import BUILD_FACTS
from fixtures.winimage.scenarios import plant_code_patch, plant_private_code
from tests.conftest import ISF_DIR, vol_json

try:  # the wheel's vmm.so links libusb-1.0 (Debian: libusb-1.0-0), tests/run.sh installs it
    import memprocfs
except (ImportError, OSError) as error:  # pragma: no cover - depends on the machine
    memprocfs = None
    IMPORT_ERROR = f"the memprocfs wheel cannot be loaded here: {error}"
else:
    IMPORT_ERROR = ""

BUILDS = tuple(sorted(set(KERNEL_ISF_FILES) & set(BUILD_FACTS)))
#: Builds whose ntkrnlmp.pdb GUID MemProcFS 5.19's info.db does not know (no object type names).
NO_SYMBOLS_IN_INFODB = (20348,)
FORENSIC_TIMEOUT = 120
USER_SPACE_END = 1 << 47
PAGE = 0x1000
INJECTION_CROSS_CHECK_BUILD = 19041

pytestmark = [
    pytest.mark.skipif(memprocfs is None, reason=IMPORT_ERROR),
    pytest.mark.skipif(
        not (ISF_DIR / "windows" / "ntkrnlmp.pdb").is_dir(), reason=f"ntoskrnl ISFs not found in {ISF_DIR}"
    ),
]


class Opened:
    """A planted image, its manifest, and MemProcFS with the image open (forensic scan finished)."""

    def __init__(self, build: int, path: Path, manifest: ImageManifest, rwx: int, patched: int) -> None:
        self.build = build
        self.path = path
        self.manifest = manifest
        self.rwx = rwx
        self.patched = patched
        self.vmm = memprocfs.Vmm(
            [
                "-device",
                str(path),
                "-disable-symbolserver",  # offline: symbols only from the wheel's info.db
                "-disable-python",
                "-waitinitialize",
                "-forensic",
                "1",  # forensic database in memory: nothing is written to disk
            ]
        )
        deadline = time.monotonic() + FORENSIC_TIMEOUT
        while self.read("/forensic/progress_percent.txt").strip() != "100":
            assert time.monotonic() < deadline, "MemProcFS forensic scan did not finish"
            time.sleep(0.1)

    def read(self, path: str) -> str:
        return self.vmm.vfs.read(path, 1 << 20).decode("utf-8", "replace")

    def findevil(self) -> List[Tuple[int, str, str, int, str]]:
        """(pid, process, type, address, description) rows of /forensic/findevil/findevil.txt."""
        rows = []
        for line in self.read("/forensic/findevil/findevil.txt").splitlines()[2:]:
            if not line.strip():
                continue
            _index, pid, process, kind, rest = line.split(maxsplit=4)
            address, _, description = rest.partition(" ")
            rows.append((int(pid), process, kind, int(address, 16), description))
        return rows


@pytest.fixture(scope="module", params=BUILDS)
def opened(request, tmp_path_factory) -> Iterator[Opened]:
    build = request.param
    specs = default_processes(build)
    wmi = next(spec.model for spec in specs if spec.name == "WmiPrvSE.exe")
    rwx = plant_private_code(wmi, PLANTED_CODE).base
    patched = plant_code_patch(wmi, "ntdll.dll", "EtwEventWrite", b"\xc3")
    path = tmp_path_factory.mktemp(f"memprocfs{build}") / f"win{build}.raw"
    manifest = build_image(build, specs, path)
    image = Opened(build, path, manifest, rwx, patched)
    yield image
    image.vmm.close()


def _model_processes(manifest: ImageManifest):
    return [record for record in manifest.processes if record.peb]


# --- kernel and processes -------------------------------------------------------------------------


def test_memprocfs_locates_ntoskrnl_and_reads_the_build_number(opened: Opened):
    manifest = opened.manifest
    assert opened.vmm.kernel.build == manifest.build
    kernel = opened.vmm.process(4).module("ntoskrnl.exe")
    assert (kernel.base, kernel.image_size) == (manifest.kernel_base, manifest.kernel_size)


def test_process_list_equals_the_manifest(opened: Opened):
    got = sorted((p.pid, p.ppid, p.name) for p in opened.vmm.process_list())
    assert got == sorted((r.pid, r.ppid, r.name) for r in opened.manifest.processes)
    # a plausible boot tree: System's children, then the session managers' descendants
    names = [r.name for r in opened.manifest.processes]
    for name in ("Registry", "smss.exe", "csrss.exe", "wininit.exe", "services.exe", "lsass.exe"):
        assert name in names
    assert len(names) > 10
    for record in opened.manifest.processes:
        process = opened.vmm.process(record.pid)
        assert (process.eprocess, process.dtb, process.peb) == (record.eprocess, record.dtb, record.peb)


# --- per process: VADs, modules, threads, handles ------------------------------------------------


def memprocfs_protection(private: int, index: int) -> str:
    """How MemProcFS renders a VAD protection (MM_* index) and the private flag: ``p-rwx-``
    (vmmpyc_processmaps.c, VmmPycProcessMaps_vad_Protection)."""
    high, low = index >> 3, index & 7
    cache = ("-", "n", "g", "m")[high] if high else "-"
    letters = [
        "r" if low in (1, 3, 4, 6) else "-",
        "w" if low & 4 else "-",
        "x" if low & 2 else "-",
        "c" if low in (5, 7) else "-",
    ]
    if cache != "-" and letters == ["-"] * 4:
        cache = "-"
    return ("p" if private else "-") + cache + "".join(letters)


def _vad_kind(vad) -> Optional[str]:
    """MemProcFS's VAD type column for a manifest VAD (None: private, named after its use)."""
    if vad.kind == "image":
        return "Image"
    if vad.kind == "mapped":
        return "File" if vad.file else "Pf"
    return None


def _memprocfs_kind(column: str) -> Optional[str]:
    """MemProcFS's VAD type column, private uses (Teb, Stack, Heap, blank) folded into None."""
    kind = column.strip()
    return kind if kind in ("Image", "File", "Pf") else None


def test_vads_equal_the_manifest(opened: Opened):
    for record in _model_processes(opened.manifest):
        got = {
            (v["start"], v["end"], v["protection"], _memprocfs_kind(v["type"]))
            for v in opened.vmm.process(record.pid).maps.vad()
        }
        expected = {
            (v.start, v.end, memprocfs_protection(v.private_memory, v.protection_index), _vad_kind(v))
            for v in record.vads
        }
        assert got == expected, record.name


def test_modules_equal_the_manifest(opened: Opened):
    for record in _model_processes(opened.manifest):
        modules = opened.vmm.process(record.pid).module_list()
        got = sorted((m.base, m.image_size, m.name, m.fullname) for m in modules if m.base < USER_SPACE_END)
        assert got == sorted((m.base, m.size, m.name, m.path) for m in record.modules), record.name


def test_threads_equal_the_manifest(opened: Opened):
    for record in opened.manifest.processes:
        if not record.threads:
            continue
        got = {
            t["tid"]: (t["va-start"], t["va-win32start"], t["va-teb"], t["reg-rip"], t["reg-rsp"])
            for t in opened.vmm.process(record.pid).maps.thread()
        }
        expected = {
            t.tid: (t.start_address, t.win32_start_address, t.teb, t.rip, t.rsp) for t in record.threads
        }
        assert got == expected, record.name


def _handle_name(type_name: str, name: str) -> str:
    """What MemProcFS shows for a handle: a file as device + path without ``\\Device``, a named object
    by its leaf name; registry keys need hives the image does not hold, ETW objects have no name (the
    manifest names them by provider GUID or logger)."""
    if type_name == "Key" or type_name.startswith("Etw"):
        return ""
    if type_name == "File":
        return name.removeprefix("\\Device")
    return name.rsplit("\\", 1)[-1]


def assert_handles_equal(vmm, build: int, manifest: ImageManifest) -> int:
    """Every process's handles as MemProcFS lists them equal the manifest's; returns how many."""
    checked = 0
    for record in manifest.processes:
        if not record.handles:
            continue
        got = {
            h["handle"]: (h["type"], h["access"], h["va-object"], h["tag"])
            for h in vmm.process(record.pid).maps.handle()
        }
        expected: Dict[int, tuple] = {
            h.handle: (
                "" if build in NO_SYMBOLS_IN_INFODB else h.type_name,
                h.access,
                h.obj,
                _handle_name(h.type_name, h.name),
            )
            for h in record.handles
        }
        assert got == expected, record.name
        checked += len(expected)
    return checked


def test_handles_equal_the_manifest(opened: Opened):
    assert assert_handles_equal(opened.vmm, opened.build, opened.manifest) >= 8


# --- FindEvil, and wmi.injection on the same image ------------------------------------------------


def test_findevil_reports_the_planted_rwx_code_and_the_patched_image_page(opened: Opened, symbol_cache):
    """FindEvil's evidence equals the planting; on one build (Volatility takes most of this module's
    time) it is also compared with what ``wmi.injection`` reports on the same image."""
    wmi = opened.manifest.process("WmiPrvSE.exe")
    rows = opened.findevil()
    evidence = {(pid, kind, address) for pid, _name, kind, address, _ in rows if kind != "THREAD"}
    patched_page = opened.patched & ~(PAGE - 1)
    assert evidence == {(wmi.pid, "PRIVATE_RWX", opened.rwx), (wmi.pid, "PE_PATCHED", patched_page)}
    # the patched page as the manifest wrote it: a private copy, the prototype PTE keeps the original
    cow = next(page for page in wmi.cow_pages if page.address == patched_page)
    description = next(d for _p, _n, kind, _a, d in rows if kind == "PE_PATCHED").split()
    assert (int(description[0], 16), int(description[5], 16)) == (
        cow.private_physical,
        cow.prototype_physical,
    )
    # nothing else is evil: the only other rows are WmiPrvSE threads starting in that patched page
    for pid, _name, kind, address, _ in rows:
        if kind == "THREAD":
            assert pid == wmi.pid and address & ~(PAGE - 1) == patched_page
    if opened.build == INJECTION_CROSS_CHECK_BUILD:
        injection = vol_json(opened.path, "wmi.injection", "--pid", str(wmi.pid), symbols=symbol_cache)
        kinds = {row["Kind"] for row in injection}
        assert {"exec_rwx", "image_page_modified"} <= kinds
        same = {("PRIVATE_RWX", row["Start"]) for row in injection if row["Kind"] == "exec_rwx"}
        same |= {
            ("PE_PATCHED", row["Start"] & ~(PAGE - 1))
            for row in injection
            if row["Kind"] == "image_page_modified"
        }
        assert same == {(kind, address) for _pid, kind, address in evidence}


# --- ETW: nt!EtwpDebuggerData, read through MemProcFS ---------------------------------------------


@pytest.mark.parametrize("build", (14393, 22000))  # inline logger slots (1607) and a slot array
def test_etw_debugger_data_leads_to_the_logger_slots_and_etw_handles_are_listed(build, tmp_path):
    """The walk DRAKVUF's etwmon and InfinityHook-style tools make (documented in their public sources):
    find ``nt!EtwpDebuggerData`` by the bytes ``2C 08 04 38 0C`` two bytes into it, follow the pointer
    at +0x10 to the logger slots, read slot 2 (the Circular Kernel Context Logger)."""
    path = tmp_path / f"etw{build}.raw"
    manifest = build_image(build, None, path, etw="clean")
    host = next(silo for silo in manifest.etw["silos"] if silo["name"] == "host")
    ckcl = next(lg for lg in manifest.etw["loggers"] if lg["silo"] == "host" and lg["logger_id"] == 2)
    vmm = memprocfs.Vmm(["-device", str(path), "-disable-symbolserver", "-disable-python", "-waitinitialize"])
    try:
        kernel = vmm.process(4)
        image = kernel.memory.read(manifest.kernel_base, manifest.kernel_size)
        found = list(_find_all(image, bytes.fromhex("2C0804380C")))
        assert len(found) == 1
        debugger_data = manifest.kernel_base + found[0] - 2
        assert debugger_data == manifest.etw["globals"]["EtwpDebuggerData"]
        slots = int.from_bytes(kernel.memory.read(debugger_data + 0x10, 8), "little")
        assert slots == host["logger_array"]
        assert int.from_bytes(kernel.memory.read(slots + 2 * 8, 8), "little") == ckcl["address"]
        # the ETW objects are handles too: EtwRegistration in their owners, EtwConsumer in svchost.exe
        types = {h.type_name for record in manifest.processes for h in record.handles}
        assert {"EtwRegistration", "EtwConsumer"} <= types
        assert assert_handles_equal(vmm, build, manifest) >= 12
    finally:
        vmm.close()


def _find_all(data: bytes, needle: bytes) -> Iterator[int]:
    offset = data.find(needle)
    while offset >= 0:
        yield offset
        offset = data.find(needle, offset + 1)
