"""Synthetic full-memory images against Volatility 3's own Windows plugins.

For each kernel build an image is built once (module-scoped fixture) and Volatility's stock plugins run
on it through ``vol`` with the real ntoskrnl ISF, offline, with a private symbol cache. Expected values
come from the process models (`LabProcess`), not from the image writer, except for kernel addresses
that only the manifest knows. A few tests read the raw file with a small page walker of their own to
check what only a full image holds: PTE bits, prototype PTEs and copy-on-write pages.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from fixtures.labdump import build_scaled, write_minidump_file
from fixtures.labdump.constants import MEM_FREE, MEM_IMAGE, MEM_MAPPED, MEM_PRIVATE
from fixtures.labdump.model import LabProcess
from fixtures.winimage import ImageManifest, ProcessSpec, build_image, default_processes, kernel_isf
from fixtures.winimage.scenarios import plant_code_patch, plant_private_code
from fixtures.winimage.userland import add_process_environment

BUILDS = (14393, 19041, 22000)
SHARED_ISF = Path(__file__).resolve().parents[2] / "shared" / "isf"
MASK48 = (1 << 48) - 1
PROTECTIONS = {
    0x02: "PAGE_READONLY",
    0x04: "PAGE_READWRITE",
    0x40: "PAGE_EXECUTE_READWRITE",
    0x80: "PAGE_EXECUTE_WRITECOPY",
}
PLANTED = bytes.fromhex("554889E5 4883EC20 33C9 FF1500000000 C9 C3")

pytestmark = pytest.mark.skipif(
    not (SHARED_ISF / "windows" / "ntkrnlmp.pdb").is_dir(), reason=f"ntoskrnl ISFs not found in {SHARED_ISF}"
)


def vol_command() -> List[str]:
    found = shutil.which("vol")
    return [found] if found else [sys.executable, "-m", "volatility3.cli"]


@dataclass
class Image:
    """A built image, its process specs and memoised Volatility results."""

    build: int
    path: Path
    manifest: ImageManifest
    specs: List[ProcessSpec]
    cache: Path
    results: Dict[Tuple[str, ...], list] = field(default_factory=dict)

    def model(self, name: str) -> LabProcess:
        """The first process of that name (the DcomLaunch svchost for ``svchost.exe``)."""
        model = next(spec.model for spec in self.specs if spec.name == name)
        assert model is not None
        return model

    def vol(self, plugin: str, *args: str) -> list:
        """``vol -q -s ISF --offline --cache-path C -f IMAGE -r json PLUGIN ARGS`` (run once per args)."""
        key = (plugin, *args)
        if key not in self.results:
            command = [
                *vol_command(),
                "-q",
                "-s",
                # a private folder first: Volatility writes failed PDB downloads into the first one
                f"{self.cache / 'symbols'};{SHARED_ISF}",
                "--offline",
                "--cache-path",
                str(self.cache),
                "-f",
                str(self.path),
                "-r",
                "json",
                plugin,
                *args,
            ]
            env = dict(os.environ, PYTHONWARNINGS="ignore")
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=300, env=env, cwd=self.path.parent
            )
            assert result.returncode == 0, result.stderr[-3000:]
            self.results[key] = json.loads(result.stdout)
        return self.results[key]


@pytest.fixture(scope="session")
def vol_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("volatility-cache")


def _make_image(build: int, folder: Path, cache: Path, specs: List[ProcessSpec]) -> Image:
    path = folder / f"win{build}.raw"
    manifest = build_image(build, specs, path)
    return Image(build, path, manifest, specs, cache)


@pytest.fixture(scope="module", params=BUILDS)
def image(request, tmp_path_factory, vol_cache) -> Image:
    build = request.param
    return _make_image(build, tmp_path_factory.mktemp(f"clean{build}"), vol_cache, default_processes(build))


@pytest.fixture(scope="module", params=BUILDS)
def planted(request, tmp_path_factory, vol_cache) -> Image:
    """WmiPrvSE.exe with a private RWX code region and a patched ntdll!EtwEventWrite."""
    build = request.param
    specs = default_processes(build)
    wmi = next(spec.model for spec in specs if spec.name == "WmiPrvSE.exe")
    plant_private_code(wmi, PLANTED, base=0x2_0000_0000)
    plant_code_patch(wmi, "ntdll.dll", "EtwEventWrite", b"\xc3")
    return _make_image(build, tmp_path_factory.mktemp(f"planted{build}"), vol_cache, specs)


def _iso(unix_seconds: int) -> str:
    return datetime.fromtimestamp(unix_seconds, timezone.utc).isoformat()


def _nt_path(path: str) -> str:
    return path[2:] if path[1:2] == ":" else path


def _expected_vads(model: LabProcess) -> Dict[int, tuple]:
    """Start -> (end, protection, tag, private, file) from the model's regions alone."""
    groups: Dict[int, list] = {}
    for region in model.sorted_regions():
        if region.state != MEM_FREE:
            groups.setdefault(region.allocation_base, []).append(region)
    modules = {module.base: module for module in model.modules}
    expected = {}
    for base, regions in groups.items():
        kind = regions[0].type
        file_name: Optional[str] = None
        if kind == MEM_IMAGE:
            file_name = _nt_path(modules[base].path)
        elif kind == MEM_MAPPED and regions[0].label.endswith(".nls"):
            file_name = regions[0].label
        tag = "VadS" if kind == MEM_PRIVATE else "Vad "
        protection = PROTECTIONS[regions[0].allocation_protect]
        expected[base] = (
            max(r.end for r in regions) - 1,
            protection,
            tag,
            int(kind == MEM_PRIVATE),
            file_name,
        )
    return expected


