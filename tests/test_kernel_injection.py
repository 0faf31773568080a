"""wmi.injection on synthetic full memory images (builds 14393, 19041, 22000).

Each image holds the lab_example attacks plus memory allocated RW and later made RX and a sleeping,
masked implant in WmiPrvSE.exe. The same process model is also written as a minidump, so the two
backends must agree; Volatility's own malfind runs on the same image as a witness we did not write.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import List

import pytest

from fixtures.labdump import write_minidump
from fixtures.labdump.scenarios import apply_scenario, build_scenario
from fixtures.winimage import build_image, default_processes
from tests.conftest import REPO, run_vol, vol_command, vol_json
from wmiforensics.engine.detectors import FULL_IMAGE_ONLY_KINDS

BUILDS = (14393, 19041, 22000)


@dataclass
class Case:
    build: int
    image: Path
    minidump: Path
    pid: int
    planted: List


@pytest.fixture(scope="module", params=BUILDS, ids=[f"build{b}" for b in BUILDS])
def case(request, tmp_path_factory) -> Case:
    build = request.param
    folder = tmp_path_factory.mktemp(f"kernel-{build}")
    model, planted = build_scenario("lab_example", arch="x64", build=22631 if build >= 22000 else 19045)
    planted += apply_scenario(model, "private_rx")
    # A masked implant asleep under SleepEx: found by unwinding the user stack from the trap frame.
    planted += apply_scenario(model, "sleeping_implant")
    processes = default_processes(build, wmiprvse=model)
    image = folder / "image.raw"
    build_image(build, processes, image)
    minidump = folder / "wmiprvse.dmp"
    with open(minidump, "wb") as out:
        write_minidump(model, out)
    return Case(build, image, minidump, model.process_id, planted)


def findings(path: Path, symbols: Path, *args: str) -> set:
    return {(row["Kind"], row["Start"]) for row in vol_json(path, "wmi.injection", *args, symbols=symbols)}


def test_full_image_finds_the_planted_attacks(case, symbol_cache):
    found = findings(case.image, symbol_cache)
    shared = {item for item in found if item[0] not in FULL_IMAGE_ONLY_KINDS}
    assert shared == {(item.kind, item.start) for item in case.planted}


def test_full_image_and_minidump_agree(case, symbol_cache):
    image = {item for item in findings(case.image, symbol_cache) if item[0] not in FULL_IMAGE_ONLY_KINDS}
    assert image == findings(case.minidump, symbol_cache)


def test_patched_etw_page_is_a_private_copy_only_a_full_image_shows(case, symbol_cache):
    rows = vol_json(case.image, "wmi.injection", symbols=symbol_cache)
    etw = next(row for row in rows if row["Kind"] == "etw_patch")
    modified = [row for row in rows if row["Kind"] == "image_page_modified"]
    assert [row["Start"] for row in modified] == [etw["Start"]]
    assert "private copy-on-write" in modified[0]["Reason"]
    assert "xor eax, eax" in modified[0]["Disassembly"]
    assert "original bytes: 4c 8b dc" in modified[0]["Evidence"]


def test_everything_malfind_finds_is_found_and_more(case, symbol_cache):
    result = run_vol(case.image, "windows.malware.malfind", "--pid", str(case.pid), symbols=symbol_cache)
    assert result.returncode == 0, result.stderr
    malfind = {row["Start VPN"] for row in json.loads(result.stdout)}
    rows = vol_json(case.image, "wmi.injection", symbols=symbol_cache)
    covered = {row["Start"] for row in rows}
    assert malfind, "malfind should see the RWX allocations"
    assert malfind <= covered
    # Memory allocated RW and made RX later keeps an RW VAD: malfind cannot see it, the PTEs can.
    rw_then_rx = [row["Start"] for row in rows if row["Kind"] == "exec_private"]
    assert rw_then_rx and not set(rw_then_rx) & malfind
    # Notions malfind has no column for: PE remains, loader lies, threads, ETW patches.
    kinds = {row["Kind"] for row in rows}
    assert {"pe_headerless", "module_masquerade", "thread_start_unbacked", "etw_patch"} <= kinds


def test_other_processes_are_chosen_by_pid_or_name(case, symbol_cache):
    assert vol_json(case.image, "wmi.injection", "--name", "svchost.exe", symbols=symbol_cache) == []
    result = run_vol(case.image, "wmi.injection", "--name", "notepad.exe", symbols=symbol_cache)
    assert result.returncode == 2
    message = result.stderr
    assert "no process matches notepad.exe; processes in this image: System (4), Registry (108)" in message
    assert f"svchost.exe (936), svchost.exe (1016), svchost.exe (1100), WmiPrvSE.exe ({case.pid})" in message
    rows = vol_json(case.image, "wmi.injection", "--pid", str(case.pid), symbols=symbol_cache)
    assert {row["PID"] for row in rows} == {case.pid}


def test_wmiprvse_with_the_wrong_parent(tmp_path, symbol_cache):
    model, _ = build_scenario("clean", arch="x64", build=19045)
    processes = default_processes(19041, wmiprvse=model)
    wmi = next(spec for spec in processes if spec.name == "WmiPrvSE.exe")
    wmi.ppid = 4
    image = tmp_path / "odd-parent.raw"
    build_image(19041, processes, image)
    rows = vol_json(image, "wmi.injection", symbols=symbol_cache)
    reasons = {row["Kind"]: row["Reason"] for row in rows}
    assert set(reasons) == {"process_parent"}
    assert "started by System (PID 4), not by the DCOM launcher" in reasons["process_parent"]


def test_missing_symbols_name_the_pdb(case, tmp_path):
    empty_cache = tmp_path / "cache"
    empty_cache.mkdir()
    command = [
        *vol_command(),
        "-q",
        "-p",
        str(REPO / "plugins"),
        "--offline",
        "--cache-path",
        str(empty_cache),
    ]
    command += ["-f", str(case.image), "wmi.injection"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    guid = {
        14393: "DBBC830E3E9A48FDA25A2144C146930E",
        19041: "606FF669409B00F7FC8C61A9C1670129",
        22000: "0CE4A95C0CD782A7596B034D8648E585",
    }[case.build]
    assert f"symbols are missing: this image's kernel is ntkrnlmp.pdb GUID {guid} age 1" in result.stderr
    assert (
        f"Put {guid}-1.json.xz under DIR/windows/ntkrnlmp.pdb/ and run vol with -s DIR --offline"
        in result.stderr
    )


def test_flipped_amsi_branch_names_the_original_byte_from_the_prototype_page(tmp_path, symbol_cache):
    """On a full image the flipped je's page is a private copy: the finding quotes the image file's
    je from the prototype page, and the page change itself starts at the flipped byte."""
    model, planted = build_scenario("amsi_open_session_jne", arch="x64", build=19045)
    (record,) = planted
    image = tmp_path / "amsi-flip.raw"
    build_image(19041, default_processes(19041, wmiprvse=model), image)
    rows = vol_json(image, "wmi.injection", "--pid", str(model.process_id), symbols=symbol_cache)
    flip = next(row for row in rows if row["Kind"] == "amsi_branch_patch")
    assert (flip["Start"], flip["Severity"], flip["Confidence"]) == (record.start, "critical", "high")
    assert "the image file's page holds 74 27 (je 0x" in flip["Evidence"]
    assert "flagged instruction bytes: 75 27 (jne 0x" in flip["Evidence"]
    modified = [row for row in rows if row["Kind"] == "image_page_modified"]
    assert [row["Start"] for row in modified] == [record.start]
    assert "original bytes: 74" in modified[0]["Evidence"]
