#!/usr/bin/env python3
"""Cost of the thread-stack and code-integrity checks in ``wmi.injection``.

1. The 2 GiB, 10,000-range lab dump with the ``lab_example`` attacks (as bench_injection.py builds
   it): ``wmi.injection`` timed with the code under test and with the code of a baseline checkout
   (``--baseline DIR``: a tree of the project before these checks, e.g. ``git archive`` of an older
   commit) on the same file. Target: at most 1.5x the baseline's wall time.
2. Thread scaling: the lab baseline plus N sleeping thread-pool threads (each with its own stack
   laid out as the modules' unwind data describes), N = 1,000 and 5,000. Target: the cost per
   added thread stays flat (linear growth).

Run: ``python bench/bench_stacks.py [--baseline DIR] [--runs 3]``; a Markdown table goes to stdout
and the numbers to ``bench/out/stacks.json``.
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

from bench.bench_injection import build, run_plugin  # noqa: E402
from fixtures.labdump import build_wmiprvse, write_minidump  # noqa: E402
from fixtures.labdump.codegen import SYSCALL_STUB_RETURN_OFFSET  # noqa: E402
from fixtures.labdump.model import Thread  # noqa: E402
from fixtures.labdump.wmiprvse import THREAD_BASE_FRAMES, _stack, _stack_frames, frame_sizes  # noqa: E402

STACK_AREA = 0x0000_0300_0000_0000


def build_threads(path: Path, count: int) -> None:
    """The x64 baseline plus ``count`` worker threads waiting in NtWaitForWorkViaWorkerFactory."""
    proc = build_wmiprvse(arch="x64")
    labels = (("ntdll.dll", "TppWorkerThread->NtWaitForWorkViaWorkerFactory"),) + THREAD_BASE_FRAMES
    frames = [proc.address_of(module, label) for module, label in labels]
    sizes = frame_sizes(proc, labels)
    ip = proc.address_of("ntdll.dll", "NtWaitForWorkViaWorkerFactory") + SYSCALL_STUB_RETURN_OFFSET["x64"]
    start = proc.address_of("ntdll.dll", "TppWorkerThread")
    for index in range(count):
        base, limit = _stack(proc, STACK_AREA + index * 0x100000, 0x2000)
        stack_pointer, _, data = _stack_frames("x64", base, limit, frames, sizes)
        proc.write(limit, data)
        proc.threads.append(
            Thread(
                thread_id=0x10000 + 4 * index,
                teb=0,
                stack_base=base,
                stack_limit=limit,
                start_address=start,
                instruction_pointer=ip,
                stack_pointer=stack_pointer,
            )
        )
    with open(path, "wb") as out:
        write_minidump(proc, out)


def run_with(path: Path, tree: Path) -> float:
    """Wall time of one ``wmi.injection`` run with the package and plugins of ``tree``."""
    os.environ["PYTHONPATH"] = str(tree)
    return run_plugin(path, tree / "plugins")[0]


def timed(path: Path, runs: int, tree: Path) -> float:
    return statistics.median(run_with(path, tree) for _ in range(runs))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="a checkout of the project before the checks")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / "out")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    results: dict = {"runs": args.runs}

    big = args.workdir / "stacks-2GiB.dmp"
    build(big, 2 << 30, 10_000)
    # Runs alternate between the two trees so that load from elsewhere hits both alike.
    ours, theirs = [], []
    for _ in range(args.runs):
        ours.append(run_with(big, REPO))
        if args.baseline:
            theirs.append(run_with(big, args.baseline.resolve()))
    results["2GiB"] = {"seconds": statistics.median(ours)}
    if args.baseline:
        results["2GiB"]["baseline_seconds"] = statistics.median(theirs)
    os.unlink(big)

    for count in (0, 1_000, 5_000):
        path = args.workdir / f"stacks-{count}-threads.dmp"
        build_threads(path, count)
        results[f"threads_{count}"] = timed(path, args.runs, REPO)
        os.unlink(path)
    per_thread = {
        count: (results[f"threads_{count}"] - results["threads_0"]) / count for count in (1_000, 5_000)
    }
    results["ms_per_thread"] = {str(count): value * 1000 for count, value in per_thread.items()}
    (args.workdir / "stacks.json").write_text(json.dumps(results, indent=2) + "\n")

    print("| measure | value |")
    print("| --- | --- |")
    seconds = results["2GiB"]["seconds"]
    print(f"| `wmi.injection`, 2 GiB / 10,000 ranges (median of {args.runs}) | {seconds:.2f} s |")
    if args.baseline:
        baseline = results["2GiB"]["baseline_seconds"]
        ratio = results["2GiB"]["seconds"] / baseline
        print(f"| same dump, baseline without the checks | {baseline:.2f} s |")
        print(f"| ratio | {ratio:.2f} (target: at most 1.5) |")
    for count in (0, 1_000, 5_000):
        print(f"| lab baseline + {count:,} sleeping threads | {results[f'threads_{count}']:.2f} s |")
    for count, value in per_thread.items():
        print(f"| cost per added thread ({count:,}) | {value * 1000:.2f} ms |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