# --- kernel and process list ----------------------------------------------------------------------


def test_info_finds_the_kernel_through_the_real_isf(image: Image):
    values = {row["Variable"]: row["Value"] for row in image.vol("windows.info")}
    manifest = image.manifest
    assert values["Kernel Base"] == hex(manifest.kernel_base & MASK48)
    assert values["DTB"] == hex(manifest.dtb) == "0x1aa000"
    assert values["Symbols"].endswith(f"ntkrnlmp.pdb/{manifest.isf}.json.xz")
    assert values["Is64Bit"] == "True"
    assert values["KdDebuggerDataBlock"] == hex(manifest.kdbg & MASK48)
    assert values["NTBuildLab"].startswith(f"{image.build}.")
    assert values["Major/Minor"] == f"15.{image.build}"
    assert values["MachineType"] == str(0x8664)
    assert values["KeNumberProcessors"] == "4"
    assert (values["NtMajorVersion"], values["NtMinorVersion"]) == ("10", "0")
    assert values["NtSystemRoot"] == "C:\\Windows"
    assert values["SystemTime"].startswith("2023-11-14 22:13:20")
    assert values["PE Machine"] == str(0x8664)


def test_pslist_shows_the_boot_tree_svchost_and_wmiprvse(image: Image):
    rows = image.vol("windows.pslist")
    wmi = image.model("WmiPrvSE.exe")
    svchost = image.model("svchost.exe")
    expected = [
        (
            spec.pid,
            spec.ppid,
            spec.name,
            len(spec.model.threads) if spec.model else len(spec.kernel_threads),
        )
        for spec in image.specs
    ]
    assert [(r["PID"], r["PPID"], r["ImageFileName"], r["Threads"]) for r in rows] == expected
    assert expected[0] == (4, 0, "System", 2)
    assert [name for _pid, _ppid, name, _threads in expected[1:4]] == ["Registry", "smss.exe", "csrss.exe"]
    assert (svchost.process_id, 600, "svchost.exe", len(svchost.threads)) in expected
    assert expected[-1] == (wmi.process_id, svchost.process_id, "WmiPrvSE.exe", len(wmi.threads))
    assert [r["Offset(V)"] for r in rows] == [p.eprocess & MASK48 for p in image.manifest.processes]
    by_pid = {r["PID"]: r for r in rows}
    assert by_pid[svchost.process_id]["CreateTime"] == _iso(svchost.process_create_time)
    assert by_pid[wmi.process_id]["CreateTime"] == _iso(wmi.process_create_time)
    assert [r["SessionId"] for r in rows] == [None if spec.model is None else 0 for spec in image.specs]
    assert all(r["ExitTime"] is None and r["Wow64"] is False for r in rows)


def _tree_nodes(rows: list):
    for row in rows:
        yield row
        yield from _tree_nodes(row["__children"])


