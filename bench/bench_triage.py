#!/usr/bin/env python3
"""Triage throughput: ``wmi-forensics triage`` on Dask vs a shell loop of ``vol ... wmi.injection``.

Writes N lab minidumps of WmiPrvSE.exe (one ``lab_example`` dump from the bundled builder, each copy
made distinct by its header's TimeDateStamp so every sha256 differs), then times

- a bash loop running ``vol -q -p plugins -f DUMP wmi.injection`` once per dump (one Volatility
  start-up per dump, a private cache path), and
- ``run_batch`` (the code behind ``wmi-forensics triage``) on a LocalCluster of ``--workers``
  processes with the plugin list restricted to ``wmi.injection``, cluster start-up included,

and reports dumps per second for both, their ratio (target: at least 3x on 2 cores) and the
per-dump cost once a worker is warm (median of the workers' own per-dump durations).

Run: ``python bench/bench_triage.py [--count 200] [--workers 2]``; results go to stdout as a
Markdown table and to ``bench/out/triage.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fixtures.labdump import write_minidump  # noqa: E402
from fixtures.labdump.scenarios import build_scenario  # noqa: E402

TIMESTAMP_OFFSET = 20  # MINIDUMP_HEADER.TimeDateStamp


def write_fleet(folder: Path, count: int) -> list:
    model, _planted = build_scenario("lab_example")
    first = folder / "host-0000.dmp"
    with open(first, "wb") as out:
        write_minidump(model, out)
    template = bytearray(first.read_bytes())
    stamp = struct.unpack_from("<I", template, TIMESTAMP_OFFSET)[0]
    paths = [first]
    for index in range(1, count):
        struct.pack_into("<I", template, TIMESTAMP_OFFSET, stamp + index)
        path = folder / f"host-{index:04d}.dmp"
        path.write_bytes(template)
        paths.append(path)
    return paths


def shell_loop(folder: Path, cache: Path) -> float:
    vol = shutil.which("vol") or str(Path(sys.executable).with_name("vol"))
    cache.mkdir(parents=True, exist_ok=True)  # one warm cache for the whole loop: the loop's best case
    script = (
        f'for dump in "{folder}"/*.dmp; do "{vol}" -q -p "{REPO / "plugins"}" --cache-path "{cache}" '
        f'-f "$dump" wmi.injection > /dev/null || exit 1; done'
    )
    started = time.perf_counter()
    subprocess.run(["bash", "-c", script], check=True)
    return time.perf_counter() - started


def triage(folder: Path, out: Path, workers: int) -> tuple:
    from wmiforensics.triage.batch import run_batch

    started = time.perf_counter()
    result = run_batch([str(folder)], out, workers=workers, plugins=["wmi.injection"], progress=False)
    elapsed = time.perf_counter() - started
    durations = [dump["duration"] for dump in result.dumps if dump.get("duration")]
    return elapsed, statistics.median(durations), len(result.findings)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-triage-") as temporary:
        work = Path(temporary)
        folder = work / "dumps"
        folder.mkdir()
        write_fleet(folder, args.count)
        loop = shell_loop(folder, work / "vol-cache")
        batch, warm, findings = triage(folder, work / "out", args.workers)
    results = {
        "dumps": args.count,
        "workers": args.workers,
        "shell_loop_seconds": round(loop, 1),
        "triage_seconds": round(batch, 1),
        "shell_loop_dumps_per_second": round(args.count / loop, 2),
        "triage_dumps_per_second": round(args.count / batch, 2),
        "speedup": round(loop / batch, 1),
        "warm_seconds_per_dump": round(warm, 3),
        "findings": findings,
    }
    out_dir = REPO / "bench" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "triage.json").write_text(json.dumps(results, indent=2) + "\n")
    print("| measure | value |\n| --- | --- |")
    for key, value in results.items():
        print(f"| {key.replace('_', ' ')} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
