"""``triage`` on a real Dask LocalCluster of two worker processes.

Rows must equal what ``vol -r json`` prints for the same dump and plugin; a hostile file costs one
error record; a second run over the same folder skips what is done; killing a worker that is busy
still completes the batch (Dask reschedules its task on the other worker).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixtures.labdump import write_minidump
from fixtures.labdump.scenarios import build_scenario
from tests.conftest import REPO, vol_json
from wmiforensics.cli import main
from wmiforensics.triage.batch import run_batch, start_client
from wmiforensics.triage.records import ADDED_FIELDS, SEVERITIES


def lab_dump(folder: Path, name: str, scenario: str, seed: int = 0) -> Path:
    model, _planted = build_scenario(scenario, seed=seed)
    path = folder / name
    with open(path, "wb") as out:
        write_minidump(model, out)
    return path


@pytest.fixture(scope="module")
def client():
    client = start_client(workers=2)
    yield client
    cluster = client.cluster
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fleet")
    lab_dump(folder, "host-a.dmp", "lab_example")
    lab_dump(folder, "evil<script>.dmp", "shellcode_thread")
    (folder / "host-c.dmp").write_bytes(b"MDMP" + b"\xff" * 60)  # a directory that points nowhere
    return folder


def as_vol_rows(findings: list, dump: Path, plugin: str) -> list:
    rows = [line for line in findings if line["dump"] == str(dump) and line["plugin"] == plugin]
    return [{"__children": [], **{k: v for k, v in row.items() if k not in ADDED_FIELDS}} for row in rows]


def test_triage_equals_vol_and_isolates_a_bad_dump(client, fleet, tmp_path):
    out = tmp_path / "out"
    result = run_batch([str(fleet)], out, client=client, progress=False)
    by_name = {Path(dump["dump"]).name: dump for dump in result.dumps}
    assert set(by_name) == {"host-a.dmp", "evil<script>.dmp", "host-c.dmp"}
    assert by_name["host-c.dmp"]["status"] == "error" and by_name["host-c.dmp"]["error"]
    assert by_name["host-a.dmp"]["status"] == "ok" and by_name["host-a.dmp"]["worst"] == "critical"
    for name, plugins in (
        ("host-a.dmp", ("wmi.injection", "wmi.yarascan")),
        ("evil<script>.dmp", ("wmi.injection",)),
    ):
        dump = fleet / name
        for plugin in plugins:
            expected = vol_json(dump, plugin)
            assert expected and as_vol_rows(result.findings, dump, plugin) == expected, (name, plugin)
    for line in result.findings:  # Timesketch's required fields
        assert line["message"] and line["timestamp_desc"] == "Minidump written"
        assert line["datetime"].endswith("+00:00") and line["severity"] in SEVERITIES

    html = (out / "report.html").read_text()
    assert "evil<script>" not in html and "evil&lt;script&gt;.dmp" in html
    ranked = [
        line for line in (out / "report.md").read_text().splitlines() if line.startswith("| critical |")
    ]
    assert "host-a.dmp" in ranked[0]
    for line in result.findings:
        assert f"id='{line['finding_id']}'" in html and f"href='#{line['finding_id']}'" in html

    again = run_batch([str(fleet)], out, client=client, progress=False)
    assert (again.ran, again.skipped) == (0, 3)
    assert again.findings == result.findings


def test_killing_a_busy_worker_still_completes_the_batch(client, tmp_path):
    folder = tmp_path / "dumps"
    folder.mkdir()
    for seed in range(4):
        lab_dump(folder, f"host-{seed}.dmp", "reflective_dll", seed=seed)
    killed = []

    def kill_a_busy_worker(_record):
        if killed:
            return
        busy = [address for address, keys in client.processing().items() if keys]
        if busy:
            pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    result = run_batch(
        [str(folder)], tmp_path / "out", client=client, progress=False, on_result=kill_a_busy_worker
    )
    assert killed, "no worker was busy after the first result"
    assert [dump["status"] for dump in result.dumps] == ["ok"] * 4
    assert all(dump["by_severity"]["critical"] >= 1 for dump in result.dumps)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, log: Path, deadline: float) -> None:
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text(errors="replace")[-2000:]
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after the start-up wait")


@contextlib.contextmanager
def dask_processes(folder: Path, workers: int, python_path: str):
    """A ``dask scheduler`` and ``workers`` ``dask worker`` processes on 127.0.0.1, always torn down.

    The workers find the suite through ``python_path`` only and run in ``folder``, not in the
    client's working folder; their temporary folder is ``folder/tmp``. Yields the scheduler address.
    """
    temporary = folder / "tmp"
    temporary.mkdir()
    env = dict(os.environ, PYTHONPATH=python_path, PYTHONWARNINGS="ignore", TMPDIR=str(temporary))
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1"]
    scheduler += ["--port", str(port), "--dashboard-address", ":0", "--no-show"]
    log_path = folder / "cluster.log"  # a file, not a pipe: a full pipe would block the processes
    with open(log_path, "wb") as log:
        processes = [subprocess.Popen(scheduler, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)]
        try:
            wait_for_port(port, processes[0], log_path, time.monotonic() + 60)
            for index in range(workers):
                worker = [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1"]
                worker += ["--no-dashboard", "--local-directory", str(folder / f"worker-{index}")]
                processes.append(
                    subprocess.Popen(worker, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
                )
            yield address
        finally:
            for process in reversed(processes):
                process.terminate()
            for process in reversed(processes):
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


@pytest.fixture(scope="module")
def separate_cluster(tmp_path_factory):
    """Two workers with the suite on PYTHONPATH; none may leave its private run folder behind."""
    folder = tmp_path_factory.mktemp("cluster")
    with dask_processes(folder, 2, str(REPO)) as address:
        yield address, folder
    assert not list(folder.rglob("wmi-forensics-run-*")), "a worker left its run folder behind"


def test_an_existing_cluster_gives_the_local_clusters_findings(
    client, separate_cluster, tmp_path, monkeypatch
):
    """``triage --scheduler`` on a scheduler and workers started apart, with paths relative to the client."""
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    lab_dump(fleet, "host-a.dmp", "lab_example")
    lab_dump(fleet, "host-b.dmp", "shellcode_thread")
    lab_dump(fleet, "host-c.dmp", "reflective_dll", seed=3)
    (fleet / "broken.dmp").write_bytes(b"MDMP" + b"\xff" * 60)
    local = run_batch([str(fleet)], tmp_path / "local", client=client, progress=False)

    address, cluster_folder = separate_cluster
    monkeypatch.chdir(tmp_path)  # the workers run in another folder: relative inputs must still work
    status = main(["triage", "fleet", "--out", "remote", "--scheduler", address, "--quiet"])
    assert status == 1  # critical findings
    remote = run_batch(["fleet"], tmp_path / "remote", progress=False, scheduler=address)
    assert (remote.ran, remote.skipped) == (0, 4)  # all done by the command above

    def comparable(findings):
        return sorted(
            (Path(line["dump"]).name, line["plugin"], line["kind"], line["severity"], line["message"])
            for line in findings
        )

    assert comparable(remote.findings) == comparable(local.findings) and len(local.findings) >= 10
    statuses = {Path(dump["dump"]).name: dump["status"] for dump in remote.dumps}
    assert statuses == {Path(dump["dump"]).name: dump["status"] for dump in local.dumps}
    assert statuses["broken.dmp"] == "error" and statuses["host-a.dmp"] == "ok"
    # each worker's private cache and symbol folder lives in its Dask scratch folder (removed with it)
    assert len(list(cluster_folder.glob("worker-*/**/wmi-forensics-run-*/cache"))) == 2


def test_an_unreachable_scheduler_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "a.dmp").write_bytes(b"MDMP" + b"\0" * 60)
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    status = main(
        [
            "triage",
            str(tmp_path),
            "--out",
            str(tmp_path / "out"),
            "--scheduler",
            address,
            "--connect-timeout",
            "2",
            "--quiet",
        ]
    )
    elapsed = time.monotonic() - started
    error = capsys.readouterr().err.strip()
    assert status == 2 and elapsed < 30
    assert error.startswith(f"wmi-forensics: error: cannot reach the Dask scheduler at {address} within 2 s")
    assert "\n" not in error and "Traceback" not in error


def test_workers_that_cannot_import_the_suite_end_the_run_in_one_line(tmp_path, capsys):
    shadow = tmp_path / "shadow" / "wmiforensics"  # first on the workers' path, it hides the suite
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('wmi-forensics is not installed on this host')\n")
    (tmp_path / "a.dmp").write_bytes(b"MDMP" + b"\0" * 60)
    with dask_processes(tmp_path, 1, str(shadow.parent)) as address:
        status = main(
            ["triage", str(tmp_path / "a.dmp"), "--out", str(tmp_path / "out")]
            + ["--scheduler", address, "--quiet"]
        )
    error = capsys.readouterr().err.strip()
    assert status == 2 and "\n" not in error and "Traceback" not in error
    assert error.startswith("wmi-forensics: error: a Dask worker cannot run the suite")
    assert "wmi-forensics is not installed on this host" in error
