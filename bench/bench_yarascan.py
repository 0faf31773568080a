#!/usr/bin/env python3
"""wmi.yarascan throughput against the ``yara`` command-line scanner and raw yara-x, same file, one run.

Builds a lab dump (default 2 GiB in 10,000 ranges), then times, in the same run and with the bundled
rule pack:

- ``vol -q -p plugins -f DUMP wmi.yarascan`` (wall time of the whole command);
- ``yara -w RULES... DUMP`` (Debian package ``yara``, libyara 4.2);
- raw yara-x: one ``Scanner.scan_file(DUMP)`` in this process, compiled rules ready (scan time only).

The fixed overhead of a ``vol`` run (interpreter start, plugin loading, rule compilation, reading
the dump's directories) is the wall time of the same command over a small lab dump with the same
rules, recorded separately; throughput is also given with it subtracted. Every figure is the median
of ``--runs`` runs. Target: wmi.yarascan at least 1.0x the command-line scanner's throughput.

Run: ``python bench/bench_yarascan.py [--size-mib 2048] [--runs 3]``; results go to stdout as a
Markdown table and to ``bench/out/yarascan.json``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
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

from _measure import add_common_arguments, measure_run, vol_executable  # noqa: E402

from fixtures.labdump import build_scaled, build_wmiprvse, write_minidump  # noqa: E402


def timed(command: list, runs: int) -> tuple:
    """Median wall time and median CPU time (user + system of the child) of ``command``."""
    samples = [measure_run(command) for _ in range(runs)]
    walls, cpus = [run.seconds for run in samples], [run.cpu_seconds for run in samples]
    return statistics.median(walls), statistics.median(cpus)


def raw_yara_x(rules: list, path: Path, runs: int) -> float:
    import yara_x

    compiler = yara_x.Compiler()
    for rule in rules:
        compiler.new_namespace(Path(rule).stem)
        compiler.add_source(Path(rule).read_text(), origin=rule)
    scanner = yara_x.Scanner(compiler.build())
    walls, cpus = [], []
    for _ in range(runs):
        started, cpu = time.perf_counter(), time.process_time()
        scanner.scan_file(str(path))
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser, size_mib=2048)
    args = parser.parse_args()
    yara_cli = shutil.which("yara")
    if yara_cli is None:
        raise SystemExit("the yara command-line scanner is needed: apt-get install yara")
    args.workdir.mkdir(parents=True, exist_ok=True)
    path = args.workdir / f"yarascan-{args.size_mib}MiB.dmp"
    small = args.workdir / "yarascan-baseline.dmp"
    with open(path, "wb") as out:
        write_minidump(build_scaled(args.size_mib << 20, args.ranges, seed=0), out)
    with open(small, "wb") as out:
        write_minidump(build_wmiprvse(seed=0), out)
    size = path.stat().st_size
    rules = sorted(str(rule) for rule in (REPO / "yara_rules").glob("*.yar"))
    plugin = [vol_executable(), "-q", "-p", str(REPO / "plugins"), "-f"]
    ours = timed([*plugin, str(path), "wmi.yarascan"], args.runs)
    overhead = timed([*plugin, str(small), "wmi.yarascan"], args.runs)
    theirs = timed([yara_cli, "-w", *rules, str(path)], args.runs)
    raw_x = raw_yara_x(rules, path, args.runs)
    version = subprocess.run([yara_cli, "--version"], capture_output=True, text=True).stdout.strip()
    mib = size / (1 << 20)
    net = (ours[0] - overhead[0], ours[1] - overhead[1])
    rows = {
        "wmi_yarascan": ours,
        "wmi_yarascan_fixed_overhead": overhead,
        "wmi_yarascan_without_overhead": net,
        "yara_cli": theirs,
        "raw_yara_x": raw_x,
    }
    results = {
        "file_bytes": size,
        "ranges": args.ranges,
        "rules_files": len(rules),
        "baseline_dump_bytes": small.stat().st_size,
        "yara_cli_version": version,
        "yara_x_version": importlib.metadata.version("yara-x"),
        "seconds": {name: {"wall": wall, "cpu": cpu} for name, (wall, cpu) in rows.items()},
    }
    for clock, index in (("wall", 0), ("cpu", 1)):
        results[f"ratio_{clock}"] = theirs[index] / ours[index]
        results[f"ratio_{clock}_without_overhead"] = theirs[index] / max(net[index], 1e-9)
    if not args.keep:
        os.unlink(path)
        os.unlink(small)
    (args.workdir / "yarascan.json").write_text(json.dumps(results, indent=2) + "\n")
    labels = {
        "wmi_yarascan": "`vol wmi.yarascan`",
        "wmi_yarascan_fixed_overhead": "fixed overhead (same command, baseline dump)",
        "wmi_yarascan_without_overhead": "`vol wmi.yarascan` minus fixed overhead",
        "yara_cli": f"`yara` {version} command line",
        "raw_yara_x": f"raw yara-x {results['yara_x_version']} `scan_file` (scan only)",
    }
    print(f"| scanner ({size / (1 << 30):.1f} GiB, {args.ranges} ranges) | wall | CPU | MiB/s (wall) |")
    print("| --- | --- | --- | --- |")
    for name, (wall, cpu) in rows.items():
        speed = "" if name == "wmi_yarascan_fixed_overhead" else f"{mib / max(wall, 1e-9):.0f}"
        print(f"| {labels[name]} | {wall:.1f} s | {cpu:.1f} s | {speed} |")
    print(
        f"| ratio to the command line | {results['ratio_wall']:.2f}x wall, {results['ratio_cpu']:.2f}x CPU "
        f"({results['ratio_wall_without_overhead']:.2f}x / {results['ratio_cpu_without_overhead']:.2f}x "
        "without fixed overhead; target >= 1.0x) | | |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
