"""The task a triage worker runs for one dump: the scan's plugins, in-process, each failure contained."""

from __future__ import annotations

import atexit
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from ..runtime import RunDirectory
from ..suite import scan_plugins
from .dumps import capture_time, is_minidump
from .runner import available_plugins, run_plugin

_RUN_DIRECTORY: Optional[RunDirectory] = None


def _dask_worker_directory(dask_worker=None) -> Optional[Path]:
    """The scratch folder of the Dask worker running this code, or None outside a worker.

    A task finds its worker with ``get_worker()``; a function run by ``Client.run`` is handed it
    as ``dask_worker`` instead.
    """
    try:
        if dask_worker is None:
            from distributed import get_worker

            dask_worker = get_worker()
        return Path(dask_worker.local_directory)
    except (ImportError, ValueError, AttributeError):
        return None


def _run_directory(dask_worker=None) -> RunDirectory:
    """One private cache and symbol folder per worker process, removed when the process ends.

    Inside a Dask worker it lives in the worker's scratch folder: a worker process that is closed
    by its nanny, or killed, does not run ``atexit`` handlers, but Dask removes the folder of a
    worker that closes and purges those of dead workers when the next one starts.
    """
    global _RUN_DIRECTORY
    if _RUN_DIRECTORY is None:
        _RUN_DIRECTORY = RunDirectory.create(parent=_dask_worker_directory(dask_worker))
        atexit.register(_RUN_DIRECTORY.close)
    return _RUN_DIRECTORY


def warm_up(dask_worker=None) -> List[str]:
    """Import Volatility and the suite's plugins in this worker; returns the plugins it found.

    ``Client.run`` passes the worker as ``dask_worker``; its run directory goes into the worker's folder.
    """
    _run_directory(dask_worker)
    return sorted(available_plugins())


def triage_dump(
    path: str,
    sha256: str,
    plugins: Optional[Sequence[str]] = None,
    options: Optional[Dict[str, Dict[str, Any]]] = None,
    symbol_dirs: Sequence[str] = (),
    offline: bool = True,
) -> Dict[str, Any]:
    """Run the plugins on one dump and return everything the outputs need (plain data, picklable).

    ``plugins`` defaults to the scan's list (:func:`wmiforensics.suite.scan_plugins`) for the dump's
    kind. ``options`` maps a plugin name to its Volatility options (``{"wmi.injection": {"pid": [4]}}``).
    """
    started = time.monotonic()
    record: Dict[str, Any] = {"dump": path, "sha256": sha256, "plugins": {}}
    try:
        minidump = is_minidump(path)
        when, described = capture_time(path)
    except OSError as error:
        record.update(status="error", error=f"{path}: {error.strerror or error}", kind="unreadable")
        record["duration"] = round(time.monotonic() - started, 3)
        return record
    record["kind"] = "minidump" if minidump else "image"
    record["datetime"] = when.isoformat() if when else None
    record["timestamp_desc"] = described
    chosen = list(plugins) if plugins else scan_plugins(available_plugins(), full_image=not minidump)
    run = _run_directory()
    for name in chosen:
        result = run_plugin(
            Path(path),
            name,
            (options or {}).get(name),
            cache_path=run.cache_path,
            symbol_dirs=run.symbol_dirs(symbol_dirs),
            offline=offline,
        )
        record["plugins"][name] = {"rows": result.rows, "error": result.error, "notes": result.notes}
    errors = [name for name, result in record["plugins"].items() if result["error"]]
    if not chosen or len(errors) == len(chosen):
        record["status"] = "error"
        record["error"] = "; ".join(record["plugins"][name]["error"] for name in errors) or "no plugin to run"
    else:
        record["status"] = "partial" if errors else "ok"
    record["duration"] = round(time.monotonic() - started, 3)
    return record
