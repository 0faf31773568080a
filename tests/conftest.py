"""Shared paths and helpers for the test suite."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
REAL_DUMPS = SHARED / "dumps" / "real"
EXAMPLE_DUMP = REPO / "fixtures" / "examples" / "wmiprvse-lab.dmp"

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def real_dump(relative: str) -> Path:
    path = REAL_DUMPS / relative
    if not path.exists():
        pytest.skip(f"real dumps not found at {REAL_DUMPS} (the shared/ folder beside the repo)")
    return path


def vol_command() -> list:
    """The ``vol`` entry point of the interpreter running the tests (not whatever is first on PATH)."""
    beside = Path(sys.executable).with_name("vol")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("vol")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from volatility3.cli import main; sys.exit(main())"]


ISF_DIR = SHARED / "isf"


def run_vol(
    dump: Path,
    plugin: str,
    *args: str,
    renderer: str = "json",
    timeout: int = 300,
    output_dir=None,
    symbols: Optional[Path] = None,
    global_options: Optional[list] = None,
):
    """Run ``vol -q -p plugins [-s ISF --offline --cache-path C] -f DUMP -r R [-o DIR] PLUGIN ARGS``.

    ``symbols`` is a symbol-cache folder: full images then get the shared ISFs, offline, with a
    private cache (an offline run must never touch the shared files).
    """
    options = ["-o", str(output_dir)] if output_dir is not None else []
    options += global_options or []
    if symbols is not None:
        # Volatility writes a failed PDB download into the first symbol folder (and deletes it
        # again), so a private folder goes first and the shared ISFs are only ever read.
        writable = Path(symbols) / "symbols"
        writable.mkdir(parents=True, exist_ok=True)
        options += ["-s", f"{writable};{ISF_DIR}", "--offline", "--cache-path", str(symbols)]
    command = [*vol_command(), "-q", "-p", str(REPO / "plugins"), "-f", str(dump), "-r", renderer, *options]
    command += [plugin, *args]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env)


def vol_json(dump: Path, plugin: str, *args: str, symbols: Optional[Path] = None) -> list:
    result = run_vol(dump, plugin, *args, symbols=symbols)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="session")
def symbol_cache(tmp_path_factory) -> Path:
    """One private Volatility symbol cache for every full-image test in the session."""
    if not (ISF_DIR / "windows" / "ntkrnlmp.pdb").is_dir():
        pytest.skip(f"ntoskrnl ISFs not found in {ISF_DIR}")
    return tmp_path_factory.mktemp("symbol-cache")


@pytest.fixture(scope="session")
def winimage(tmp_path_factory):
    """``winimage(build, etw=None)`` -> (path, manifest): each synthetic image is built once per session."""
    from fixtures.winimage import build_image

    built: dict = {}
    folder = tmp_path_factory.mktemp("winimages")

    def get(build: int, etw: Optional[str] = None):
        key = (build, etw)
        if key not in built:
            path = folder / f"{build}-{etw or 'plain'}.raw"
            built[key] = (path, build_image(build, out_path=path, etw=etw, size=64 << 20))
        return built[key]

    return get


def image_kernel(path: Path, manifest, isf_url: Optional[str] = None):
    """(context, kernel module name) over a synthetic image the way Volatility presents it: its own
    Intel32e layer over the raw file and the kernel at the 48-bit-masked base its automagic reports."""
    from volatility3.framework import contexts
    from volatility3.framework.layers.intel import WindowsIntel32e
    from volatility3.framework.layers.physical import FileLayer
    from volatility3.framework.symbols.windows import WindowsKernelIntermedSymbols

    from fixtures.etw import kernel_isf_url

    context = contexts.Context()
    context.config["raw.location"] = path.as_uri()
    context.add_layer(FileLayer(context, "raw", "raw"))
    context.config["virtual.memory_layer"] = "raw"
    context.config["virtual.page_map_offset"] = manifest.dtb
    layer = WindowsIntel32e(context, "virtual", "virtual")
    context.add_layer(layer)
    url = isf_url or kernel_isf_url(manifest.build)
    context.symbol_space.append(
        WindowsKernelIntermedSymbols(context, "nt", "nt", isf_url=url, validate=False)
    )
    module = context.module("nt", "virtual", offset=manifest.kernel_base & layer.maximum_address)
    return context, module.name