def test_pstree_nests_wmiprvse_under_dcomlaunch(image: Image):
    roots = image.vol("windows.pstree")
    by_pid = {row["PID"]: row for row in _tree_nodes(roots)}
    # the boot tree: services.exe (child of wininit.exe) starts the service hosts
    services = next(row for row in by_pid.values() if row["ImageFileName"] == "services.exe")
    assert by_pid[services["PPID"]]["ImageFileName"] == "wininit.exe"
    assert {child["ImageFileName"] for child in services["__children"]} == {"svchost.exe"}
    assert {child["ImageFileName"] for child in by_pid[4]["__children"]} == {"Registry", "smss.exe"}
    wmi = image.model("WmiPrvSE.exe")
    svchost = by_pid[image.model("svchost.exe").process_id]
    assert [child["PID"] for child in svchost["__children"]] == [wmi.process_id]
    assert svchost["Cmd"] == "C:\\Windows\\system32\\svchost.exe -k DcomLaunch -p"
    assert svchost["Path"] == "C:\\Windows\\System32\\svchost.exe"
    assert svchost["Audit"] == "\\Device\\HarddiskVolume3\\Windows\\System32\\svchost.exe"
    child = svchost["__children"][0]
    assert child["Cmd"] == wmi.command_line
    assert child["Path"] == "C:\\Windows\\System32\\wbem\\WmiPrvSE.exe"
    assert child["Audit"] == "\\Device\\HarddiskVolume3\\Windows\\System32\\wbem\\WmiPrvSE.exe"
    assert by_pid[4]["Audit"] is None and by_pid[4]["Cmd"] is None


# --- user memory ----------------------------------------------------------------------------------


def test_vadinfo_lists_one_vad_per_allocation(image: Image):
    wmi = image.model("WmiPrvSE.exe")
    rows = image.vol("windows.vadinfo", "--pid", str(wmi.process_id))
    got = {
        r["Start VPN"]: (r["End VPN"], r["Protection"], r["Tag"], r["PrivateMemory"], r["File"]) for r in rows
    }
    expected = _expected_vads(wmi)
    assert got == expected
    assert len(expected) > 30
    # the 2 TiB CFG reservation needs StartingVpnHigh/EndingVpnHigh
    assert any(end - start > 1 << 40 for start, (end, *_rest) in got.items())
    # a balanced tree: one root, every other parent is another VAD of the list
    offsets = {r["Offset"] for r in rows}
    parents = [r["Parent"] for r in rows]
    assert parents.count(0) == 1 and all(p in offsets for p in parents if p)
    commits = {r["Start VPN"]: r["CommitCharge"] for r in rows if r["Tag"] == "VadS"}
    for base, charge in commits.items():
        committed = sum(g.size for g in wmi.regions if g.allocation_base == base and g.state == 0x1000)
        assert charge == committed // 0x1000


def test_dlllist_reads_the_peb_loader_lists(image: Image):
    for name in ("svchost.exe", "WmiPrvSE.exe"):
        model = image.model(name)
        rows = image.vol("windows.dlllist", "--pid", str(model.process_id))
        assert [(r["Base"], r["Size"], r["Name"], r["Path"]) for r in rows] == [
            (m.base, m.size, m.name, m.path) for m in model.modules
        ]


def test_ldrmodules_sees_every_image_in_all_three_lists(image: Image):
    wmi = image.model("WmiPrvSE.exe")
    rows = image.vol("windows.malware.ldrmodules", "--pid", str(wmi.process_id))
    exe = wmi.modules[0]
    assert {r["Base"]: r["MappedPath"] for r in rows} == {m.base: _nt_path(m.path) for m in wmi.modules}
    assert all(r["InLoad"] and r["InMem"] for r in rows)
    assert [r["Base"] for r in rows if not r["InInit"]] == [exe.base]


def test_malfind_finds_nothing_on_the_clean_image(image: Image):
    assert image.vol("windows.malware.malfind") == []


def test_threads_carry_start_addresses_and_paths(image: Image):
    rows = image.vol("windows.threads")
    by_tid = {row["TID"]: row for row in rows}
    assert [r["PID"] for r in rows].count(4) == 2
    for name in ("svchost.exe", "WmiPrvSE.exe"):
        model = image.model(name)
        thread_start = model.address_of("ntdll.dll", "RtlUserThreadStart")
        for thread in model.threads:
            row = by_tid[thread.thread_id]
            assert row["PID"] == model.process_id
            assert row["StartAddress"] == thread_start
            assert row["StartPath"] == "\\Windows\\System32\\ntdll.dll"
            assert row["Win32StartAddress"] == thread.start_address
            owner = next(m for m in model.modules if m.base <= thread.start_address < m.end)
            assert row["Win32StartPath"] == _nt_path(owner.path)
            assert row["CreateTime"] == _iso(thread.create_time)
    kernel = image.manifest
    for row in rows:
        if row["PID"] == 4:
            assert (
                kernel.kernel_base & MASK48
                <= row["StartAddress"]
                < (kernel.kernel_base + kernel.kernel_size) & MASK48
            )


# --- planted evidence -----------------------------------------------------------------------------


