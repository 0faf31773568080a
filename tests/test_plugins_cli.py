"""The inspection plugins through ``vol`` itself: every renderer, real dumps, clear failures."""

from __future__ import annotations

import csv
import io

import pytest

from tests.conftest import EXAMPLE_DUMP, real_dump, run_vol, vol_json
from wmiforensics.minidump import Minidump

PLUGINS = ["wmi.dumpinfo", "wmi.regions", "wmi.modules", "wmi.threads", "wmi.handles"]


def test_modules_and_threads_json_match_the_reader():
    path = real_dump("breakpad/tiny-exe-fastfail.dmp")
    with Minidump.open(path) as dump:
        modules = vol_json(path, "wmi.modules")
        assert [(row["Base"], row["Name"]) for row in modules] == [(m.base, m.name) for m in dump.modules]
        threads = vol_json(path, "wmi.threads")
        assert [(row["TID"], row["InstructionPointer"]) for row in threads] == [
            (t.thread_id, t.instruction_pointer) for t in dump.threads
        ]
        assert threads[1]["IpLocation"] == "ntdll.dll+0xa0994"


def test_dumpinfo_reports_process_and_system():
    rows = vol_json(real_dump("breakpad/tiny-exe-fastfail.dmp"), "wmi.dumpinfo")
    values = {row["Item"]: row["Value"] for row in rows}
    assert values["Process ID"] == "41996"
    assert values["Image"] == "D:\\chromium\\src\\out\\release\\tiny.exe"
    assert values["Windows version"] == "10.0.19042"
    assert values["Architecture"] == "x64"
    assert values["Exception"] == "code 0xC0000409 at 0x7ff75355af42 in thread 24440"


@pytest.mark.parametrize("plugin", PLUGINS)
def test_every_plugin_renders_csv(plugin):
    result = run_vol(real_dump("breakpad/thread_name_list.dmp"), plugin, renderer="csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0][0] == "TreeDepth"
    if plugin != "wmi.handles":  # Breakpad writes no HandleData
        assert len(rows) > 1


def test_thread_names_stream_is_shown():
    threads = vol_json(real_dump("breakpad/thread_name_list.dmp"), "wmi.threads")
    assert any(row["Name"] not in (None, "-") for row in threads)


@pytest.mark.parametrize(
    ("dump", "message"),
    [
        ("rust-minidump/linux-mini.dmp", "was written on Linux (PlatformId 0x8201"),
        ("rust-minidump/simple-crashpad.dmp", "was written on macOS"),
        ("rust-minidump/invalid-range.dmp", "no usable data in this minidump"),
        ("rust-minidump/invalid-record-count.dmp", "no usable data in this minidump"),
    ],
)
def test_refused_dumps_end_in_one_clear_line(dump, message):
    result = run_vol(real_dump(dump), "wmi.dumpinfo")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("wmi-forensics: error:")]
    assert len(errors) == 1 and message in errors[0]
    assert "Traceback" not in result.stderr


def test_truncated_header_is_explained(tmp_path):
    broken = tmp_path / "cut.dmp"
    broken.write_bytes(b"MDMP\x93\xa7\x00\x00\x05")
    result = run_vol(broken, "wmi.modules")
    assert result.returncode == 2
    assert "cut.dmp: truncated minidump: the file is 9 bytes" in result.stderr
    assert "Traceback" not in result.stderr


def test_kernel_crash_dump_is_not_taken_for_a_minidump(tmp_path):
    other = tmp_path / "memory.dmp"
    other.write_bytes(b"PAGEDU64" + bytes(8192))
    result = run_vol(other, "wmi.dumpinfo")
    assert result.returncode == 2
    assert "reads Windows process minidumps" in result.stderr
    assert "Traceback" not in result.stderr


def test_exception_reports_the_faulting_context_ip():
    with Minidump.open(real_dump("rust-minidump/test.dmp")) as dump:
        assert dump.exception.thread_id == 3060
        assert dump.exception.context_ip == 0x40429E
        faulting = next(t for t in dump.threads if t.thread_id == 3060)
        assert faulting.instruction_pointer == 0x7C90EB94  # the handler's state when the dump was written


def test_lab_dump_listings():
    modules = vol_json(EXAMPLE_DUMP, "wmi.modules")
    with Minidump.open(EXAMPLE_DUMP) as dump:
        assert [row["Name"] for row in modules if not row["Loaded"]] == [
            m.name for m in dump.unloaded_modules
        ]
        assert len(dump.unloaded_modules) == 2
        files = vol_json(EXAMPLE_DUMP, "wmi.handles", "--type", "File")
        assert files and {row["Type"] for row in files} == {"File"}
        assert len(files) == sum(1 for h in dump.handles if h.type_name == "File")
        regions = vol_json(EXAMPLE_DUMP, "wmi.regions")
        free = vol_json(EXAMPLE_DUMP, "wmi.regions", "--include-free")
        assert len(free) == len(dump.memory_info) > len(regions)
        image_rows = [row for row in regions if row["Type"] == "MEM_IMAGE"]
        assert image_rows and all(row["Module"] != "-" for row in image_rows)


def test_wow64_dump_is_recognised():
    from tests import mdmp_bytes as mb
    from wmiforensics.minidump import BytesSource

    names = [
        "C:\\Windows\\SysWOW64\\app.exe",
        "C:\\Windows\\System32\\wow64.dll",
        "C:\\Windows\\System32\\ntdll.dll",
    ]
    dump = mb.Dump([mb.Stream(mb.SYSTEM_INFO, mb.system_info(arch=9)), mb.Stream(mb.MODULE_LIST, b"")])
    listing = mb.module_list([(0x400000 + i * 0x100000, 0x1000, 0) for i in range(len(names))])
    strings_at = 32 + 24 + 56 + len(listing)
    rvas, blob = [], b""
    for name in names:
        rvas.append(strings_at + len(blob))
        blob += mb.minidump_string(name)
    dump.streams[1].data = mb.module_list(
        [(0x400000 + i * 0x100000, 0x1000, rva) for i, rva in enumerate(rvas)]
    )
    dump.tail = blob
    parsed = Minidump(BytesSource(dump.build()), name="wow.dmp")
    assert parsed.arch == "x64" and parsed.is_wow64
    from wmiforensics.vol.inspection import summary_rows

    values = {row[1][1]: row[1][2] for row in summary_rows(parsed, 0)}
    assert values["Architecture"] == "x64 (WOW64: 32-bit process in a 64-bit dump)"
