"""Default text output fits 200 columns; JSON keeps every value whole.

Every suite plugin runs on the bundled example dump and on a synthetic full image with planted
injection, ETW tampering, ETW buffers and WMI activity. Its ``quick`` text (Volatility's default
renderer) must have no line wider than 200 characters (a tab counts as one), and every long value
of its JSON rows (hexdumps, disassembly, evidence, YARA strings, decoded event fields) must be in
that text either whole or cut with a marker that counts exactly what was left out.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_DUMP, ISF_DIR, run_vol
from wmiforensics.runtime import RunDirectory
from wmiforensics.suite import suite_plugin_names
from wmiforensics.triage.runner import run_plugin
from wmiforensics.vol.common import escape_control
from wmiforensics.vol.grid import MOVED, TEXT_WIDTH

MARKER = re.compile(r"\.\.\.\[\+(\d+) chars\]$")
#: Plugins whose rows carry long evidence on the planted image.
EVIDENCE_PLUGINS = {"wmi.injection", "wmi.yarascan", "wmi.activity", "wmi.etwevents", "wmi.etwfindings"}


@pytest.fixture(scope="module")
def run_dir():
    with RunDirectory.create() as run:
        yield run


@pytest.fixture(scope="module")
def planted_image(tmp_path_factory) -> Path:
    from fixtures.winimage.__main__ import main as winimage

    if not (ISF_DIR / "windows" / "ntkrnlmp.pdb").is_dir():
        pytest.skip(f"ntoskrnl ISFs not found in {ISF_DIR}")
    path = tmp_path_factory.mktemp("image") / "planted.raw"
    argv = ["--build", "19041", "-o", str(path), "--size", "64M", "--plant-rwx", "--patch-etw"]
    argv += ["--etw", "lab_tampered"]
    assert winimage([*argv, "--etw-buffers", "--wmi-activity", "wmi_all"]) == 0
    return path


def shown_values(text: str) -> list:
    """Every tab-separated cell of the rows below the header."""
    lines = [line for line in text.splitlines() if line.strip()]
    header = next(index for index, line in enumerate(lines) if "\t" in line)
    return [cell.lstrip("* ") for line in lines[header + 1 :] for cell in line.split("\t")]


def assert_value_shown(value: str, cells: list, where: str) -> None:
    escaped = escape_control(value)
    if escaped in cells:
        return
    for cell in cells:
        marker = MARKER.search(cell)
        shown = marker.start() if marker else 0
        if marker and escaped.startswith(cell[:shown]) and shown + int(marker.group(1)) == len(escaped):
            return  # cut, and the marker counts exactly what was left out
    raise AssertionError(f"{where}: {escaped[:80]!r} is neither whole nor cut with a marker in the text")


def check_plugin(run_dir, dump: Path, plugin: str, symbol_dirs: list) -> int:
    """Asserts the width and the JSON/text agreement; returns how many long values were checked."""
    dirs = run_dir.symbol_dirs(symbol_dirs)
    text = run_plugin(dump, plugin, cache_path=run_dir.cache_path, symbol_dirs=dirs, renderer="quick")
    if text.error:
        assert "minidump" in text.error or "memory image" in text.error, text.error  # not for this input
        return 0
    wide = [line for line in text.text.splitlines() if len(line) > TEXT_WIDTH]
    assert not wide, f"{plugin} on {dump.name}: {len(wide)} lines over {TEXT_WIDTH}: {wide[0][:120]}"
    cells = shown_values(text.text)
    checked = 0
    for row in text.rows:  # the rows as -r json prints them, from the same run
        for column, value in row.items():
            if isinstance(value, str) and len(value) > 60:
                assert value != MOVED and not MARKER.search(value), f"{plugin} {column}: JSON holds a cut"
                assert_value_shown(value, cells, f"{plugin} {column} on {dump.name}")
                checked += 1
    return checked


def test_every_plugin_fits_200_columns_on_the_example_dump(run_dir):
    checked = {plugin: check_plugin(run_dir, EXAMPLE_DUMP, plugin, []) for plugin in suite_plugin_names()}
    assert checked["wmi.injection"] >= 8 and checked["wmi.yarascan"] >= 4


def test_every_plugin_fits_200_columns_on_a_planted_image(run_dir, planted_image):
    dirs = [str(ISF_DIR)]
    checked = {plugin: check_plugin(run_dir, planted_image, plugin, dirs) for plugin in suite_plugin_names()}
    for plugin in EVIDENCE_PLUGINS:
        assert checked[plugin] > 0, plugin


def test_json_keeps_the_full_hexdump_disassembly_and_evidence(run_dir):
    rows = run_plugin(EXAMPLE_DUMP, "wmi.injection", cache_path=run_dir.cache_path).rows
    pe = next(row for row in rows if row["Kind"] == "pe_injected")
    # 32 bytes of hexdump with its ASCII column, the whole decoded entry point, the whole evidence line
    assert re.fullmatch(r"(?:[0-9a-f]{2} ){32}\|.{32}\|", pe["Hexdump"])
    assert pe["Disassembly"].count("; ") >= 8 and len(pe["Disassembly"]) > TEXT_WIDTH
    assert pe["Evidence"].startswith("machine x64, SizeOfImage") and len(pe["Evidence"]) > 150


def test_vol_default_renderer_fits_and_structured_renderers_stay_whole():
    """Through Volatility's own CLI: the default renderer is fitted, csv and json are not."""
    quick = run_vol(EXAMPLE_DUMP, "wmi.injection", renderer="quick")
    assert quick.returncode == 0, quick.stderr
    assert max(len(line) for line in quick.stdout.splitlines()) <= TEXT_WIDTH
    assert MOVED in quick.stdout and "chars]" in quick.stdout
    full = json.loads(run_vol(EXAMPLE_DUMP, "wmi.injection").stdout)
    csv_out = run_vol(EXAMPLE_DUMP, "wmi.injection", renderer="csv").stdout
    assert MOVED not in csv_out and "chars]" not in csv_out
    assert all(row["Disassembly"] is None or row["Disassembly"] in csv_out for row in full)


def test_fitting_can_be_turned_off(run_dir, monkeypatch):
    monkeypatch.setenv("WMI_FORENSICS_TEXT_WIDTH", "0")
    text = run_plugin(EXAMPLE_DUMP, "wmi.injection", cache_path=run_dir.cache_path, renderer="quick").text
    assert MOVED not in text and max(len(line) for line in text.splitlines()) > TEXT_WIDTH
