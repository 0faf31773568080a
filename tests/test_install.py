"""The suite as users get it: a wheel installed into a fresh virtual environment outside the checkout.

The wheel is built from a copy of the sources, installed with ``--no-deps`` into a venv that sees
this interpreter's packages (so no download), and everything runs from a folder outside the
checkout with no PYTHONPATH: the installed copy must carry every package and the plugins.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from setuptools import find_packages

from fixtures.labdump.wmiactivity import apply_activity
from fixtures.winimage import build_image, default_processes
from fixtures.winimage.scenarios import plant_code_patch, plant_private_code
from tests.conftest import EXAMPLE_DUMP, ISF_DIR, REPO

SOURCES = ("setup.py", "setup.cfg", "pyproject.toml", "README.md", "wmiforensics", "plugins", "yara_rules")
MINIDUMP_ONLY = {"wmi.dumpinfo", "wmi.regions", "wmi.modules", "wmi.threads"}
IMAGE_ONLY = {
    "wmi.etwsilos",
    "wmi.etwloggers",
    "wmi.etwproviders",
    "wmi.etwtamper",
    "wmi.etwbuffers",
    "wmi.etwevents",
    "wmi.etwfindings",
}

#: Runs inside the venv: every installed plugin on one file, in one process, as JSON.
#: Arguments: the file, plugin options as JSON, then symbol folders.
RUN_ALL = """
import json, sys
from pathlib import Path
import wmiforensics
from wmiforensics.runtime import RunDirectory
from wmiforensics.triage.runner import available_plugins, run_plugin
out = {"package": wmiforensics.__file__, "plugins": {}}
with RunDirectory.create() as run:
    for name in sorted(available_plugins()):
        result = run_plugin(Path(sys.argv[1]), name, json.loads(sys.argv[2]).get(name),
                            cache_path=run.cache_path, symbol_dirs=run.symbol_dirs(sys.argv[3:]))
        out["plugins"][name] = {"rows": len(result.rows), "error": result.error}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("install")
    source = work / "source"
    source.mkdir()
    for name in SOURCES:
        origin = REPO / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(origin, source / name)
    wheels = work / "wheels"
    quiet = ["--quiet", "--disable-pip-version-check"]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            *quiet,
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheels),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("wmi_forensics-*.whl")
    environment = work / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(environment)],
        check=True,
        timeout=120,
    )
    python = environment / "bin" / "python"
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            *quiet,
            "--no-deps",
            "--no-index",
            "--ignore-installed",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (environment / "wheel").symlink_to(wheel)
    return environment


def run_in(venv: Path, *command: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(list(command), cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_wheel_carries_every_package_and_plugin(venv):
    names = set(zipfile.ZipFile(venv / "wheel").namelist())
    for package in find_packages(str(REPO), include=["wmiforensics", "wmiforensics.*"]):
        assert f"{package.replace('.', '/')}/__init__.py" in names, package
    for plugin in (REPO / "plugins").rglob("*.py"):
        assert f"wmiforensics/volatility_plugins/{plugin.relative_to(REPO / 'plugins')}" in names, plugin


def test_installed_command_finds_its_own_plugins(venv, tmp_path):
    path = run_in(venv, "wmi-forensics", "plugins-path", cwd=tmp_path)
    assert path.returncode == 0, path.stderr
    folder = Path(path.stdout.strip())
    assert folder.is_relative_to(venv) and (folder / "windows" / "wmi" / "injection.py").is_file()
    listing = run_in(venv, "wmi-forensics", "vol", "-h", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert "could not be loaded" not in listing.stdout
    suite = {f"wmi.{path.stem}" for path in (REPO / "plugins" / "windows" / "wmi").glob("*.py")}
    listed = {name for name in suite if f"windows.wmi.{name[4:]}." in listing.stdout}
    assert listed == suite


def test_every_installed_plugin_runs_on_the_example_dump(venv, tmp_path):
    result = run_in(venv, "python", "-c", RUN_ALL, str(EXAMPLE_DUMP), "{}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert Path(report["package"]).is_relative_to(venv)
    suite = {f"wmi.{path.stem}" for path in (REPO / "plugins" / "windows" / "wmi").glob("*.py")}
    assert set(report["plugins"]) == suite
    for name, outcome in report["plugins"].items():
        if name in IMAGE_ONLY:
            assert "holds no kernel memory" in outcome["error"], (name, outcome)
        else:  # wmi.activity: the example holds no WMI objects, only WMI strings (recon queries)
            assert outcome["error"] is None and outcome["rows"] > 0, (name, outcome)


def test_every_installed_plugin_runs_on_a_synthetic_image(venv, tmp_path):
    if not (ISF_DIR / "windows" / "ntkrnlmp.pdb").is_dir():
        pytest.skip(f"ntoskrnl ISFs not found in {ISF_DIR}")
    processes = default_processes(19041)
    wmiprvse = next(spec.model for spec in processes if spec.name == "WmiPrvSE.exe")
    plant_private_code(wmiprvse, b"\xfc\x48\x83\xe4\xf0\xe8" + b"\x90" * 64)
    plant_code_patch(wmiprvse, "ntdll.dll", "EtwEventWrite", b"\xc3")
    apply_activity(wmiprvse, "wmi_wmiexec")
    image = tmp_path / "image.raw"
    build_image(19041, processes, image, write_manifest=False, etw="lab_tampered", etw_buffers={})
    # yarascan's default set includes WmiPrvSE.exe, whose planted region costs it ~20 s here: the
    # DcomLaunch svchost proves the installed copy scans an image just as well.
    svchost = next(spec.pid for spec in processes if spec.name == "svchost.exe")
    options = json.dumps({"wmi.yarascan": {"pid": [svchost]}})
    result = run_in(venv, "python", "-c", RUN_ALL, str(image), options, str(ISF_DIR), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    for name, outcome in report["plugins"].items():
        if name in MINIDUMP_ONLY:
            assert "reads Windows process minidumps" in outcome["error"], (name, outcome)
        elif name == "wmi.yarascan":
            assert outcome["error"] is None, (name, outcome)  # the planted code holds no rule's strings
        else:
            assert outcome["error"] is None and outcome["rows"] > 0, (name, outcome)


def test_installed_scan_reports_and_fails_on_findings(venv, tmp_path):
    result = run_in(venv, "wmi-forensics", "scan", "-f", str(EXAMPLE_DUMP), "--out", "out", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "3 critical" in result.stdout and max(len(line) for line in result.stdout.splitlines()) <= 100
    bad = run_in(venv, "wmi-forensics", "scan", "-f", str(REPO / "setup.cfg"), "--out", "out3", cwd=tmp_path)
    assert bad.returncode == 2 and "neither a process minidump" in bad.stderr
