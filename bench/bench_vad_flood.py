#!/usr/bin/env python3
"""wmi.injection on a full image whose WmiPrvSE.exe holds a flood of small VADs, at the real region budget.

For each flood size the image (fixtures.winimage, build 19041: System and a WmiPrvSE.exe with
``plant_vad_flood`` and one planted RWX page above the flood) is built once, then ``wmi.injection --pid``
runs with a warm symbol cache: wall time, CPU time and peak RSS (``_measure``). ``--unbounded N`` also runs
the first size with the budget raised to N (``WMIFORENSICS_MAX_DETAILED_REGIONS``), to show what the
budget saves. Each row says whether the planted page was still reported.

Run: ``python bench/bench_vad_flood.py [--vads 60000 250000] [--unbounded 10000000]``; results go to
stdout as a Markdown table and to ``bench/out/vad_flood.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _measure import measure_run, vol_executable  # noqa: E402

from fixtures.winimage import build_image, default_processes  # noqa: E402
from fixtures.winimage.builder import wmiprvse_model  # noqa: E402
from fixtures.winimage.scenarios import (  # noqa: E402
    free_allocation_base,
    plant_private_code,
    plant_vad_flood,
)
from wmiforensics.backends.bounds import MAX_DETAILED_REGIONS, REGION_BUDGET_ENV  # noqa: E402

ISF = REPO.parent / "shared" / "isf"
BUILD = 19041


def build(count: int, image: Path):
    model = wmiprvse_model(BUILD)
    processes = default_processes(BUILD, wmiprvse=model)
    flood_end = plant_vad_flood(model, count)
    planted = plant_private_code(model, b"\xcc" * 64, base=free_allocation_base(model, 0x1000, flood_end))
    started = time.perf_counter()
    manifest = build_image(BUILD, [processes[0], processes[-1]], image)
    return manifest.processes[-1], planted.base, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vads", type=int, nargs="+", default=[60_000, 250_000])
    parser.add_argument("--unbounded", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / "out")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        symbol_path = f"{cache}/symbols;{ISF}"  # a private folder first: failed PDB downloads land there
        base = [vol_executable(), "-q", "-p", str(REPO / "plugins"), "-s", symbol_path, "--offline"]
        base += ["--cache-path", cache, "-r", "json"]
        for index, count in enumerate(args.vads):
            image = args.workdir / f"vad-flood-{count}.raw"
            record, planted, build_seconds = build(count, image)
            command = [*base, "-f", str(image), "wmi.injection", "--pid", str(record.pid)]
            if index == 0:
                measure_run([*base, "-f", str(image), "windows.info"])  # warm the symbol cache
            budgets = [MAX_DETAILED_REGIONS] + ([args.unbounded] if args.unbounded and index == 0 else [])
            for budget in budgets:
                os.environ[REGION_BUDGET_ENV] = str(budget)
                run = measure_run(command, capture=True)
                found = {(row["Kind"], row["Start"]) for row in json.loads(run.stdout)}
                rows.append(
                    {
                        "vads": len(record.vads),
                        "budget": budget,
                        "build_s": round(build_seconds, 1),
                        "run_s": round(run.seconds, 1),
                        "cpu_s": round(run.cpu_seconds, 1),
                        "peak_rss_mib": round(run.peak_rss_mib),
                        "planted_reported": ("exec_rwx", planted) in found,
                    }
                )
                print(rows[-1], flush=True)
            if not args.keep:
                image.unlink()
                Path(str(image) + ".json").unlink()
    os.environ.pop(REGION_BUDGET_ENV, None)
    (args.workdir / "vad_flood.json").write_text(json.dumps(rows, indent=1))
    print("| VADs | budget | build s | wmi.injection s | CPU s | peak RSS MiB | planted RWX reported |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for row in rows:
        print(
            f"| {row['vads']:,} | {row['budget']:,} | {row['build_s']} | {row['run_s']} | {row['cpu_s']} "
            f"| {row['peak_rss_mib']} | {'yes' if row['planted_reported'] else 'no'} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
