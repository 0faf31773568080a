"""One missing-value convention across plugins, and --pid/--name honoured on a minidump."""

from __future__ import annotations

import pytest

from tests.conftest import EXAMPLE_DUMP
from wmiforensics.runtime import RunDirectory
from wmiforensics.triage.runner import run_plugin

MINIDUMP_PLUGINS = (
    "wmi.dumpinfo",
    "wmi.regions",
    "wmi.modules",
    "wmi.threads",
    "wmi.handles",
    "wmi.injection",
    "wmi.yarascan",
)
LAB_PID = 12404


@pytest.fixture(scope="module")
def run_dir():
    with RunDirectory.create() as run:
        yield run


def run(run_dir, plugin, options=None):
    return run_plugin(
        EXAMPLE_DUMP, plugin, options, cache_path=run_dir.cache_path, symbol_dirs=run_dir.symbol_dirs([])
    )


def values(rows):
    for row in rows:
        for key, value in row.items():
            if key == "__children":
                yield from values(value)
            else:
                yield value


@pytest.mark.parametrize("plugin", MINIDUMP_PLUGINS)
def test_missing_values_are_null_never_a_dash(run_dir, plugin):
    result = run(run_dir, plugin)
    assert result.error is None and result.rows
    found = list(values(result.rows))
    assert "-" not in found and "N/A" not in found
    if plugin in ("wmi.injection", "wmi.regions"):
        assert None in found  # rows without evidence, dumps or a module report null


@pytest.mark.parametrize("plugin", ("wmi.injection", "wmi.yarascan"))
def test_pid_and_name_select_the_minidump_process_or_refuse(run_dir, plugin):
    everything = run(run_dir, plugin).rows
    assert run(run_dir, plugin, {"pid": [LAB_PID]}).rows == everything
    assert run(run_dir, plugin, {"name": ["wmiprvse.exe"]}).rows == everything
    refused = run(run_dir, plugin, {"pid": [4], "name": ["lsass.exe"]})
    assert refused.rows == [] and refused.error == (
        f"{EXAMPLE_DUMP}: a process minidump holds one process, WmiPrvSE.exe (PID {LAB_PID}); "
        "--pid 4, --name lsass.exe selects none of it"
    )
