#!/usr/bin/env python3
"""wmi.injection benchmark: cost must follow the number of regions, not the number of bytes.

Builds two lab dumps with the same 10,000 captured ranges (the WmiPrvSE baseline grown with
filler regions, plus the ``lab_example`` attacks), one holding 2 GiB and one 64 MiB, and times
``vol -p plugins -f DUMP wmi.injection`` on each (median of several runs) with its peak RSS.
Target: 2 GiB / 64 MiB wall-time ratio under 1.5, peak RSS under 300 MiB.

Run: ``python bench/bench_injection.py [--ranges 10000] [--runs 3]``; results go to stdout as a
Markdown table and to ``bench/out/injection.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fixtures.labdump import build_scaled, write_minidump  # noqa: E402
from fixtures.labdump.scenarios import apply_scenario  # noqa: E402


def build(path: Path, total_bytes: int, ranges: int) -> int:
    proc = build_scaled(total_bytes, ranges, seed=0)
    planted = apply_scenario(proc, "lab_example")
    with open(path, "wb") as out:
        write_minidump(proc, out)
    return len(planted)


def run_plugin(path: Path, plugins: Path = REPO / "plugins") -> tuple:
    """Wall time, peak RSS (MiB) and finding count of one ``vol`` run in a fresh child process."""
    vol = shutil.which("vol") or str(Path(sys.executable).with_name("vol"))
    cache = REPO / "bench" / "out" / "cache"  # a private symbol cache, never the user's
    cache.mkdir(parents=True, exist_ok=True)
    command = [vol, "-q", "--cache-path", str(cache), "-r", "json", "-p", str(plugins), "-f", str(path)]
    command.append("wmi.injection")
    code = (
        "import json, resource, subprocess, sys, time\n"
        "start = time.perf_counter()\n"
        "out = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "elapsed = time.perf_counter() - start\n"
        "text = out.stdout[out.stdout.index('['):] if '[' in out.stdout else '[]'\n"
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "print(json.dumps([out.returncode, elapsed, rss, len(json.loads(text))]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, *command], capture_output=True, text=True, check=True
    )
    returncode, elapsed, rss, findings = json.loads(result.stdout)
    if returncode != 0:
        raise SystemExit(f"wmi.injection failed on {path}")
    return elapsed, rss, findings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranges", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / "out")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)

    results: dict = {"ranges": args.ranges, "runs": args.runs}
    for label, size in (("2GiB", 2 << 30), ("64MiB", 64 << 20)):
        path = args.workdir / f"injection-{label}.dmp"
        planted = build(path, size, args.ranges)
        samples = [run_plugin(path) for _ in range(args.runs)]
        results[label] = {
            "file_bytes": path.stat().st_size,
            "planted": planted,
            "findings": samples[0][2],
            "seconds": statistics.median(sample[0] for sample in samples),
            "peak_rss_mib": max(sample[1] for sample in samples),
        }
        if not args.keep:
            os.unlink(path)
    results["ratio"] = results["2GiB"]["seconds"] / results["64MiB"]["seconds"]
    (args.workdir / "injection.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"| wmi.injection ({args.ranges:,} ranges, lab_example attacks) | 2 GiB dump | 64 MiB dump |")
    print("| --- | --- | --- |")
    big, small = results["2GiB"], results["64MiB"]
    print(f"| findings | {big['findings']} | {small['findings']} |")
    print(f"| wall time (median of {args.runs}) | {big['seconds']:.2f} s | {small['seconds']:.2f} s |")
    print(f"| peak RSS | {big['peak_rss_mib']:.0f} MiB | {small['peak_rss_mib']:.0f} MiB |")
    print(f"| ratio 2 GiB / 64 MiB | {results['ratio']:.2f} (target < 1.5) | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
