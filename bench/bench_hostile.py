#!/usr/bin/env python3
"""Hostile-scale benchmark: inputs that claim a lot and hold little must stay cheap.

Three dumps, written with ``tests/mdmp_bytes.py`` (struct from the documented layout, no reader
code), each run through ``vol`` in a fresh child process with its wall time and peak RSS:

* ``regions-1e6``: 1,000,000 MemoryInfoList entries, all private RWX, one page each, with one
  captured page (a 48 MB file) -- ``wmi.injection`` and ``wmi.yarascan``;
* ``regions-x-segments``: 20,000 regions and 20,000 captured ranges (a 1.3 MB file) --
  ``wmi.dumpinfo`` and ``wmi.regions``;
* ``region-2e64``: one region whose RegionSize reaches the top of the address space, one captured
  page -- ``wmi.yarascan`` and ``wmi.injection --dump``.

Targets: every run under 10 s and 500 MiB. A run is stopped after ``--timeout`` seconds and then
reported as such. Run: ``python bench/bench_hostile.py [--timeout 120]``; results go to stdout as
a Markdown table and to ``bench/out/hostile.json``.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _measure import measure_run, vol_executable  # noqa: E402

from tests import mdmp_bytes as mb  # noqa: E402

MEM_COMMIT, MEM_PRIVATE, PAGE_RW, PAGE_RWX = 0x1000, 0x20000, 0x04, 0x40


def _dump(entries_blob: bytes, count: int, ranges, payload: bytes) -> bytes:
    info = struct.pack("<IIQ", 16, 48, count) + entries_blob
    dump = mb.Dump(
        [
            mb.Stream(mb.SYSTEM_INFO, mb.system_info()),
            mb.Stream(mb.MEMORY_INFO_LIST, info),
            mb.Stream(mb.MEMORY64_LIST, mb.memory64_list(ranges, 0)),
        ]
    )
    dump.streams[2].data = mb.memory64_list(ranges, dump.offset_of_tail())
    dump.tail = payload
    return dump.build()


def _entry(base: int, size: int, protect: int) -> bytes:
    return struct.pack("<QQIIQIIII", base, base, protect, 0, size, MEM_COMMIT, protect, MEM_PRIVATE, 0)


def regions_1e6() -> bytes:
    count, start = 1_000_000, 0x10000000
    blob = b"".join(_entry(start + index * 0x10000, 0x1000, PAGE_RWX) for index in range(count))
    return _dump(blob, count, [(start, 0x1000)], b"\xcc" * 0x1000)


def regions_x_segments(count: int = 20_000) -> bytes:
    start = 0x10000000
    blob = b"".join(_entry(start + index * 0x2000, 0x1000, PAGE_RW) for index in range(count))
    ranges = [(start + index * 0x2000, 0x10) for index in range(count)]
    return _dump(blob, count, ranges, bytes(0x10 * count))


def region_2e64() -> bytes:
    base = 0x10000
    return _dump(_entry(base, (1 << 64) - base, PAGE_RWX), 1, [(base, 0x1000)], b"\xfc\x48" + bytes(0xFFE))


CASES = [
    ("regions-1e6", regions_1e6, [["wmi.injection"], ["wmi.yarascan"]]),
    ("regions-x-segments", regions_x_segments, [["wmi.dumpinfo"], ["wmi.regions"]]),
    ("region-2e64", region_2e64, [["wmi.yarascan"], ["wmi.injection", "--dump"]]),
]

def run(path: Path, plugin: list, output: Path, timeout: float) -> dict:
    """Wall time and peak RSS of one ``vol`` run in a fresh child (its RUSAGE_CHILDREN is its own)."""
    command = [vol_executable(), "-q", "-r", "quick", "-p", str(REPO / "plugins"), "-o", str(output)]
    command += ["-f", str(path)]
    measured = measure_run([*command, *plugin], timeout=timeout, capture=True, check=False)
    written = sum(item.stat().st_blocks * 512 for item in output.iterdir())
    return {
        "exit": measured.exit_code,
        "seconds": round(measured.seconds, 2),
        "peak_rss_mib": round(measured.peak_rss_mib),
        "lines": 0 if measured.exit_code == "timeout" else measured.stdout.count(b"\n"),
        "dump_bytes_on_disk": written,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--only", help="run only the case with this name")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for name, build, plugins in CASES:
            if args.only and name != args.only:
                continue
            path = Path(folder) / f"{name}.dmp"
            path.write_bytes(build())
            for plugin in plugins:
                output = Path(folder) / f"out-{name}-{plugin[0]}"
                output.mkdir()
                measured = run(path, plugin, output, args.timeout)
                results.append(
                    {"case": name, "file_bytes": path.stat().st_size, "plugin": " ".join(plugin), **measured}
                )
                print(json.dumps(results[-1]), file=sys.stderr)
    print("| case | file | plugin | exit | wall time | peak RSS |")
    print("| --- | --- | --- | --- | --- | --- |")
    for item in results:
        print(
            f"| {item['case']} | {item['file_bytes']:,} B | `{item['plugin']}` | {item['exit']} | "
            f"{item['seconds']} s | {item['peak_rss_mib']} MiB |"
        )
    out = REPO / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "hostile.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
