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
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _measure import add_common_arguments, measure_run, vol_executable  # noqa: E402

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
    cache = REPO / "bench" / "out" / "cache"  # a private symbol cache, never the user's
    cache.mkdir(parents=True, exist_ok=True)
    command = [vol_executable(), "-q", "--cache-path", str(cache), "-r", "json", "-p", str(plugins)]
    command += ["-f", str(path), "wmi.injection"]
    run = measure_run(command, capture=True, check=False)
    if run.exit_code != 0:
        raise SystemExit(f"wmi.injection failed on {path}")
    text = run.stdout.decode()
    findings = json.loads(text[text.index("[") :] if "[" in text else "[]")
    return run.seconds, run.peak_rss_mib, len(findings)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
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
