"""The kernel backend's slow path (Volatility's own VAD traversal) agrees with the raw VAD walk."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fixtures.labdump.scenarios import build_scenario
from fixtures.winimage import build_image, default_processes
from tests.conftest import ISF_DIR, REPO

RUNNER = """
import sys
if sys.argv[1] == "slow":
    from wmiforensics.backends import vads
    vads.VadLayout.for_table = classmethod(lambda cls, context, table: None)

    def refuse(*_args):
        raise AssertionError("the raw walk must not run in the slow mode")

    vads.walk = refuse
from volatility3.cli import main
sys.argv = ["vol", *sys.argv[2:]]
main()
"""


def injection_rows(mode: str, image, cache) -> list:
    writable = Path(cache) / "symbols"  # first on the path: failed PDB downloads are written there
    writable.mkdir(parents=True, exist_ok=True)
    symbol_path = f"{writable};{ISF_DIR}"
    command = [sys.executable, "-c", RUNNER, mode, "-q", "-p", str(REPO / "plugins"), "-s", symbol_path]
    command += ["--offline", "--cache-path", str(cache), "-r", "json", "-f", str(image), "wmi.injection"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout[result.stdout.index("[") :])


def test_volatility_vad_traversal_matches_the_raw_walk(tmp_path, symbol_cache):
    model, _ = build_scenario("lab_example", arch="x64", build=19045)
    image = tmp_path / "image.raw"
    build_image(19041, default_processes(19041, wmiprvse=model), image)
    fast = injection_rows("fast", image, symbol_cache)
    slow = injection_rows("slow", image, symbol_cache)
    assert len(fast) == 9
    assert [(r["Kind"], r["Start"], r["End"], r["Protection"]) for r in fast] == [
        (r["Kind"], r["Start"], r["End"], r["Protection"]) for r in slow
    ]