def test_malfind_reports_the_planted_rwx_region(planted: Image):
    wmi = planted.model("WmiPrvSE.exe")
    rows = planted.vol("windows.malware.malfind")
    assert [
        (r["PID"], r["Start VPN"], r["End VPN"], r["Tag"], r["Protection"], r["PrivateMemory"]) for r in rows
    ] == [(wmi.process_id, 0x2_0000_0000, 0x2_0000_0FFF, "VadS", "PAGE_EXECUTE_READWRITE", 1)]
    assert rows[0]["Hexdump"].replace(" ", "").startswith(PLANTED.hex())
    assert rows[0]["Notes"] == "Function prologue"


def test_etwpatch_reads_the_private_copy_of_the_patched_page(planted: Image):
    wmi = planted.model("WmiPrvSE.exe")
    rows = planted.vol("windows.etwpatch")
    address = wmi.address_of("ntdll.dll", "EtwEventWrite")
    assert [(r["PID"], r["Function"], r["Offset"], r["Opcode"]) for r in rows] == [
        (wmi.process_id, "EtwEventWrite", address, "c3 (RET)")
    ]


# --- the raw file, walked without the builder's code ----------------------------------------------


class RawImage:
    """Minimal x64 page walker over the raw file, independent of the image builder."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDONLY)

    def __enter__(self) -> RawImage:
        return self

    def __exit__(self, *exc_info: object) -> None:
        os.close(self.fd)

    def read(self, physical: int, length: int) -> bytes:
        return os.pread(self.fd, length, physical)

    def q(self, physical: int) -> int:
        return struct.unpack("<Q", self.read(physical, 8))[0]

    def pte(self, dtb: int, va: int) -> int:
        entry = dtb | 1
        for shift in (39, 30, 21, 12):
            if not entry & 1:
                return 0
            entry = self.q((entry & 0x000F_FFFF_FFFF_F000) + 8 * ((va >> shift) & 0x1FF))
        return entry

    def virtual(self, dtb: int, va: int, length: int) -> bytes:
        entry = self.pte(dtb, va)
        assert entry & 1, f"{va:#x} is not mapped"
        return self.read((entry & 0x000F_FFFF_FFFF_F000) + (va & 0xFFF), length)


def test_patched_image_page_is_a_private_copy_and_the_prototype_keeps_the_original(planted: Image):
    wmi = planted.model("WmiPrvSE.exe")
    ntdll = wmi.module("ntdll.dll")
    address = wmi.address_of("ntdll.dll", "EtwEventWrite")
    record = planted.manifest.process("WmiPrvSE.exe")
    cow = next(page for page in record.cow_pages if page.address == address & ~0xFFF)
    assert cow.module == "ntdll.dll" and cow.protection == "PAGE_EXECUTE_READ"
    with RawImage(planted.path) as raw:
        hardware = raw.pte(record.dtb, address)
        assert hardware & 1 and not hardware & 2 and not hardware >> 63, "valid, read-only, executable"
        assert hardware & 0x40, "dirty: the page was written"
        assert hardware & 0x000F_FFFF_FFFF_F000 == cow.private_physical
        assert raw.virtual(record.dtb, address, 1) == b"\xc3"
        prototype = struct.unpack("<Q", raw.virtual(planted.manifest.dtb, cow.prototype_pte, 8))[0]
        assert prototype & 1 and prototype & 0x000F_FFFF_FFFF_F000 == cow.prototype_physical
        rva = address - ntdll.base
        assert raw.read(cow.prototype_physical + (rva & 0xFFF), 16) == ntdll.image[rva : rva + 16]
        # svchost maps the same ntdll section and still uses the original page
        svchost = planted.manifest.process("svchost.exe")
        assert raw.pte(svchost.dtb, address) & 0x000F_FFFF_FFFF_F000 == cow.prototype_physical
        # the VAD's first prototype PTE is the one for the image's first page
        vad = record.vad_at(ntdll.base)
        first = struct.unpack("<Q", raw.virtual(planted.manifest.dtb, vad.first_prototype_pte, 8))[0]
        assert first & 0x000F_FFFF_FFFF_F000 == raw.pte(record.dtb, ntdll.base) & 0x000F_FFFF_FFFF_F000


def test_pte_bits_follow_the_current_protection(image: Image):
    wmi = image.model("WmiPrvSE.exe")
    record = image.manifest.process("WmiPrvSE.exe")
    with RawImage(image.path) as raw:
        for region in wmi.sorted_regions():
            if region.state == MEM_FREE:
                continue
            entry = raw.pte(record.dtb, region.base)
            protect = region.protect
            if region.state != 0x1000 or protect & 0x100:
                assert not entry & 1, f"{region.label} at {region.base:#x} must not be present"
                continue
            assert entry & 1 and entry & 4, f"{region.label}: present user page"
            assert bool(entry & 2) == (protect in (0x04, 0x40)), f"{region.label}: write bit"
            assert bool(entry >> 63) == (protect not in (0x10, 0x20, 0x40, 0x80)), f"{region.label}: NX bit"
            assert raw.virtual(record.dtb, region.base, 64) == region.read(0, 64)
        kuser = raw.virtual(image.manifest.dtb, image.manifest.kuser_shared_data + 0x26C, 4)
        assert struct.unpack("<I", kuser)[0] == 10


# --- builder properties ---------------------------------------------------------------------------


def test_output_is_deterministic_and_sparse(tmp_path):
    digests = []
    for name in ("a.raw", "b.raw"):
        build_image(19041, out_path=tmp_path / name, write_manifest=False)
        digests.append(hashlib.sha256((tmp_path / name).read_bytes()).hexdigest())
    assert digests[0] == digests[1]
    started = time.perf_counter()
    manifest = build_image(19041, out_path=tmp_path / "big.raw", size=4 << 30)
    elapsed = time.perf_counter() - started
    stat = (tmp_path / "big.raw").stat()
    assert stat.st_size == 4 << 30 == manifest.size
    assert elapsed < 20
    if hasattr(stat, "st_blocks"):
        assert stat.st_blocks * 512 < 64 << 20, "unused memory must stay a hole in the file"
    reloaded = ImageManifest.from_json((tmp_path / "big.raw.json").read_text())
    assert reloaded.process("WmiPrvSE.exe") == manifest.process("WmiPrvSE.exe")


def test_the_svchost_model_is_also_a_minidump(tmp_path):
    specs = default_processes(19041)
    svchost = next(spec.model for spec in specs if spec.name == "svchost.exe")
    write_minidump_file(svchost, str(tmp_path / "svchost.dmp"))
    assert (tmp_path / "svchost.dmp").read_bytes()[:4] == b"MDMP"
    assert svchost.command_line.endswith("-k DcomLaunch -p")


def test_generated_content_is_mapped_lazily_and_read_back(tmp_path):
    wmi = build_scaled(96 << 20, 140, build=19045)
    specs = default_processes(19041, wmiprvse=wmi)
    manifest = build_image(19041, specs, tmp_path / "scaled.raw", size=512 << 20, write_manifest=False)
    record = manifest.process("WmiPrvSE.exe")
    fillers = [region for region in wmi.regions if region.label.startswith("filler")]
    assert len(record.vads) == len(_expected_vads(wmi))
    with RawImage(tmp_path / "scaled.raw") as raw:
        for region in fillers[:: max(1, len(fillers) // 7)]:
            offset = region.size - 0x1000
            assert raw.virtual(record.dtb, region.base + offset, 32) == region.read(offset, 32)


def test_a_model_without_peb_gets_loader_lists_from_the_isf():
    isf = kernel_isf(22000)
    svchost = next(spec.model for spec in default_processes(22000) if spec.name == "svchost.exe")
    bare = LabProcess(
        arch="x64",
        build=svchost.build,
        process_id=0x1234,
        image_path=svchost.image_path,
        command_line="C:\\Windows\\system32\\svchost.exe -k netsvcs",
    )
    for module in svchost.modules:
        runs = [
            (r.base - module.base, r.size, r.protect)
            for r in svchost.regions
            if r.allocation_base == module.base
        ]
        bare.add_module(dataclasses.replace(module), runs)
    peb = add_process_environment(bare, isf)
    assert bare.peb == peb

    def pointer(address: int) -> int:
        return struct.unpack("<Q", bare.read(address, 8))[0]

    ldr = pointer(peb + isf.offset("_PEB", "Ldr"))
    head = ldr + isf.offset("_PEB_LDR_DATA", "InLoadOrderModuleList")
    bases, node = [], pointer(head)
    while node != head:
        bases.append(pointer(node + isf.offset("_LDR_DATA_TABLE_ENTRY", "DllBase")))
        node = pointer(node)
    assert bases == [module.base for module in bare.modules]
    parameters = pointer(peb + isf.offset("_PEB", "ProcessParameters"))
    command = parameters + isf.offset("_RTL_USER_PROCESS_PARAMETERS", "CommandLine")
    length = struct.unpack("<H", bare.read(command, 2))[0]
    text = bare.read(pointer(command + 8), length).decode("utf-16-le")
    assert text == bare.command_line


def test_image_too_small_is_refused(tmp_path):
    with pytest.raises(MemoryError, match="too small"):
        build_image(19041, out_path=tmp_path / "tiny.raw", size=16 << 20)
