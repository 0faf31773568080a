#!/usr/bin/env python3
"""ETW buffer recovery and decoding cost, and the full etl-parser comparison of the real files.

1. Decode the three real files in shared/etl (streamed buffer by buffer): records per second.
2. Compare every record of every buffer of all three files with PyPI etl-parser (the tests compare
   every buffer of the two small files and a spread of ShutdownPerfDiagLogger.etl's, for time).
3. Recovery scaling: standalone 19041 kernel memory with 250, 500 and 1,000 buffers planted in each of
   two loggers (8 KiB lxcore buffers and 64 KiB AMSI buffers, repeated); time to find, validate, read
   and decode all of them (in-process, no vol start-up; CPU time as well as wall time, since the
   machine is shared). Cost should grow linearly with buffers.

Run: ``python3 bench/bench_etw_buffers.py``; results go to stdout as Markdown.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from volatility3.framework import contexts  # noqa: E402

from fixtures.etw import build_etw_memory, load_kernel  # noqa: E402
from tests.etl_reference import ETL_DIR, ETL_FILES, normalise_ours, reference_buffer  # noqa: E402
from wmiforensics.etl.events import buffer_events  # noqa: E402
from wmiforensics.etl.logfile import iter_file_buffers  # noqa: E402
from wmiforensics.etw.buffers import BufferRecovery  # noqa: E402
from wmiforensics.etw.reader import EtwReader  # noqa: E402


def decode_files() -> None:
    print("| file | buffers | records | seconds | records/s |\n| --- | ---: | ---: | ---: | ---: |")
    for name in ETL_FILES:
        started = time.perf_counter()
        buffers = records = 0
        with open(ETL_DIR / name, "rb") as handle:
            for buffer in iter_file_buffers(handle):
                buffers += 1
                records += sum(1 for _ in buffer_events(buffer.data))
        seconds = time.perf_counter() - started
        print(f"| {name} | {buffers} | {records} | {seconds:.2f} | {records / seconds:,.0f} |")


def compare_files() -> None:
    print("\n| file | records compared with etl-parser | equal |\n| --- | ---: | --- |")
    for name in ETL_FILES:
        compared, equal = 0, True
        with open(ETL_DIR / name, "rb") as handle:
            for buffer in iter_file_buffers(handle):
                expected = reference_buffer(buffer.data[0x48 : buffer.header.saved_offset])
                ours = [normalise_ours(event) for event in buffer_events(buffer.data)]
                for row, reference in zip(ours, expected):
                    if "tracelogging" not in reference:
                        row.pop("tracelogging", None)
                equal = equal and ours == expected
                compared += len(ours)
        print(f"| {name} | {compared} | {'yes' if equal else 'NO'} |")


def recovery(per_logger: int) -> tuple:
    planting = {
        ("host", "EventLog-System"): ("lxcore_kernel.etl",) * (per_logger // 2),
        ("host", "EventLog-Application"): ("AMSITrace.etl",) * (per_logger // 5),
    }
    memory = build_etw_memory(19041, "clean", buffers=planting)
    context = contexts.Context()
    reader = EtwReader(context, load_kernel(context, 19041, memory, validate=False))
    silos = reader.silos()
    started, cpu = time.perf_counter(), time.process_time()
    buffers = events = 0
    for item in BufferRecovery(reader).loggers(silos):
        for buffer in item.buffers:
            buffers += 1
            events += sum(1 for _ in buffer_events(buffer.data)) if buffer.valid else 0
    return buffers, events, time.perf_counter() - started, time.process_time() - cpu


def main() -> int:
    decode_files()
    compare_files()
    print("\n| buffers per logger | buffers | events | wall s | CPU s | CPU ms per buffer |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for per_logger in (250, 500, 1000):
        buffers, events, wall, cpu = recovery(per_logger)
        per_buffer = 1000 * cpu / buffers
        print(f"| {per_logger} | {buffers} | {events} | {wall:.2f} | {cpu:.2f} | {per_buffer:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
