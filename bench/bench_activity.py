#!/usr/bin/env python3
"""wmi.activity against wmi.yarascan on the same 2 GiB lab dump: wall time and peak RSS.

Builds the lab dump bench_yarascan.py uses (default 2 GiB in 10,000 captured ranges) with the
``wmi_example`` activity planted (an impacket wmiexec run and a wmipersist subscription), then
times ``vol -p plugins -f DUMP wmi.activity`` and ``vol ... wmi.yarascan`` alternately, median of
``--runs``. Peak RSS is each run's own (``bench/_measure.py``). Targets: wmi.activity at least as fast
as wmi.yarascan, peak RSS under 300 MiB.

Run: ``python bench/bench_activity.py [--size-mib 2048] [--runs 3]``; a Markdown table goes to
stdout and the numbers to ``bench/out/activity.json``.
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
from fixtures.labdump.wmiactivity import apply_activity  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser, size_mib=2048)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    path = args.workdir / f"activity-{args.size_mib}MiB.dmp"
    proc = build_scaled(args.size_mib << 20, args.ranges, seed=0)
    planted = apply_activity(proc, "wmi_example")
    with open(path, "wb") as out:
        write_minidump(proc, out)
    size = path.stat().st_size
    cache = args.workdir / "vol-cache"
    cache.mkdir(exist_ok=True)
    base = [vol_executable(), "-q", "--cache-path", str(cache), "-p", str(REPO / "plugins")]
    base += ["-f", str(path), "-r", "json"]
    samples = {"wmi.activity": [], "wmi.yarascan": []}
    rows = {}
    for _ in range(args.runs):
        for plugin in samples:
            extra = ["--min-severity", "info"] if plugin == "wmi.activity" else []
            run = measure_run([*base, plugin, *extra], capture=True)
            samples[plugin].append((run.seconds, run.peak_rss_mib))
            rows[plugin] = len(json.loads(run.stdout))
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
