#!/usr/bin/env python3
"""Minidump layer benchmark: open+index time, random-read latency and ``vol`` peak memory.

Builds a lab dump (default 2 GiB in 10,000 ranges) with the fixture builder, then measures:

* open + index: parsing every stream and merging the memory ranges, alone and as the Volatility
  layer stack (FileLayer + MinidumpLayer) the plugins get;
* median latency of random 8-byte reads through our layer, our reader, and the PyPI ``minidump``
  package on the same file (the comparison the README quotes);
* peak RSS and wall time of ``vol -p plugins -f DUMP wmi.dumpinfo``.

Run: ``python bench/bench_minidump.py [--size-mib 2048] [--ranges 10000]``. Needs the ``bench``
extra (``pip install -e '.[bench]'``). Results go to stdout as a Markdown table and to
``bench/out/minidump.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fixtures.labdump import build_scaled, write_minidump  # noqa: E402
from wmiforensics.minidump import Minidump  # noqa: E402


def build_dump(path: Path, size_mib: int, ranges: int) -> float:
    started = time.perf_counter()
    proc = build_scaled(size_mib << 20, ranges, seed=0)
    with open(path, "wb") as out:
        write_minidump(proc, out)
    return time.perf_counter() - started


def timed(function, repeat: int = 3) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def volatility_layer(path: Path):
    from volatility3.framework import contexts
    from volatility3.framework.layers import physical

    from wmiforensics.minidump.layer import MinidumpStacker

    context = contexts.Context()
    context.config["FileLayer.location"] = path.as_uri()
    context.add_layer(physical.FileLayer(context, "FileLayer", "FileLayer"))
    return MinidumpStacker.stack(context, "FileLayer")


def read_latencies(read, addresses) -> list:
    samples = []
    for address in addresses:
        started = time.perf_counter_ns()
        read(address)
        samples.append(time.perf_counter_ns() - started)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--ranges", type=int, default=10_000)
    parser.add_argument("--reads", type=int, default=20_000)
    parser.add_argument("--reference-reads", type=int, default=2_000, help="reads for the slower reference")
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / "out")
    parser.add_argument("--keep", action="store_true", help="keep the generated dump")
    args = parser.parse_args()

    args.workdir.mkdir(parents=True, exist_ok=True)
    path = args.workdir / f"scaled-{args.size_mib}MiB-{args.ranges}.dmp"
    results: dict = {"size_mib": args.size_mib, "ranges": args.ranges}
    results["build_seconds"] = build_dump(path, args.size_mib, args.ranges)
    results["file_bytes"] = path.stat().st_size

    results["open_index_reader_ms"] = timed(lambda: Minidump.open(path).close()) * 1000
    results["open_index_layer_ms"] = timed(lambda: volatility_layer(path)) * 1000

    layer = volatility_layer(path)
    dump = Minidump.open(path)
    results["segments"] = len(dump.segments)
    rng = random.Random(1)
    segments = [segment for segment in dump.segments if segment.size >= 8]
    addresses = []
    for _ in range(args.reads):
        segment = rng.choice(segments)
        addresses.append(segment.start + rng.randrange(segment.size - 7))

    from minidump.minidumpfile import MinidumpFile

    reference = MinidumpFile.parse(str(path)).get_reader()
    for address in addresses[:200]:  # same bytes from all three before timing anything
        expected = dump.read(address, 8)
        assert layer.read(address, 8) == expected
        assert reference.read(address, 8) == expected

    ours_layer = read_latencies(lambda a: layer.read(a, 8), addresses)
    ours_reader = read_latencies(lambda a: dump.read(a, 8), addresses)
    theirs = read_latencies(lambda a: reference.read(a, 8), addresses[: args.reference_reads])
    results["read_median_us_layer"] = statistics.median(ours_layer) / 1000
    results["read_median_us_reader"] = statistics.median(ours_reader) / 1000
    results["read_median_us_pypi_minidump"] = statistics.median(theirs) / 1000
    results["read_speedup_layer_vs_pypi"] = (
        results["read_median_us_pypi_minidump"] / results["read_median_us_layer"]
    )
    dump.close()

    vol = shutil.which("vol") or str(Path(sys.executable).with_name("vol"))
    command = [vol, "-q", "-p", str(REPO / "plugins"), "-f", str(path), "wmi.dumpinfo"]
    started = time.perf_counter()
    finished = subprocess.run(command, capture_output=True, text=True)
    results["vol_dumpinfo_seconds"] = time.perf_counter() - started
    if finished.returncode != 0:
        print(finished.stderr, file=sys.stderr)
        return 1
    results["vol_dumpinfo_peak_rss_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    if not args.keep:
        os.unlink(path)
    (args.workdir / "minidump.json").write_text(json.dumps(results, indent=2) + "\n")
    print(
        f"| measure ({args.size_mib} MiB, {args.ranges:,} ranges, {results['segments']:,} segments) | value |"
    )
    print("| --- | --- |")
    print(f"| write lab dump | {results['build_seconds']:.1f} s |")
    print(f"| open + index (reader) | {results['open_index_reader_ms']:.0f} ms |")
    print(f"| open + index (Volatility layer stack) | {results['open_index_layer_ms']:.0f} ms |")
    print(f"| random 8-byte read, our layer (median) | {results['read_median_us_layer']:.1f} µs |")
    print(f"| random 8-byte read, our reader (median) | {results['read_median_us_reader']:.1f} µs |")
    reference_us = results["read_median_us_pypi_minidump"]
    print(f"| random 8-byte read, PyPI minidump 0.0.24 (median) | {reference_us:.1f} µs |")
    print(f"| layer speed-up over PyPI minidump | {results['read_speedup_layer_vs_pypi']:.0f}x |")
    print(f"| vol wmi.dumpinfo wall time | {results['vol_dumpinfo_seconds']:.1f} s |")
    print(f"| vol wmi.dumpinfo peak RSS | {results['vol_dumpinfo_peak_rss_mib']:.0f} MiB |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
