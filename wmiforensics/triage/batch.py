"""Triage many dumps on a Dask cluster and write findings.jsonl, dumps.jsonl and the reports.

The client hashes each input, skips sha256s that ``dumps.jsonl`` in the output folder already
records (resume), submits one task per remaining dump and writes every result as it arrives, so an
interrupted batch loses only the dumps in flight. A task that fails, or whose worker keeps dying
on it, becomes one error record; the rest of the batch goes on.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from ..errors import WmiForensicsError
from .dumps import describe, expand_inputs
from .records import dump_line, finding_lines, read_jsonl, severity_rank, write_jsonl
from .report import write_reports
from .worker import triage_dump, warm_up

FINDINGS = "findings.jsonl"
DUMPS = "dumps.jsonl"
#: Seconds to reach an existing scheduler, and then to see its first worker, before giving up.
CONNECT_TIMEOUT = 20


class ClusterError(WmiForensicsError):
    """The Dask cluster cannot run the batch (scheduler unreachable, no worker, suite not importable)."""


@dataclass
class BatchResult:
    """What the batch folder holds after the run (earlier, resumed runs included)."""

    out_dir: Path
    dumps: List[Dict[str, Any]] = field(default_factory=list)
    findings: List[Dict[str, Any]] = field(default_factory=list)
    ran: int = 0
    skipped: int = 0

    def worst_rank(self) -> int:
        return max((severity_rank(finding["severity"]) for finding in self.findings), default=-1)

    @property
    def errors(self) -> int:
        return sum(1 for dump in self.dumps if dump["status"] == "error")


class Progress:
    """One status line on stderr: dumps done, findings, errors."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.done, self.findings, self.errors = total, 0, 0, 0
        self.enabled = enabled
        self.tty = enabled and sys.stderr.isatty()

    def update(self, findings: int, error: bool) -> None:
        self.done += 1
        self.findings += findings
        self.errors += int(error)
        if not self.enabled:
            return
        width = 30
        filled = width * self.done // max(self.total, 1)
        line = (
            f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} dumps  "
            f"{self.findings} findings  {self.errors} errors"
        )
        if self.tty:
            sys.stderr.write("\r" + line + ("\n" if self.done == self.total else ""))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()


def _error_record(path: str, sha256: str, error: BaseException) -> Dict[str, Any]:
    message = str(error) or type(error).__name__
    if type(error).__name__ == "KilledWorker":
        message = "the worker running this dump died repeatedly (crash or out of memory)"
    return {"dump": path, "sha256": sha256, "status": "error", "error": message, "plugins": {}}


def _resume(out_dir: Path) -> Dict[str, Dict[str, Any]]:
    """Dumps already done, by sha256; findings of dumps without a dump line (cut off) are dropped."""
    done = {line["sha256"]: line for line in read_jsonl(out_dir / DUMPS) if "sha256" in line}
    findings_path = out_dir / FINDINGS
    kept = [line for line in read_jsonl(findings_path) if line.get("sha256") in done]
    with open(findings_path, "w", encoding="utf-8") as handle:
        write_jsonl(handle, kept)
    with open(out_dir / DUMPS, "w", encoding="utf-8") as handle:
        write_jsonl(handle, done.values())
    return done


def start_client(workers: int = 2, scheduler: Optional[str] = None, connect_timeout: float = CONNECT_TIMEOUT):
    """A client of ``scheduler``, or of a new LocalCluster of ``workers`` single-threaded processes.

    An existing scheduler must answer, and have a worker, within ``connect_timeout`` seconds;
    otherwise a :class:`ClusterError` says so in one line (Dask would retry, then raise a traceback).
    """
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout=connect_timeout)
        except (OSError, TimeoutError, ValueError) as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ClusterError(
                f"cannot reach the Dask scheduler at {scheduler} within {connect_timeout:g} s ({reason})"
            ) from None
        try:
            client.wait_for_workers(1, timeout=connect_timeout)
        except (OSError, TimeoutError):
            client.close()
            raise ClusterError(
                f"the Dask scheduler at {scheduler} has no worker after {connect_timeout:g} s"
            ) from None
        return client
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    return Client(cluster)


