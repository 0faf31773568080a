"""What the bench scripts share: run a command, time it, read its peak RSS; and their common options.

A command runs under a fresh Python child that starts it and then reads its own
``RUSAGE_CHILDREN``: that usage belongs to the measured command alone (the largest resident set of
its process tree, and its user + system CPU time), whatever else this script has run before.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

REPO = Path(__file__).resolve().parents[1]

_CHILD = (
    "import json, resource, subprocess, sys, time\n"
    "timeout = float(sys.argv[1]) if sys.argv[1] else None\n"
    "out = open(sys.argv[2], 'wb') if sys.argv[2] else subprocess.DEVNULL\n"
    "start = time.perf_counter()\n"
    "try:\n"
    "    run = subprocess.run(sys.argv[3:], stdout=out, stderr=subprocess.DEVNULL, timeout=timeout)\n"
    "    code = run.returncode\n"
    "except subprocess.TimeoutExpired:\n"
    "    code = 'timeout'\n"
    "elapsed = time.perf_counter() - start\n"
    "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(json.dumps([code, elapsed, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime]))\n"
)


@dataclass
class Measurement:
    """One run of one command."""

    exit_code: Union[int, str]  # "timeout" when it was stopped
    seconds: float
    peak_rss_mib: float
    cpu_seconds: float
    stdout: bytes = b""


def measure_run(
    command: Sequence[str], *, timeout: Optional[float] = None, capture: bool = False, check: bool = True
) -> Measurement:
    """Run ``command`` once in a fresh child; ``capture`` keeps its stdout, ``check`` stops on failure."""
    with tempfile.TemporaryDirectory() as folder:
        stdout_path = str(Path(folder) / "stdout") if capture else ""
        arguments = [sys.executable, "-c", _CHILD, "" if timeout is None else str(timeout), stdout_path]
        result = subprocess.run([*arguments, *command], capture_output=True, text=True, check=True)
        code, seconds, rss, cpu = json.loads(result.stdout)
        stdout = Path(stdout_path).read_bytes() if capture else b""
    if check and code != 0:
        raise SystemExit(f"failed ({code}): {' '.join(map(str, command))}")
    return Measurement(code, seconds, rss, cpu, stdout)


def vol_executable() -> str:
    """The ``vol`` of this interpreter's environment (or the first on PATH)."""
    return shutil.which("vol") or str(Path(sys.executable).with_name("vol"))


def add_common_arguments(parser: argparse.ArgumentParser, *, size_mib: Optional[int] = None) -> None:
    """``[--size-mib N] --ranges N --runs N --workdir DIR --keep``: the scaled lab dumps' options."""
    if size_mib is not None:
        parser.add_argument("--size-mib", type=int, default=size_mib)
    parser.add_argument("--ranges", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / "out")
    parser.add_argument("--keep", action="store_true")
