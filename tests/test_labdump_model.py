"""The process model: validation, lazy content, and planting an attack into the clean baseline."""

from __future__ import annotations

import io

import pytest

from fixtures.labdump import (
    Module,
    Region,
    RepeatingPattern,
    Thread,
    build_wmiprvse,
    write_minidump,
)
from fixtures.labdump.codegen import ImageBuilder
from fixtures.labdump.constants import (
    MEM_COMMIT,
    MEM_IMAGE,
    MEM_PRIVATE,
    MEM_RESERVE,
    PAGE_EXECUTE_READWRITE,
    PAGE_GUARD,
    PAGE_READWRITE,
)


def _minidump_file():
    """The PyPI minidump package's reader class, or a skip when the package is missing."""
    module = pytest.importorskip("minidump.minidumpfile", reason="needs the PyPI minidump package (0.0.24)")
    return module.MinidumpFile


def _dump(proc):
    out = io.BytesIO()
    write_minidump(proc, out)
    return _minidump_file().parse_bytes(out.getvalue())


def test_baseline_counts_and_x86_address_limits():
    x64 = build_wmiprvse("x64", 19045, 0)
    x86 = build_wmiprvse("x86", 22631, 0)
    for proc in (x64, x86):
        assert len(proc.modules) == 20
        assert 4 <= len(proc.threads) <= 6
        assert len(proc.handles) >= 20
        for thread in proc.threads:
            assert proc.region_at(thread.start_address).type == MEM_IMAGE
            assert proc.region_at(thread.instruction_pointer).label == "ntdll.dll"
            stack = proc.region_at(thread.stack_pointer)
            assert stack.captured and stack.protect == PAGE_READWRITE
            guard = proc.region_at(thread.stack_limit - 1)
            assert guard.protect == PAGE_READWRITE | PAGE_GUARD and not guard.captured
    assert x64.module("ntdll.dll").base >> 40 == 0x7F
    limit = 0x8000_0000
    assert all(r.end <= limit for r in x86.regions)
    assert all(m.end <= limit for m in x86.modules)
    assert all(t.teb < limit and t.start_address < limit for t in x86.threads)


def test_overlapping_and_malformed_regions_are_rejected():
    proc = build_wmiprvse("x64", 19045, 0)
    ntdll = proc.module("ntdll.dll")
    proc.add_region(Region(ntdll.base + 0x1000, 0x1000, protect=PAGE_READWRITE, allocation_base=ntdll.base))
    with pytest.raises(ValueError, match="overlap"):
        write_minidump(proc, io.BytesIO())
    with pytest.raises(ValueError, match="whole number of pages"):
        Region(0x10000, 0x800)
    with pytest.raises(ValueError, match="only committed memory"):
        Region(0x10000, 0x1000, state=MEM_RESERVE, captured=True)


def test_lazy_content_must_return_the_requested_length():
    proc = build_wmiprvse("x64", 19045, 0)
    proc.add_region(
        Region(0x10_0000_0000, 0x2000, protect=PAGE_READWRITE, content=lambda offset, length: b"x")
    )
    with pytest.raises(ValueError, match="returned 1 bytes"):
        write_minidump(proc, io.BytesIO())


def test_repeating_pattern_continues_across_chunk_boundaries():
    pattern = RepeatingPattern(b"abc")
    assert pattern(0, 7) == b"abcabca"
    assert pattern(2, 5) == b"cabca"
    assert pattern(3, 0) == b""
    region = Region(0x20000, 0x1000, protect=PAGE_READWRITE, content=pattern)
    assert region.read(0xFFE, 2) == (b"abc" * 0x600)[0xFFE:0x1000]


def test_planted_attack_shows_up_in_an_independent_reader():
    proc = build_wmiprvse("x64", 19045, 0)

    # Patch EtwEventWrite to return at once: xor eax, eax; ret.
    etw = proc.address_of("ntdll.dll", "EtwEventWrite")
    proc.write(etw, bytes.fromhex("4833C0C3"))

    # Shellcode in private RWX memory and a thread that starts there.
    shellcode_base = 0x0000_01F0_0000_0000
    shellcode = bytes.fromhex("FC4883E4F0E8C0000000") + b"\x90" * 16
    proc.add_region(
        Region(
            shellcode_base,
            0x1000,
            state=MEM_COMMIT,
            protect=PAGE_EXECUTE_READWRITE,
            allocation_base=shellcode_base,
            allocation_protect=PAGE_EXECUTE_READWRITE,
            type=MEM_PRIVATE,
            content=shellcode,
            label="shellcode",
        )
    )
    worker = proc.threads[1]
    proc.threads.append(
        Thread(
            thread_id=0x1F00,
            teb=worker.teb,
            stack_base=worker.stack_base,
            stack_limit=worker.stack_limit,
            start_address=shellcode_base,
            instruction_pointer=shellcode_base + 10,
            stack_pointer=worker.stack_pointer,
        )
    )

    # A fake wbemcore.dll loaded from ProgramData.
    fake_base = 0x7FF7_1000_0000
    builder = ImageBuilder("wbemcore.dll", "x64", fake_base, 0x8000, resolve=lambda target: 0)
    builder.function("DllGetClassObject", [])
    image = builder.link()
    proc.add_module(
        Module(
            path="C:\\ProgramData\\wbemcore.dll",
            base=fake_base,
            size=image.size_of_image,
            checksum=image.checksum,
            timestamp=image.timestamp,
            image=image.data,
            exports=image.exports,
        ),
        image.protection_runs(),
    )

    parsed = _dump(proc)
    reader = parsed.get_reader()
    assert reader.read(etw, 4) == bytes.fromhex("4833C0C3")
    assert reader.read(shellcode_base, len(shellcode)) == shellcode
    rwx = [info for info in parsed.memory_info.infos if info.BaseAddress == shellcode_base]
    assert rwx[0].Protect.value == PAGE_EXECUTE_READWRITE and rwx[0].Type.value == MEM_PRIVATE
    assert parsed.thread_info.infos[-1].StartAddress == shellcode_base
    assert parsed.threads.threads[-1].ContextObject.Rip == shellcode_base + 10
    fake = [m for m in parsed.modules.modules if m.name == "C:\\ProgramData\\wbemcore.dll"]
    assert fake and fake[0].baseaddress == fake_base
    assert reader.read(fake_base + image.exports["DllGetClassObject"], 5) == bytes.fromhex("48895C2408")
