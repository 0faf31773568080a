#!/usr/bin/env python3
"""Fixed and per-range cost of a minidump ``vol`` run, paired against an earlier set of figures.

Measures, each in a fresh ``vol`` child process with a private cache:

* ``wmi.injection`` on lab dumps of 10,000 and 100,000 captured ranges (the WmiPrvSE baseline grown
  with filler regions, plus the ``lab_example`` attacks): median wall time and peak RSS;
* ``wmi.regions`` and ``wmi.dumpinfo`` on a dump of 1,000,000 committed regions, each with a
  captured 64-byte prefix (``fixtures.labdump.scale.write_region_table``): wall time and peak RSS;
* the same two listings on 2,000,000 regions (the ceiling must keep them all within 1 GiB);
* the start-up floor: a bare interpreter, ``import volatility3.cli``, and ``vol wmi.dumpinfo`` on the
  small checked-in example dump (plugin discovery, automagic, one parse);
* the lab builder writing a WmiPrvSE process grown to 65,536 threads (in this process).

``--save FILE`` stores the figures; ``--compare FILE`` prints them next to earlier ones (the
README's "before" column was produced by running this script on the code before the change).

Run: ``python bench/bench_cost.py [--runs 3] [--skip 1M] [--compare bench/out/cost-before.json]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _measure import measure_run, vol_executable  # noqa: E402

from fixtures.labdump import build_scaled, build_wmiprvse, write_minidump  # noqa: E402
from fixtures.labdump.scale import write_region_table  # noqa: E402
from fixtures.labdump.scenarios import apply_scenario  # noqa: E402

EXAMPLE = REPO / "fixtures" / "examples" / "wmiprvse-lab.dmp"

def measure(command: list, runs: int) -> dict:
    """Median wall time, median CPU time (user + system) and largest peak RSS over ``runs`` processes.

    CPU time is the figure to compare on a shared machine: wall time also counts waiting for a core.
    """
    samples = [measure_run(command) for _ in range(runs)]
    return {
        "seconds": statistics.median(sample.seconds for sample in samples),
        "peak_rss_mib": max(sample.peak_rss_mib for sample in samples),
        "cpu_seconds": statistics.median(sample.cpu_seconds for sample in samples),
    }


def vol_command(workdir: Path, dump: Path, plugin: str, *extra: str) -> list:
    cache = workdir / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    return [
        vol_executable(),
        "-q",
        "--cache-path",
        str(cache),
        "-p",
        str(REPO / "plugins"),
        "-f",
        str(dump),
        *extra,
        plugin,
    ]


def build_lab(path: Path, total_bytes: int, ranges: int) -> None:
    if path.exists():
        return
    proc = build_scaled(total_bytes, ranges, seed=0)
    apply_scenario(proc, "lab_example")
    with open(path, "wb") as out:
        write_minidump(proc, out)


def build_region_table(path: Path, regions: int) -> None:
    if path.exists():
        return
    with open(path, "wb") as out:
        write_region_table(out, regions)


def builder_threads_seconds(threads: int) -> float:
    """Seconds to write the WmiPrvSE lab process grown to ``threads`` threads (copies of its last one)."""
    proc = build_wmiprvse(arch="x64", build=19045, seed=0)
    template = proc.threads[-1]
    while len(proc.threads) < threads:
        proc.threads.append(dataclasses.replace(template, thread_id=0x10000 + len(proc.threads)))
    started = time.perf_counter()
    write_minidump(proc, io.BytesIO())
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / "out")
    parser.add_argument(
        "--skip", action="append", default=[], help="skip a case: 10k, 100k, 1M, 2M, startup, builder"
    )
    parser.add_argument("--save", type=Path, help="write the figures to this JSON file")
    parser.add_argument("--compare", type=Path, help="earlier figures to print alongside")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    results: dict = {}

    for label, ranges, size in (("10k", 10_000, 64 << 20), ("100k", 100_000, 512 << 20)):
        if label in args.skip:
            continue
        dump = args.workdir / f"cost-injection-{label}.dmp"
        build_lab(dump, size, ranges)
        results[f"injection {label}"] = measure(vol_command(args.workdir, dump, "wmi.injection"), args.runs)
    for label, regions in (("1M", 1_000_000), ("2M", 2_000_000)):
        if label in args.skip:
            continue
        dump = args.workdir / f"cost-regions-{label}.dmp"
        build_region_table(dump, regions)
        for plugin in ("wmi.regions", "wmi.dumpinfo"):
            results[f"{plugin} {label}"] = measure(vol_command(args.workdir, dump, plugin), 1)
    if "startup" not in args.skip:
        results["python -c pass"] = measure([sys.executable, "-c", "pass"], args.runs + 2)
        results["import volatility3.cli"] = measure(
            [sys.executable, "-c", "import volatility3.cli"], args.runs + 2
        )
        results["vol wmi.dumpinfo, example dump"] = measure(
            vol_command(args.workdir, EXAMPLE, "wmi.dumpinfo"), args.runs + 2
        )

    if "builder" not in args.skip:
        results["builder, 65,536 threads"] = {"seconds": builder_threads_seconds(65_536), "peak_rss_mib": 0.0}

    if args.save:
        args.save.write_text(json.dumps(results, indent=2) + "\n")
    before = json.loads(args.compare.read_text()) if args.compare else {}
    print("| case | before: wall | before: CPU | before: peak RSS | now: wall | now: CPU | now: peak RSS |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for case, now in results.items():
        old = before.get(case, {})
        cells = []
        for figures in (old, now):
            cells.append(f"{figures['seconds']:.2f} s" if "seconds" in figures else "-")
            cells.append(f"{figures['cpu_seconds']:.2f} s" if "cpu_seconds" in figures else "-")
            cells.append(f"{figures['peak_rss_mib']:.0f} MiB" if figures.get("peak_rss_mib") else "-")
        print(f"| {case} | {' | '.join(cells)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