def _warm_up_workers(client) -> None:
    """Import Volatility and the suite on every worker, or end the run saying which worker cannot."""
    try:
        found = client.run(warm_up)
    except Exception as error:  # raised on a worker: a module it cannot import, a broken install
        raise ClusterError(
            "a Dask worker cannot run the suite (install wmi-forensics, or put it on PYTHONPATH, "
            f"on every worker): {type(error).__name__}: {error}"
        ) from None
    empty = sorted(address for address, plugins in found.items() if not plugins)
    if empty:
        raise ClusterError(f"Dask workers {', '.join(empty)} find none of the suite's plugins")


def run_batch(
    inputs: Sequence[str],
    out_dir: Path,
    *,
    client=None,
    workers: int = 2,
    scheduler: Optional[str] = None,
    connect_timeout: float = CONNECT_TIMEOUT,
    plugins: Optional[Sequence[str]] = None,
    options: Optional[Dict[str, Dict[str, Any]]] = None,
    symbol_dirs: Sequence[str] = (),
    offline: bool = True,
    progress: bool = True,
    on_result: Optional[Callable[[Dict[str, Any]], None]] = None,
) -> BatchResult:
    """Triage ``inputs`` (files, folders, globs) into ``out_dir``; see the module docstring.

    Paths go to the workers absolute (inputs and symbol folders are resolved here, on the client),
    so workers started in another folder, or on another host sharing the files, find them.
    """
    from dask.distributed import as_completed

    symbol_dirs = [str(Path(folder).resolve()) for folder in symbol_dirs if folder]
    out_dir.mkdir(parents=True, exist_ok=True)
    done = _resume(out_dir)
    result = BatchResult(out_dir)
    pending: Dict[str, str] = {}
    for path in expand_inputs(inputs):
        try:
            described = describe(path)
        except OSError as error:
            pending_error = {"dump": path, "sha256": "", "status": "error", "plugins": {}}
            pending_error["error"] = f"{path}: {error.strerror or error}"
            with open(out_dir / DUMPS, "a", encoding="utf-8") as handle:
                write_jsonl(handle, [dump_line(pending_error, [])])
            continue
        if described.sha256 in done or described.sha256 in pending.values():
            result.skipped += 1
            continue
        pending[path] = described.sha256

    own_client = client is None and bool(pending)
    if own_client:
        client = start_client(workers, scheduler, connect_timeout)
    bar = Progress(len(pending), progress)
    try:
        if pending:
            _warm_up_workers(client)
            futures = {
                client.submit(
                    triage_dump,
                    path,
                    sha256,
                    plugins,
                    options,
                    symbol_dirs,
                    offline,
                    key=f"triage-{sha256}",
                    pure=False,
                ): (path, sha256)
                for path, sha256 in pending.items()
            }
            with (
                open(out_dir / FINDINGS, "a", encoding="utf-8") as findings_file,
                open(out_dir / DUMPS, "a", encoding="utf-8") as dumps_file,
            ):
                for future in as_completed(futures):
                    path, sha256 = futures[future]
                    try:
                        record = future.result()
                    except Exception as error:  # KilledWorker, a worker-side crash: one record
                        record = _error_record(path, sha256, error)
                    findings = list(finding_lines(record))
                    write_jsonl(findings_file, findings)
                    write_jsonl(dumps_file, [dump_line(record, findings)])
                    result.ran += 1
                    bar.update(len(findings), record["status"] == "error")
                    if on_result:
                        on_result(record)
    finally:
        if own_client:
            cluster = client.cluster
            client.close()
            if cluster is not None:
                cluster.close()
    result.dumps = read_jsonl(out_dir / DUMPS)
    result.findings = read_jsonl(out_dir / FINDINGS)
    write_reports(out_dir, result.dumps, result.findings)
    return result
