#!/usr/bin/env python3
"""wmi.activity against wmi.yarascan on the same 2 GiB lab dump: wall time and peak RSS.

Builds the lab dump bench_yarascan.py uses (default 2 GiB in 10,000 captured ranges) with the
``wmi_example`` activity planted (an impacket wmiexec run and a wmipersist subscription), then
times ``vol -p plugins -f DUMP wmi.activity`` and ``vol ... wmi.yarascan`` alternately, median of
``--runs``. Peak RSS is each run's own (``wait4`` rusage). Targets: wmi.activity at least as fast
as wmi.yarascan, peak RSS under 300 MiB.

Run: ``python bench/bench_activity.py [--size-mib 2048] [--runs 3]``; a Markdown table goes to
stdout and the numbers to ``bench/out/activity.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fixtures.labdump import build_scaled, write_minidump  # noqa: E402
from fixtures.labdump.wmiactivity import apply_activity  # noqa: E402


def run_once(command: list) -> tuple:
    """(wall seconds, peak RSS in MiB, stdout) of one run."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{command} failed with {process.returncode}")
    return elapsed, usage.ru_maxrss / 1024, output


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--ranges", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / "out")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    path = args.workdir / f"activity-{args.size_mib}MiB.dmp"
    proc = build_scaled(args.size_mib << 20, args.ranges, seed=0)
    planted = apply_activity(proc, "wmi_example")
    with open(path, "wb") as out:
        write_minidump(proc, out)
    size = path.stat().st_size
    vol = shutil.which("vol") or str(Path(sys.executable).with_name("vol"))
    cache = args.workdir / "vol-cache"
    cache.mkdir(exist_ok=True)
    base = [vol, "-q", "--cache-path", str(cache), "-p", str(REPO / "plugins"), "-f", str(path), "-r", "json"]
    samples = {"wmi.activity": [], "wmi.yarascan": []}
    rows = {}
    for _ in range(args.runs):
        for plugin in samples:
            extra = ["--min-severity", "info"] if plugin == "wmi.activity" else []
            seconds, rss, output = run_once([*base, plugin, *extra])
            samples[plugin].append((seconds, rss))
            rows[plugin] = len(json.loads(output))
    results = {"file_bytes": size, "ranges": args.ranges, "planted_items": len(planted)}
    for plugin, values in samples.items():
        key = plugin.replace(".", "_")
        results[f"{key}_seconds"] = statistics.median(v[0] for v in values)
        results[f"{key}_peak_rss_mib"] = max(v[1] for v in values)
        results[f"{key}_rows"] = rows[plugin]
    results["ratio"] = results["wmi_activity_seconds"] / results["wmi_yarascan_seconds"]
    if not args.keep:
        os.unlink(path)
    (args.workdir / "activity.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"| plugin ({size / (1 << 30):.1f} GiB dump, {args.ranges} ranges) | wall time | peak RSS | rows |")
    print("| --- | --- | --- | --- |")
    for plugin in samples:
        key = plugin.replace(".", "_")
        print(
            f"| `{plugin}` | {results[key + '_seconds']:.1f} s | {results[key + '_peak_rss_mib']:.0f} MiB "
            f"| {results[key + '_rows']} |"
        )
    print(f"| ratio activity / yarascan | {results['ratio']:.2f} (target: at most 1.0) | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
