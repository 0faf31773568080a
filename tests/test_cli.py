"""The ``wmi-forensics`` command: scan's summary and exit status, and ``vol`` runs that never touch -s."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.winimage import build_image
from fixtures.winimage.isf import KERNEL_ISF_FILES
from tests.conftest import EXAMPLE_DUMP, ISF_DIR, REPO
from wmiforensics.cli import main
from wmiforensics.cli.vol import split_options, volatility_arguments
from wmiforensics.runtime import RunDirectory

KERNEL_ISFS = ISF_DIR / "windows" / "ntkrnlmp.pdb"


def needs_isfs() -> None:
    if not KERNEL_ISFS.is_dir():
        pytest.skip(f"ntoskrnl ISFs not found in {ISF_DIR}")


def fingerprint(folder: Path) -> dict:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_vol_options_are_found_in_every_spelling():
    found, rest = split_options(
        ["-s", "a;b", "--symbol-dirs=c", "-sd", "-p", "x", "--cache-path", "k", "-f", "f.dmp", "wmi.modules"]
    )
    assert found == {"symbol_dirs": ["a", "b", "c", "d"], "plugin_dirs": ["x"], "cache_path": "k"}
    assert rest == ["-f", "f.dmp", "wmi.modules"]


def test_vol_gets_the_suite_plugins_a_private_cache_and_a_private_symbol_folder_first(tmp_path):
    with RunDirectory.create() as run:
        arguments = volatility_arguments(["-s", str(tmp_path), "-f", "x.dmp", "wmi.modules"], run)
        option = dict(zip(arguments[:6:2], arguments[1:6:2]))
        assert option["-p"] == str(REPO / "plugins")
        assert option["-s"].split(";") == [str(run.symbols), str(tmp_path.resolve())]
        assert option["--cache-path"] == str(run.cache_path)
        assert arguments[6:] == ["-f", "x.dmp", "wmi.modules"]
    assert not run.root.exists()


def test_a_failed_symbol_download_cannot_delete_the_users_isf(tmp_path):
    """Volatility's own download code, offline, with the symbol path each way round."""
    needs_isfs()
    import volatility3.symbols
    from volatility3.framework import constants, contexts
    from volatility3.framework.symbols.windows.pdbutil import PDBUtility

    user = tmp_path / "symbols"
    (user / "windows").mkdir(parents=True)
    target = next(KERNEL_ISFS.glob("*-1.json.xz"))
    (user / "windows" / "ntkrnlmp.pdb").mkdir()
    kept = user / "windows" / "ntkrnlmp.pdb" / target.name
    kept.write_bytes(target.read_bytes())
    guid = target.name.split("-")[0]
    saved_path, saved_offline = list(volatility3.symbols.__path__), constants.OFFLINE
    constants.OFFLINE = True

    def attempt_download(symbol_dirs):
        volatility3.symbols.__path__ = [*symbol_dirs, *constants.SYMBOL_BASEPATHS]
        with contextlib.suppress(Exception):  # OfflineException: what matters is what happened to the files
            PDBUtility.download_pdb_isf(contexts.Context(), guid, 1, "ntkrnlmp.pdb")

    try:
        with RunDirectory.create() as run:
            attempt_download(run.symbol_dirs([str(user)]))
        assert kept.read_bytes() == target.read_bytes()
        attempt_download([str(user)])  # how plain ``vol -s DIR`` runs: the user's folder first
        assert not kept.exists()
    finally:
        volatility3.symbols.__path__, constants.OFFLINE = saved_path, saved_offline


def test_concurrent_runs_against_one_symbol_folder_delete_nothing(tmp_path):
    needs_isfs()
    image = tmp_path / "image.raw"
    build_image(19041, None, image, write_manifest=False)
    shared, other = tmp_path / "isf", tmp_path / "other-isf"
    isf = KERNEL_ISFS / f"{KERNEL_ISF_FILES[19041]}.json.xz"  # one ISF: each run indexes its folder afresh
    for folder in (shared, other):  # two symbol paths: the case where Volatility's shared cache lost files
        (folder / "windows" / "ntkrnlmp.pdb").mkdir(parents=True)
        shutil.copy2(isf, folder / "windows" / "ntkrnlmp.pdb" / isf.name)
    before = fingerprint(shared)
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONWARNINGS="ignore")
    runs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "wmiforensics",
                "vol",
                "-q",
                "-s",
                str(folder),
                "--offline",
                "-f",
                str(image),
                "-r",
                "csv",
                "windows.pslist",
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for folder in (shared, other)
    ]
    outputs = [run.communicate(timeout=600) for run in runs]
    for run, (stdout, stderr) in zip(runs, outputs):
        assert run.returncode == 0, stderr
        assert stdout.count("WmiPrvSE.exe") >= 1, stdout
    assert fingerprint(shared) == before


def test_scan_exit_status_follows_fail_on(tmp_path, capsys):
    assert main(["scan", "-f", str(EXAMPLE_DUMP), "--out", str(tmp_path / "a")]) == 1
    printed = capsys.readouterr().out
    assert max(len(line) for line in printed.splitlines()) <= 100
    assert "findings: 3 critical, 4 high, 2 medium, 6 low" in printed
    assert str(tmp_path / "a" / "findings.jsonl") in printed
    # the YARA rules rank these hits medium at most: nothing at or above critical
    assert (
        main(
            [
                "scan",
                "-f",
                str(EXAMPLE_DUMP),
                "--plugins",
                "wmi.yarascan",
                "--fail-on",
                "critical",
                "--out",
                str(tmp_path / "b"),
            ]
        )
        == 0
    )
    assert main(["scan", "-f", str(REPO / "setup.cfg"), "--out", str(tmp_path / "c")]) == 2
    assert "neither a process minidump nor a Windows memory image" in capsys.readouterr().err


def test_plugins_path_prints_the_checkout_folder(capsys):
    assert main(["plugins-path"]) == 0
    assert Path(capsys.readouterr().out.strip()) == REPO / "plugins"


def test_scan_list_lights_up_plugins_as_they_are_installed():
    from wmiforensics.suite import scan_plugins

    installed = ["wmi.dumpinfo", "wmi.etwtamper", "wmi.injection", "wmi.yarascan"]
    assert scan_plugins(installed, full_image=False) == ["wmi.injection", "wmi.yarascan"]
    assert scan_plugins(installed, full_image=True) == ["wmi.injection", "wmi.yarascan", "wmi.etwtamper"]
    with_activity = [*installed, "wmi.activity"]
    assert scan_plugins(with_activity, full_image=False) == ["wmi.injection", "wmi.activity", "wmi.yarascan"]


@pytest.mark.parametrize("command", ["vol", "scan"])
def test_a_fifo_is_refused_before_volatility_opens_it(tmp_path, capsys, command):
    """Volatility blocks for ever opening a FIFO given with -f; the command refuses it in one line."""
    fifo = tmp_path / "dump.fifo"
    os.mkfifo(fifo)
    args = ["vol", "-q", "-f", str(fifo), "wmi.dumpinfo"] if command == "vol" else ["scan", "-f", str(fifo)]
    assert main(args) == 2
    error = capsys.readouterr().err.strip().splitlines()
    expected = f"wmi-forensics: error: {fifo}: is a FIFO, not a regular file; save the dump to a file first"
    assert error == [expected]


def test_input_files_are_found_in_every_spelling():
    from wmiforensics.cli.vol import input_files

    assert input_files(["-f", "a.dmp", "--file=b.dmp", "-fc.dmp", "--single-location", "file:///x"]) == [
        "a.dmp",
        "b.dmp",
        "c.dmp",
    ]
