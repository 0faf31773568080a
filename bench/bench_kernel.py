#!/usr/bin/env python3
"""wmi.injection against Volatility's windows.malware.malfind on the same 4 GiB synthetic image.

The image (fixtures.winimage, build 19041) holds the boot processes, the DcomLaunch svchost and a
WmiPrvSE.exe grown to many regions with the lab_example attacks. Both plugins run in the same session with a
warm symbol cache; wall time is the median of several runs. Target: wmi.injection / malfind <= 1.0
while doing more (PTE protections, loader lists, threads, ETW exports, prototype-page comparison).

Run: ``python bench/bench_kernel.py [--runs 3] [--ranges 2000] [--process-mib 512]``; results go to
stdout as a Markdown table and to ``bench/out/kernel.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fixtures.labdump import build_scaled  # noqa: E402
from fixtures.labdump.scenarios import apply_scenario  # noqa: E402
from fixtures.winimage import build_image, default_processes  # noqa: E402

ISF = REPO.parent / "shared" / "isf"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ranges", type=int, default=2_000)
    parser.add_argument("--process-mib", type=int, default=512)
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / "out")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    image = args.workdir / "kernel-19041-4GiB.raw"

    started = time.perf_counter()
    model = build_scaled(args.process_mib << 20, args.ranges, seed=0)
    apply_scenario(model, "lab_example")
    build_image(19041, default_processes(19041, wmiprvse=model), image, size=4 << 30)
    build_seconds = time.perf_counter() - started

    vol = shutil.which("vol") or str(Path(sys.executable).with_name("vol"))
    with tempfile.TemporaryDirectory() as cache:
        base = [
            vol,
            "-q",
            "-p",
            str(REPO / "plugins"),
            "-s",
            f"{cache}/symbols;{ISF}",  # a private folder first: failed PDB downloads are written there
            "--offline",
            "--cache-path",
            cache,
            "-r",
            "json",
            "-f",
            str(image),
        ]
        subprocess.run([*base, "windows.info"], check=True, capture_output=True)  # warm the symbol cache
        timings, counts = {}, {}
        for plugin in ("wmi.injection", "windows.malware.malfind"):
            samples = []
            for _ in range(args.runs):
                started = time.perf_counter()
                result = subprocess.run([*base, plugin], check=True, capture_output=True, text=True)
                samples.append(time.perf_counter() - started)
            timings[plugin] = statistics.median(samples)
            counts[plugin] = len(json.loads(result.stdout))
    results = {
        "image_bytes": image.stat().st_size,
        "build_seconds": build_seconds,
        "wmiprvse_ranges": args.ranges,
        "wmiprvse_mib": args.process_mib,
        "seconds": timings,
        "rows": counts,
        "ratio": timings["wmi.injection"] / timings["windows.malware.malfind"],
    }
    if not args.keep:
        os.unlink(image)
        with_manifest = image.with_name(image.name + ".json")
        if with_manifest.exists():
            os.unlink(with_manifest)
    (args.workdir / "kernel.json").write_text(json.dumps(results, indent=2) + "\n")
    print(
        f"| 4 GiB image, WmiPrvSE with {args.ranges:,} ranges ({args.process_mib} MiB) | wall time | rows |"
    )
    print("| --- | --- | --- |")
    for plugin in timings:
        print(f"| {plugin} | {timings[plugin]:.2f} s | {counts[plugin]} |")
    print(f"| ratio wmi.injection / malfind | {results['ratio']:.2f} (target <= 1.0) | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
