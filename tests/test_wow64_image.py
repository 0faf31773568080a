"""WOW64 processes in a full image: the native PEB's and the PEB32's loader lists are checked separately."""

from __future__ import annotations

import dataclasses
import json

from fixtures.labdump.model import Module
from fixtures.labdump.scenarios import apply_scenario
from fixtures.winimage import build_image, default_processes
from fixtures.winimage.builder import wmiprvse_model
from fixtures.winimage.isf import kernel_isf
from fixtures.winimage.userland import LDR32_LISTS, add_wow64_environment
from tests.conftest import run_vol

BUILD = 19041
MODULES32 = [
    (0x00F60000, 0x14000, "C:\\Windows\\SysWOW64\\wbem\\WmiPrvSE.exe"),
    (0x77A40000, 0x1A4000, "C:\\Windows\\SysWOW64\\ntdll.dll"),
    (0x76F10000, 0xF0000, "C:\\Windows\\SysWOW64\\kernel32.dll"),
]


def test_cut_loader_lists_of_the_wow64_peb32_are_noted_and_rank_unlisted_images_down(tmp_path, symbol_cache):
    model = wmiprvse_model(BUILD)
    (unlisted,) = apply_scenario(model, "unlisted_image")
    processes = default_processes(BUILD, wmiprvse=model)
    # The image builder maps MEM_IMAGE memory as a section of a known module: name the unlisted
    # image's section (the PEB lists, already written, still do not name it).
    regions = [region for region in model.sorted_regions() if region.allocation_base == unlisted.start]
    image_bytes = b"".join(region.read(0, region.size) for region in regions)
    path = "C:\\Windows\\System32\\amsi.dll"
    model.modules.append(Module(path, unlisted.start, unlisted.end - unlisted.start, image=image_bytes))
    # Every 32-bit list loops back to its first entry; the native lists stay whole.
    peb32 = add_wow64_environment(model, kernel_isf(BUILD), MODULES32, looping=tuple(LDR32_LISTS))
    image = tmp_path / "image.raw"
    build_image(BUILD, [processes[0], dataclasses.replace(processes[-1], wow64_peb=peb32)], image)

    result = run_vol(image, "wmi.injection", "--min-severity", "info", symbols=symbol_cache)
    assert result.returncode == 0, result.stderr
    for name in LDR32_LISTS:
        assert f"{name} of the WOW64 PEB32 is cut after 3 entries" in result.stderr
        assert f"{name} is cut" not in result.stderr  # the native walk returned to its own head
    rows = json.loads(result.stdout)
    found = [row for row in rows if row["Kind"] == "module_unlisted" and row["Start"] == unlisted.start]
    assert len(found) == 1
    assert found[0]["Confidence"] == "low"
    assert "all three loader lists of the WOW64 PEB32 are cut short" in found[0]["RankedDown"]
