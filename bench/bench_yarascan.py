#!/usr/bin/env python3
"""wmi.yarascan throughput against the ``yara`` command-line scanner on the same 2 GiB dump.

Builds a lab dump (default 2 GiB in 10,000 ranges), then times, in the same run, the bundled
rule pack through ``vol -p plugins -f DUMP wmi.yarascan`` and through ``yara -w RULES... DUMP``
(Debian package ``yara``). Throughput is dump bytes per second of wall time; the target is at
least 0.7x the command-line scanner's.

Run: ``python bench/bench_yarascan.py [--size-mib 2048] [--runs 3]``; results go to stdout as a
Markdown table and to ``bench/out/yarascan.json``.
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


def timed(command: list, runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--ranges", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / "out")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    yara_cli = shutil.which("yara")
    if yara_cli is None:
        raise SystemExit("the yara command-line scanner is needed: apt-get install yara")
    args.workdir.mkdir(parents=True, exist_ok=True)
    path = args.workdir / f"yarascan-{args.size_mib}MiB.dmp"
    with open(path, "wb") as out:
        write_minidump(build_scaled(args.size_mib << 20, args.ranges, seed=0), out)
    size = path.stat().st_size
    rules = sorted(str(rule) for rule in (REPO / "yara_rules").glob("*.yar"))
    vol = shutil.which("vol") or str(Path(sys.executable).with_name("vol"))
    ours = timed([vol, "-q", "-p", str(REPO / "plugins"), "-f", str(path), "wmi.yarascan"], args.runs)
    theirs = timed([yara_cli, "-w", *rules, str(path)], args.runs)
    version = subprocess.run([yara_cli, "--version"], capture_output=True, text=True).stdout.strip()
    results = {
        "file_bytes": size,
        "ranges": args.ranges,
        "rules_files": len(rules),
        "wmi_yarascan_seconds": ours,
        "yara_cli_seconds": theirs,
        "yara_cli_version": version,
        "wmi_yarascan_mib_s": size / ours / (1 << 20),
        "yara_cli_mib_s": size / theirs / (1 << 20),
    }
    results["ratio"] = results["wmi_yarascan_mib_s"] / results["yara_cli_mib_s"]
    if not args.keep:
        os.unlink(path)
    (args.workdir / "yarascan.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"| scanner ({size / (1 << 30):.1f} GiB dump, {len(rules)} rule files) | wall time | throughput |")
    print("| --- | --- | --- |")
    print(f"| vol wmi.yarascan | {ours:.1f} s | {results['wmi_yarascan_mib_s']:.0f} MiB/s |")
    print(f"| yara {version} (command line) | {theirs:.1f} s | {results['yara_cli_mib_s']:.0f} MiB/s |")
    print(f"| ratio | {results['ratio']:.2f}x (target >= 0.7x) | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
