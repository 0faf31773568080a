"""``triage`` on a real Dask LocalCluster of two worker processes.

Rows must equal what ``vol -r json`` prints for the same dump and plugin; a hostile file costs one
error record; a second run over the same folder skips what is done; killing a worker that is busy
still completes the batch (Dask reschedules its task on the other worker).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from fixtures.labdump import write_minidump
from fixtures.labdump.scenarios import build_scenario
from tests.conftest import vol_json
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
