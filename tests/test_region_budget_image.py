"""A full image whose process holds tens of thousands of VADs costs the region budget, not the VAD count.

The budget is lowered through ``WMIFORENSICS_MAX_DETAILED_REGIONS`` so that the test stays fast; the real
budget (50,000) at real scale is measured by ``bench/bench_vad_flood.py``.
"""

from __future__ import annotations

import json
import time

from fixtures.winimage import build_image, default_processes
from fixtures.winimage.builder import wmiprvse_model
from fixtures.winimage.scenarios import free_allocation_base, plant_private_code, plant_vad_flood
from tests.conftest import run_vol
from wmiforensics.backends.bounds import REGION_BUDGET_ENV

BUILD = 19041
FLOOD = 60_000
BUDGET = 4_000


def test_vad_flood_in_a_full_image_keeps_executable_committed_vads_and_says_what_was_skipped(
    tmp_path, symbol_cache, monkeypatch
):
    model = wmiprvse_model(BUILD)
    processes = default_processes(BUILD, wmiprvse=model)  # the service hosts copy the unflooded model
    # The planted code sits above the flood: kept by rank, not by address.
    flood_end = plant_vad_flood(model, FLOOD)
    planted = plant_private_code(model, b"\xcc" * 64, base=free_allocation_base(model, 0x1000, flood_end))
    image = tmp_path / "image.raw"
    started = time.perf_counter()
    manifest = build_image(BUILD, [processes[0], processes[-1]], image)
    build_seconds = time.perf_counter() - started
    record = manifest.processes[-1]
    total = len(record.vads)
    executable = sum("EXECUTE" in vad.protection for vad in record.vads)
    assert total > FLOOD and executable > BUDGET

    monkeypatch.setenv(REGION_BUDGET_ENV, str(BUDGET))
    started = time.perf_counter()
    result = run_vol(image, "wmi.injection", "--pid", str(record.pid), symbols=symbol_cache, timeout=120)
    run_seconds = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    print(f"image with {total:,} VADs built in {build_seconds:.1f} s; wmi.injection ran {run_seconds:.1f} s")
    expected = (
        f"the VAD tree holds {total:,} VADs, more than the {BUDGET:,} examined in detail per process "
        f"(MAX_DETAILED_REGIONS): {total - BUDGET:,} VADs were skipped, {executable - BUDGET:,} of them "
        "executable"
    )
    assert expected in result.stderr
    assert result.stderr.count("(MAX_DETAILED_REGIONS)") == 1
    rows = json.loads(result.stdout)
    assert ("exec_rwx", planted.base) in {(row["Kind"], row["Start"]) for row in rows}
    # The modules' image VADs (executable, committed) were all kept: none is reported as unbacked.
    assert not [row for row in rows if row["Kind"] in ("module_unlisted", "module_no_image")]


def test_vads_past_the_budget_are_ranked_executable_then_committed_then_by_address():
    from wmiforensics.backends.vads import Vad, within_budget

    def vad(page: int, executable: bool, committed: bool) -> Vad:
        return Vad(page << 16, (page << 16) + 0x1000, 6 if executable else 4, 0, True, committed, 0)

    found = [vad(0, False, True), vad(1, True, False), vad(2, False, False), vad(3, True, True)]
    kept, note = within_budget(found, 2, lambda item: item.protection_index == 6, "(MARK)")
    assert kept == [found[1], found[3]]  # address order kept; both executable ones won
    assert note.endswith("findings and scans cover only the VADs kept")
    assert "holds 4 VADs, more than the 2 examined in detail per process (MARK): 2 VADs were skipped" in note
    assert "skipped, 0 of them executable" in note
    kept, note = within_budget(found, 1, lambda item: item.protection_index == 6, "(MARK)")
    assert kept == [found[3]] and "3 VADs were skipped, 1 of them executable" in note
    assert within_budget(found, 4, lambda item: True, "(MARK)") == (found, None)


def test_the_budget_environment_variable_is_bounded(monkeypatch):
    from wmiforensics.backends.bounds import MAX_DETAILED_REGIONS, detailed_region_budget

    monkeypatch.setenv(REGION_BUDGET_ENV, "1234")
    assert detailed_region_budget() == 1234
    for bad in ("0", "-5", "many", "99999999999", "1e6"):
        monkeypatch.setenv(REGION_BUDGET_ENV, bad)
        notes = []
        assert detailed_region_budget(notes) == MAX_DETAILED_REGIONS
        assert len(notes) == 1 and "is not a number from 1 to 10,000,000" in notes[0]
    monkeypatch.delenv(REGION_BUDGET_ENV)
    assert detailed_region_budget() == MAX_DETAILED_REGIONS


def test_volatility_vad_traversal_is_cut_and_its_deep_tree_refusal_is_a_note(monkeypatch):
    """The slow path (Volatility's traverse) stops at MAX_VADS while it runs, and its RuntimeError for
    trees deeper than 100 levels keeps the VADs read so far instead of ending the run."""
    from wmiforensics.backends import kernel, vads

    class Node:
        def __init__(self, index: int) -> None:
            self.start = 0x10000 * (index + 1)
            self.Protection = 4
            self.FirstPrototypePte = 0

        def get_start(self) -> int:
            return self.start

        def get_end(self) -> int:
            return self.start + 0xFFF

        def get_private_memory(self) -> int:
            return 1

        def has_member(self, _name: str) -> bool:
            return False

    class Process:
        def __init__(self, count: int, refuse: bool) -> None:
            self.count, self.refuse, self.produced = count, refuse, 0

        def get_vad_root(self):
            return self

        def traverse(self):
            for index in range(self.count):
                self.produced += 1
                yield Node(self.count - index)
            if self.refuse:
                raise RuntimeError("Vad tree is too deep")

    notes = []
    found = kernel._vads_by_volatility(Process(5, refuse=True), notes)
    assert [vad.start for vad in found] == sorted(vad.start for vad in found) and len(found) == 5
    assert notes == ["the VAD tree could not be walked completely (Vad tree is too deep); 5 VADs were read"]
    monkeypatch.setattr(vads, "MAX_VADS", 10)
    notes, endless = [], Process(10**9, refuse=False)
    assert len(kernel._vads_by_volatility(endless, notes)) == 10
    assert endless.produced == 11 and notes == ["more than 10 VADs: the rest are ignored"]
