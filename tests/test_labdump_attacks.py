"""Planted attacks are really in the dump file, as readers this project did not write see them.

Every scenario is written to disk and read back with the PyPI ``minidump`` package; PE images are
parsed with ``pefile`` from bytes read out of the dump and code is decoded with ``capstone``. Export
addresses come from ntdll's and advapi32's export tables read back from the dump, PEB loader lists are
walked with the structure offsets of the public symbols, never through the lab model.
"""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import capstone
import pefile
import pytest

from fixtures.labdump import (
    SCENARIOS,
    Planted,
    build_scenario,
    build_wmiprvse,
    free_address,
    write_minidump,
    write_minidump_file,
)
from fixtures.labdump.__main__ import main as labdump_main
from fixtures.labdump.attacks import (
    convert_event_write_forwarder,
    plant_etw_patch,
    plant_phantom_module,
    plant_reflective_dll,
)

minidumpfile = pytest.importorskip("minidump.minidumpfile", reason="needs the PyPI minidump package (0.0.24)")

BUILDS = {"x64": 19045, "x86": 22631}

MEM_COMMIT, MEM_RESERVE, MEM_FREE = 0x1000, 0x2000, 0x10000
MEM_PRIVATE, MEM_MAPPED, MEM_IMAGE = 0x20000, 0x40000, 0x1000000
PAGE_READWRITE, PAGE_EXECUTE_READ, PAGE_EXECUTE_READWRITE = 0x04, 0x20, 0x40
EXECUTABLE = 0x10 | 0x20 | 0x40 | 0x80

# LDR structures (public symbols): Ldr in PEB, InLoadOrder/InInitializationOrder heads in PEB_LDR_DATA,
# and in LDR_DATA_TABLE_ENTRY the DllBase, SizeOfImage, FullDllName and BaseDllName fields.
LDR_LAYOUT = {
    "x64": dict(
        teb_peb=0x60, peb_ldr=0x18, load=0x10, init=0x30, init_link=0x20, base=0x30, size=0x40, full=0x48
    ),
    "x86": dict(
        teb_peb=0x30, peb_ldr=0x0C, load=0x0C, init=0x1C, init_link=0x10, base=0x18, size=0x20, full=0x24
    ),
}


def _value(field) -> int:
    if field is None:
        return 0
    return field.value if hasattr(field, "value") else int(field)


class Dump:
    """One scenario written to disk and parsed by the PyPI minidump package."""

    def __init__(self, path: Path, arch: str, planted: List[Planted]) -> None:
        self.path = path
        self.arch = arch
        self.planted = planted
        self.file = minidumpfile.MinidumpFile.parse(str(path))
        self.reader = self.file.get_reader()
        self.infos = self.file.memory_info.infos
        self.modules = self.file.modules.modules
        self.pointer = 8 if arch == "x64" else 4

    # --- memory ---------------------------------------------------------------------------------

    def info(self, address: int):
        for info in self.infos:
            if info.BaseAddress <= address < info.BaseAddress + info.RegionSize:
                return info
        raise KeyError(hex(address))

    def infos_in(self, start: int, end: int):
        return [i for i in self.infos if i.BaseAddress < end and i.BaseAddress + i.RegionSize > start]

    def read(self, address: int, length: int) -> bytes:
        return self.reader.read(address, length)

    def read_range(self, start: int, end: int) -> bytes:
        """Bytes of [start, end) region by region, zeros where nothing was captured."""
        out = bytearray()
        for info in self.infos_in(start, end):
            lo, hi = max(start, info.BaseAddress), min(end, info.BaseAddress + info.RegionSize)
            try:
                out += self.read(lo, hi - lo)
            except Exception:
                out += bytes(hi - lo)
        return bytes(out)

    def pointer_at(self, address: int) -> int:
        return int.from_bytes(self.read(address, self.pointer), "little")

    def disassemble(self, address: int, length: int = 32, count: int = 0) -> List[Tuple[str, str]]:
        mode = capstone.CS_MODE_64 if self.arch == "x64" else capstone.CS_MODE_32
        code = self.read(address, length)
        decoded = capstone.Cs(capstone.CS_ARCH_X86, mode).disasm(code, address)
        result = [(i.mnemonic, i.op_str) for i in decoded]
        return result[:count] if count else result

    # --- modules ----------------------------------------------------------------------------------

    def module(self, file_name: str):
        found = [m for m in self.modules if m.name.lower().endswith("\\" + file_name.lower())]
        assert len(found) == 1, file_name
        return found[0]

    def module_pe(self, file_name: str) -> Tuple[object, pefile.PE]:
        module = self.module(file_name)
        image = self.read_range(module.baseaddress, module.baseaddress + module.size)
        return module, pefile.PE(data=image)

    def exports(self, file_name: str) -> Dict[str, Tuple[int, Optional[bytes]]]:
        """Export name -> (virtual address, forwarder) from the module's export table in the dump."""
        module, pe = self.module_pe(file_name)
        return {
            s.name.decode(): (module.baseaddress + s.address, s.forwarder)
            for s in pe.DIRECTORY_ENTRY_EXPORT.symbols
        }

    # --- threads and PEB --------------------------------------------------------------------------

    def thread(self, thread_id: int):
        return next(t for t in self.file.threads.threads if t.ThreadId == thread_id)

    def ip(self, thread) -> int:
        context = thread.ContextObject
        return context.Rip if self.arch == "x64" else context.Eip

    def _unicode_string(self, address: int) -> str:
        length = struct.unpack("<H", self.read(address, 2))[0]
        buffer = self.pointer_at(address + self.pointer)
        return self.read(buffer, length).decode("utf-16-le")

    def peb_modules(self) -> List[Tuple[int, int, str]]:
        """(DllBase, SizeOfImage, FullDllName) in load order, from the PEB loader list."""
        layout = LDR_LAYOUT[self.arch]
        peb = self.pointer_at(self.file.threads.threads[0].Teb + layout["teb_peb"])
        head = self.pointer_at(peb + layout["peb_ldr"]) + layout["load"]
        entries = []
        node = self.pointer_at(head)
        while node != head and len(entries) < 100:
            base = self.pointer_at(node + layout["base"])
            size = struct.unpack("<I", self.read(node + layout["size"], 4))[0]
            entries.append((base, size, self._unicode_string(node + layout["full"])))
            node = self.pointer_at(node)
        return entries

    def peb_initialization_order(self) -> List[str]:
        layout = LDR_LAYOUT[self.arch]
        peb = self.pointer_at(self.file.threads.threads[0].Teb + layout["teb_peb"])
        head = self.pointer_at(peb + layout["peb_ldr"]) + layout["init"]
        names = []
        node = self.pointer_at(head)
        while node != head and len(names) < 100:
            entry = node - layout["init_link"]
            names.append(self._unicode_string(entry + layout["full"]).rsplit("\\", 1)[-1])
            node = self.pointer_at(node)
        return names


_CACHE: Dict[Tuple[str, str], Dump] = {}


@pytest.fixture(scope="module")
def scenario_dump(tmp_path_factory):
    def load(name: str, arch: str) -> Dump:
        if (name, arch) not in _CACHE:
            proc, planted = build_scenario(name, arch, BUILDS[arch])
            path = tmp_path_factory.mktemp("scenarios") / f"{name}-{arch}.dmp"
            write_minidump_file(proc, str(path))
            _CACHE[(name, arch)] = Dump(path, arch, planted)
        return _CACHE[(name, arch)]

    yield load
    _CACHE.clear()


def _one(dump: Dump, kind: str) -> Planted:
    found = [p for p in dump.planted if p.kind == kind]
    assert len(found) == 1, (kind, dump.planted)
    return found[0]


def _allocation(dump: Dump, planted: Planted):
    info = dump.info(planted.start)
    assert info.BaseAddress == info.AllocationBase == planted.start
    assert info.RegionSize == planted.end - planted.start
    assert info.State == minidumpfile.MemoryState.MEM_COMMIT or _value(info.State) == MEM_COMMIT
    return info


def _system_dirs(arch: str) -> str:
    return "C:\\Windows\\System32" if arch == "x64" else "C:\\Windows\\SysWOW64"


# --- every scenario: each planted record is backed by the dump ---------------------------------------


def _check_record(dump: Dump, record: Planted) -> None:
    module_ranges = [(m.baseaddress, m.baseaddress + m.size) for m in dump.modules]
    listed = [
        m for m in dump.modules if m.baseaddress == record.start and m.size == record.end - record.start
    ]
    kind = record.kind
    if kind in ("pe_injected", "pe_headerless", "exec_rwx", "exec_was_rwx", "exec_private"):
        info = _allocation(dump, record)
        assert _value(info.Type) == (MEM_MAPPED if "mapped" in record.detail else MEM_PRIVATE)
        assert _value(info.Protect) & EXECUTABLE
        assert not any(lo < record.end and record.start < hi for lo, hi in module_ranges)
        starts_mz = dump.read(record.start, 2) == b"MZ"
        assert starts_mz == (kind == "pe_injected")
        protect, allocated = _value(info.Protect), info.AllocationProtect
        expected = {
            "exec_rwx": (PAGE_EXECUTE_READWRITE, PAGE_EXECUTE_READWRITE),
            "exec_was_rwx": (PAGE_EXECUTE_READ, PAGE_EXECUTE_READWRITE),
            "exec_private": (PAGE_EXECUTE_READ, PAGE_READWRITE),
            "pe_headerless": (PAGE_EXECUTE_READ, PAGE_EXECUTE_READWRITE),
        }
        if kind in expected:
            assert (protect, allocated) == expected[kind]
    elif kind == "thread_start_unbacked":
        starts = [info.StartAddress for info in dump.file.thread_info.infos]
        assert record.start in starts and record.end == record.start + 1
        assert _value(dump.info(record.start).Type) != MEM_IMAGE
    elif kind == "thread_ip_unbacked":
        assert record.start in [dump.ip(t) for t in dump.file.threads.threads]
        assert _value(dump.info(record.start).Type) != MEM_IMAGE
    elif kind in ("module_masquerade", "wmi_consumer_module", "module_user_path"):
        assert len(listed) == 1
        path = listed[0].name
        in_system = path.lower().startswith(_system_dirs(dump.arch).lower() + "\\")
        assert in_system == (kind == "wmi_consumer_module")
        infos = dump.infos_in(record.start, record.end)
        assert all(_value(i.Type) == MEM_IMAGE and i.AllocationBase == record.start for i in infos)
        assert sum(i.RegionSize for i in infos) == record.end - record.start
        assert dump.read(record.start, 2) == b"MZ"
        assert (record.start, record.end - record.start, path) in dump.peb_modules()
    elif kind == "module_unlisted":
        assert not listed and not any(lo < record.end and record.start < hi for lo, hi in module_ranges)
        infos = dump.infos_in(record.start, record.end)
        assert infos and all(_value(i.Type) == MEM_IMAGE for i in infos)
        assert dump.read(record.start, 2) == b"MZ"
        assert record.start not in [base for base, _, _ in dump.peb_modules()]
    elif kind == "module_no_image":
        assert len(listed) == 1
        assert not [i for i in dump.infos_in(record.start, record.end) if _value(i.Type) == MEM_IMAGE]
        assert (record.start, record.end - record.start, listed[0].name) in dump.peb_modules()
    elif kind == "etw_patch":
        info = dump.info(record.start)
        assert _value(info.Type) == MEM_IMAGE and _value(info.Protect) == PAGE_EXECUTE_READ
        owner = [m.name for m in dump.modules if m.baseaddress <= record.start < m.baseaddress + m.size]
        assert owner and owner[0].lower().endswith(("\\ntdll.dll", "\\advapi32.dll"))
    elif kind == "stack_return_unbacked":
        # The return address sits in a captured thread stack and points into non-image memory.
        value = record.start.to_bytes(dump.pointer, "little")
        stacks = [dump.read(t.Stack.StartOfMemoryRange, t.Stack.DataSize) for t in dump.file.threads.threads]
        assert any(value in stack for stack in stacks)
        assert _value(dump.info(record.start).Type) != MEM_IMAGE and record.end == record.start + 1
    elif kind == "dotnet_unbacked_assembly":
        info = _allocation(dump, record)
        assert _value(info.Type) == MEM_PRIVATE and not _value(info.Protect) & EXECUTABLE
        image = pefile.PE(data=dump.read(record.start, record.end - record.start), fast_load=True)
        com_descriptor = pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_COM_DESCRIPTOR"]
        cli = image.OPTIONAL_HEADER.DATA_DIRECTORY[com_descriptor]
        assert cli.Size == image.get_dword_at_rva(cli.VirtualAddress) == 0x48  # IMAGE_COR20_HEADER.cb
        metadata = image.get_dword_at_rva(cli.VirtualAddress + 8)
        assert image.get_data(metadata, 4) == b"BSJB"
    elif kind == "iat_hook":
        # pefile reads the executable's import directory from the dump: the record is one of its slots.
        exe = dump.modules[0]
        image = pefile.PE(data=dump.read_range(exe.baseaddress, exe.baseaddress + exe.size))
        slots = {
            i.address - image.OPTIONAL_HEADER.ImageBase + exe.baseaddress: i.name
            for e in image.DIRECTORY_ENTRY_IMPORT
            for i in e.imports
        }
        assert slots[record.start] == b"WaitForMultipleObjectsEx"
        assert _value(dump.info(dump.pointer_at(record.start)).Type) == MEM_PRIVATE
    elif kind == "thread_start_spoofed":
        starts = [info.StartAddress for info in dump.file.thread_info.infos]
        assert record.start in starts and _value(dump.info(record.start).Type) == MEM_IMAGE
    elif kind == "sleep_apc_wait":
        value = record.start.to_bytes(dump.pointer, "little")
        stacks = [dump.read(t.Stack.StartOfMemoryRange, t.Stack.DataSize) for t in dump.file.threads.threads]
        assert any(value in stack for stack in stacks)
        assert _value(dump.info(record.start).Type) == MEM_IMAGE
    elif kind == "sleep_context_chain":
        stacks = [(t.Stack.StartOfMemoryRange, t.Stack.DataSize) for t in dump.file.threads.threads]
        assert any(lo <= record.start and record.end <= lo + size for lo, size in stacks)
        first = dump.read(record.start, 0x40)
        assert first[0x30:0x34] == (0x10001F).to_bytes(4, "little") and first[0x38] == 0x33
    elif kind in ("amsi_patch", "inline_hook", "syscall_stub_order"):
        info = dump.info(record.start)
        assert _value(info.Type) == MEM_IMAGE
        owner = [m.name for m in dump.modules if m.baseaddress <= record.start < m.baseaddress + m.size]
        assert owner and owner[0].lower().endswith(("\\ntdll.dll", "\\amsi.dll"))
        opening = dump.read(record.start, 2)
        expected = {"amsi_patch": (b"\xb8\x57",), "inline_hook": (b"\x48\xb8", b"\xe9")}
        if kind == "syscall_stub_order":
            assert opening in (b"\x4c\x8b", b"\xb8" + opening[1:2])
        else:
            assert opening.startswith(expected[kind])
    elif kind == "amsi_branch_patch":
        # A branch inside the function, not its first bytes: the prologue is as compiled.
        info = dump.info(record.start)
        assert _value(info.Type) == MEM_IMAGE and _value(info.Protect) == PAGE_EXECUTE_READ
        owner = [m.name for m in dump.modules if m.baseaddress <= record.start < m.baseaddress + m.size]
        assert owner and owner[0].lower().endswith("\\amsi.dll")
        assert dump.read(record.start, 1) in (b"\x75", b"\xeb", b"\x48", b"\x33")
    elif kind == "hook_engine":
        infos = [i for i in dump.infos_in(record.start, record.end) if _value(i.Protect) & EXECUTABLE]
        assert len(infos) == 50 and all(_value(i.Type) == MEM_PRIVATE for i in infos)
        assert not any(lo < record.end and record.start < hi for lo, hi in module_ranges)
    else:
        raise AssertionError(f"unchecked kind {kind}")


@pytest.mark.parametrize("arch", sorted(BUILDS))
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_planted_record_is_in_the_dump(scenario_dump, name, arch):
    dump = scenario_dump(name, arch)
    assert bool(dump.planted) == (name != "clean")
    for record in dump.planted:
        _check_record(dump, record)
        if arch == "x86":
            assert record.end <= 0x8000_0000
    # Memory-backed records never overlap each other (thread and patch records point into them).
    spans = sorted(
        (p.start, p.end) for p in dump.planted if not p.kind.startswith("thread_") and p.kind != "etw_patch"
    )
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    # The memory map still tiles the address space.
    for before, after in zip(dump.infos, dump.infos[1:]):
        assert before.BaseAddress + before.RegionSize == after.BaseAddress


@pytest.mark.parametrize("arch", sorted(BUILDS))
def test_clean_baseline_has_no_executable_private_memory_and_no_rwx(scenario_dump, arch):
    dump = scenario_dump("clean", arch)
    for info in dump.infos:
        protect = _value(info.Protect)
        if _value(info.State) != MEM_COMMIT:
            continue
        assert protect & 0xFF != PAGE_EXECUTE_READWRITE
        assert info.AllocationProtect & 0xFF != PAGE_EXECUTE_READWRITE
        if protect & EXECUTABLE:
            assert _value(info.Type) == MEM_IMAGE
    assert dump.exports("advapi32.dll")["EventWrite"][1] == b"ntdll.EtwEventWrite"


# --- injected PEs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", sorted(BUILDS))
@pytest.mark.parametrize(
    ("name", "memory_type", "protect"),
    [
        ("reflective_dll", MEM_PRIVATE, PAGE_EXECUTE_READWRITE),
        ("mapped_pe", MEM_MAPPED, PAGE_EXECUTE_READ),
    ],
)
def test_injected_pe_parses_with_pefile(scenario_dump, name, memory_type, protect, arch):
    dump = scenario_dump(name, arch)
    record = _one(dump, "pe_injected")
    info = _allocation(dump, record)
    assert (_value(info.Type), _value(info.Protect), info.AllocationProtect) == (
        memory_type,
        protect,
        protect,
    )
    pe = pefile.PE(data=dump.read(record.start, record.end - record.start))
    assert pe.FILE_HEADER.Machine == (0x8664 if arch == "x64" else 0x14C) and pe.is_dll()
    assert pe.OPTIONAL_HEADER.SizeOfImage == record.end - record.start
    sections = [s.Name.rstrip(b"\x00") for s in pe.sections]
    assert sections[:3] == [b".text", b".rdata", b".data"] and sections[-1] == b".reloc"
    exports = {s.name.decode(): s.address for s in pe.DIRECTORY_ENTRY_EXPORT.symbols}
    loader = "ReflectiveLoader" if name == "reflective_dll" else "Initialize"
    assert set(exports) == {loader, "WmiExecMethod"}
    entry = dump.disassemble(record.start + pe.OPTIONAL_HEADER.AddressOfEntryPoint, count=3)
    assert entry[0] == (("mov", "qword ptr [rsp + 8], rbx") if arch == "x64" else ("mov", "edi, edi"))
    wmi = dump.disassemble(record.start + exports["WmiExecMethod"], 48)
    vtable_call = ("call", "qword ptr [rax + 0xc0]") if arch == "x64" else ("call", "dword ptr [eax + 0x60]")
    assert vtable_call in wmi  # IWbemServices::ExecMethod
    image = dump.read(record.start, record.end - record.start)
    assert bytes.fromhex("99DC56958C82CF11A37E00AA003240C7") in image  # IID_IWbemServices
    assert not any(m.baseaddress <= record.start < m.baseaddress + m.size for m in dump.modules)


@pytest.mark.parametrize("arch", sorted(BUILDS))
def test_reflective_loader_walks_the_peb(scenario_dump, arch):
    dump = scenario_dump("reflective_dll", arch)
    record = _one(dump, "pe_injected")
    image = dump.read(record.start, record.end - record.start)
    pe = pefile.PE(data=image)
    loader = next(s.address for s in pe.DIRECTORY_ENTRY_EXPORT.symbols if s.name == b"ReflectiveLoader")
    calls = [op for mnemonic, op in dump.disassemble(record.start + loader, 64) if mnemonic == "call"]
    first_callee = int(calls[0], 16)
    peb_walk = dump.disassemble(first_callee, 32, count=2)
    if arch == "x64":
        assert peb_walk[0] == ("mov", "rax, qword ptr gs:[0x60]")
    else:
        assert peb_walk[0] == ("mov", "eax, dword ptr fs:[0x30]")


def _section_table(header: bytes, optional_size: int) -> Tuple[int, List[Tuple[bytes, int]]]:
    table = header.index(b".text\x00\x00\x00")
    entries = []
    offset = table
    while header[offset : offset + 8].strip(b"\x00"):
        name, _, rva = struct.unpack_from("<8sII", header, offset)
        entries.append((name.rstrip(b"\x00"), rva))
        offset += 40
    return table, entries


@pytest.mark.parametrize("arch", sorted(BUILDS))
@pytest.mark.parametrize("name", ["header_wiped", "header_wiped_nt"])
def test_header_wiped_pe_keeps_its_section_table(scenario_dump, name, arch):
    dump = scenario_dump(name, arch)
    record = _one(dump, "pe_headerless")
    info = _allocation(dump, record)
    assert (_value(info.Type), _value(info.Protect), info.AllocationProtect) == (
        MEM_PRIVATE,
        PAGE_EXECUTE_READ,
        PAGE_EXECUTE_READWRITE,
    )
    image = dump.read(record.start, record.end - record.start)
    header = image[:0x1000]
    optional_size = 240 if arch == "x64" else 224
    table, sections = _section_table(header, optional_size)
    names = [n for n, _ in sections]
    assert names[:3] == [b".text", b".rdata", b".data"] and names[-1] == b".reloc"
    assert sections[0][1] == 0x1000
    optional = table - optional_size
    assert struct.unpack_from("<H", header, optional)[0] == (0x20B if arch == "x64" else 0x10B)
    e_lfanew = optional - 24
    assert e_lfanew == (0xF8 if arch == "x64" else 0xE8)
    wiped_to = e_lfanew if name == "header_wiped" else optional
    assert header[:wiped_to] == bytes(wiped_to) and header[:2] != b"MZ"
    if name == "header_wiped":
        assert header[e_lfanew : e_lfanew + 4] == b"PE\x00\x00"
    else:
        assert b"PE\x00\x00" not in header
    # Rebuilding DOS and COFF headers around what is left gives a PE that pefile reads in full.
    repaired = bytearray(image)
    repaired[:2] = b"MZ"
    struct.pack_into("<I", repaired, 0x3C, e_lfanew)
    machine = 0x8664 if arch == "x64" else 0x14C
    characteristics = 0x2022 if arch == "x64" else 0x2102
    struct.pack_into(
        "<4sHHIIIHH",
        repaired,
        e_lfanew,
        b"PE\x00\x00",
        machine,
        len(sections),
        0,
        0,
        0,
        optional_size,
        characteristics,
    )
    pe = pefile.PE(data=bytes(repaired))
    assert [s.Name.rstrip(b"\x00") for s in pe.sections] == names
    assert {s.name for s in pe.DIRECTORY_ENTRY_EXPORT.symbols} == {b"DllGetClassObject", b"WmiExecMethod"}
    entry = dump.disassemble(record.start + pe.OPTIONAL_HEADER.AddressOfEntryPoint, count=1)
    assert entry[0][0] == "mov"


# --- shellcode and threads ---------------------------------------------------------------------------


@pytest.mark.parametrize("arch", sorted(BUILDS))
def test_shellcode_thread_starts_and_runs_in_private_rwx_memory(scenario_dump, arch):
    dump = scenario_dump("shellcode_thread", arch)
    region = _one(dump, "exec_rwx")
    start = _one(dump, "thread_start_unbacked")
    ip = _one(dump, "thread_ip_unbacked")
    info = _allocation(dump, region)
    assert (_value(info.Type), _value(info.Protect), info.AllocationProtect) == (
        MEM_PRIVATE,
        PAGE_EXECUTE_READWRITE,
        PAGE_EXECUTE_READWRITE,
    )
    if arch == "x64":
        prologue = bytes.fromhex("FC4883E4F0E8C0000000415141505251564831D265488B5260")
        expected = [("cld", ""), ("and", "rsp, 0xfffffffffffffff0"), ("call", hex(region.start + 0xCA))]
        peb = ("mov", "rdx, qword ptr gs:[rdx + 0x60]")
    else:
        prologue = bytes.fromhex("FCE8820000006089E531C0648B5030")
        expected = [("cld", ""), ("call", hex(region.start + 0x88)), ("pushal", ""), ("mov", "ebp, esp")]
        peb = ("mov", "edx, dword ptr fs:[eax + 0x30]")
    assert dump.read(region.start, len(prologue)) == prologue
    code = dump.disassemble(region.start, 0x20)
    assert code[: len(expected)] == expected and peb in code
    assert start.start == region.start

    info_entry = next(i for i in dump.file.thread_info.infos if i.StartAddress == region.start)
    thread = dump.thread(info_entry.ThreadId)
    assert dump.ip(thread) == ip.start and region.start < ip.start < region.end
    assert dump.disassemble(ip.start, 2)[0][0] == "jmp"
    assert info_entry.ThreadId == dump.file.threads.threads[-1].ThreadId
    assert len(dump.file.threads.threads) == len(dump.file.thread_info.infos) == 6

    teb = dump.info(thread.Teb)
    assert (_value(teb.Type), _value(teb.Protect)) == (MEM_PRIVATE, PAGE_READWRITE)
    self_offset, tid_offset = (0x30, 0x48) if arch == "x64" else (0x18, 0x24)
    assert dump.pointer_at(thread.Teb + self_offset) == thread.Teb
    assert dump.pointer_at(thread.Teb + tid_offset) == thread.ThreadId
    stack = dump.info(thread.Stack.StartOfMemoryRange)
    assert (_value(stack.Type), _value(stack.Protect)) == (MEM_PRIVATE, PAGE_READWRITE)
    return_address = dump.pointer_at(thread.Stack.StartOfMemoryRange)
    assert dump.module("kernel32.dll").baseaddress <= return_address


@pytest.mark.parametrize("arch", sorted(BUILDS))
def test_rx_after_rwx_and_private_rx_hold_shellcode_without_a_pe(scenario_dump, arch):
    decoder = scenario_dump("rx_after_rwx", arch)
    record = _one(decoder, "exec_was_rwx")
    code = decoder.read(record.start, 0x400)
    assert b"MZ" not in code[:2] and b"PE\x00\x00" not in code
    first = decoder.disassemble(record.start, 32, count=3)
    if arch == "x64":
        assert first[0] == ("xor", "rcx, rcx") and first[2] == ("lea", "rax, [rip - 0x11]")
    else:
        assert [m for m, _ in first] == ["mov", "fldz", "fnstenv"]

    loader = scenario_dump("private_rx", arch)
    record = _one(loader, "exec_private")
    first = loader.disassemble(record.start, 16, count=3)
    assert first[0] == ("call", hex(record.start + 5))
    assert first[1] == (("pop", "rcx") if arch == "x64" else ("pop", "eax"))
    body = loader.disassemble(record.start, 0x60)
    peb = ("mov", "rax, qword ptr gs:[0x60]") if arch == "x64" else ("mov", "eax, dword ptr fs:[0x30]")
    assert peb in body


# --- modules -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", sorted(BUILDS))
def test_fake_wbemcore_is_listed_everywhere_with_a_programdata_path(scenario_dump, arch):
    dump = scenario_dump("fake_wbemcore", arch)
    record = _one(dump, "module_masquerade")
    module = dump.module("wbemcore.dll")
    assert module.name == "C:\\ProgramData\\wbemcore.dll"
    assert (module.baseaddress, module.baseaddress + module.size) == (record.start, record.end)
    _, pe = dump.module_pe("wbemcore.dll")
    assert pe.get_string_at_rva(pe.DIRECTORY_ENTRY_EXPORT.struct.Name) == b"wbemcore.dll"
    assert {b"DllGetClassObject", b"DllCanUnloadNow"} <= {s.name for s in pe.DIRECTORY_ENTRY_EXPORT.symbols}
    assert pe.OPTIONAL_HEADER.CheckSum == pe.generate_checksum()
    peb = dump.peb_modules()
    assert peb[-1] == (record.start, record.end - record.start, "C:\\ProgramData\\wbemcore.dll")
    assert [path for _, _, path in peb] == [m.name for m in dump.modules]
    assert dump.peb_initialization_order()[-1] == "wbemcore.dll"
    assert module.versioninfo.dwFileVersionLS == dump.module("ntdll.dll").versioninfo.dwFileVersionLS


@pytest.mark.parametrize("arch", sorted(BUILDS))
def test_unlisted_image_is_mem_image_with_amsi_exports(scenario_dump, arch):
    dump = scenario_dump("unlisted_image", arch)
    record = _one(dump, "module_unlisted")
    infos = dump.infos_in(record.start, record.end)
    assert {i.AllocationProtect for i in infos} == {0x80}  # PAGE_EXECUTE_WRITECOPY, as image views have
    assert PAGE_EXECUTE_READ in {_value(i.Protect) for i in infos}
    pe = pefile.PE(data=dump.read_range(record.start, record.end))
    assert pe.get_string_at_rva(pe.DIRECTORY_ENTRY_EXPORT.struct.Name) == b"amsi.dll"
    assert b"AmsiScanBuffer" in {s.name for s in pe.DIRECTORY_ENTRY_EXPORT.symbols}
    assert len(dump.modules) == 20 and len(dump.peb_modules()) == 20


@pytest.mark.parametrize("arch", sorted(BUILDS))
def test_phantom_module_range_holds_no_image(scenario_dump, arch):
    dump = scenario_dump("phantom_module", arch)
    record = _one(dump, "module_no_image")
    module = dump.module("wmiperf.dll")
    assert module.name == f"{_system_dirs(arch)}\\wbem\\wmiperf.dll"
    first = dump.info(record.start)
    assert (_value(first.Type), _value(first.Protect)) == (MEM_PRIVATE, PAGE_READWRITE)
    assert dump.read(record.start, 2) != b"MZ"
    assert "wmiperf.dll" in dump.peb_initialization_order()


def test_phantom_module_can_leave_its_range_free(tmp_path):
    proc = build_wmiprvse("x64", 19045, 0)
    (record,) = plant_phantom_module(proc, backing="free")
    path = tmp_path / "phantom-free.dmp"
    write_minidump_file(proc, str(path))
    dump = Dump(path, "x64", [record])
    assert _value(dump.info(record.start).State) == MEM_FREE
    _check_record(dump, record)
    with pytest.raises(ValueError, match="already loaded"):
        plant_phantom_module(proc)


@pytest.mark.parametrize("arch", sorted(BUILDS))
def test_wmi_provider_context_modules(scenario_dump, arch):
    dump = scenario_dump("wmi_provider", arch)
    consumer = _one(dump, "wmi_consumer_module")
    provider = _one(dump, "module_user_path")
    assert dump.module("wbemcons.dll").name == f"{_system_dirs(arch)}\\wbem\\wbemcons.dll"
    bits = "64" if arch == "x64" else "32"
    assert dump.module(f"wmiprov{bits}.dll").name == f"C:\\Users\\Public\\Libraries\\wmiprov{bits}.dll"
    assert dump.module("wbemcons.dll").baseaddress == consumer.start
    assert dump.module(f"wmiprov{bits}.dll").baseaddress == provider.start
    assert dump.peb_initialization_order()[-2:] == ["wbemcons.dll", f"wmiprov{bits}.dll"]
    _, pe = dump.module_pe(f"wmiprov{bits}.dll")
    assert pe.DIRECTORY_ENTRY_DEBUG[0].entry.PdbFileName.startswith(b"D:\\build\\")


@pytest.mark.parametrize("arch", sorted(BUILDS))
def test_jit_host_has_clr_and_rwx_code_heaps_with_ordinary_prologues(scenario_dump, arch):
    dump = scenario_dump("jit_host", arch)
    framework = "Framework64" if arch == "x64" else "Framework"
    assert dump.module("clr.dll").name == f"C:\\Windows\\Microsoft.NET\\{framework}\\v4.0.30319\\clr.dll"
    assert dump.module("clrjit.dll").name.endswith(f"{framework}\\v4.0.30319\\clrjit.dll")
    heaps = [p for p in dump.planted if p.kind == "exec_rwx"]
    assert len(heaps) == 2 and all("jit=True" in p.detail for p in heaps)
    for heap in heaps:
        after = dump.info(heap.end)
        assert _value(after.State) == MEM_RESERVE and after.AllocationBase == heap.start
        code = dump.read(heap.start, 0x300)
        first = next(i for i in range(dump.pointer, len(code)) if code[i] and i % 32 == 0)
        assert code[first] != 0xFC  # no cld: not a shellcode prologue
        mnemonics = dump.disassemble(heap.start + first, 8, count=2)
        assert mnemonics[0] in (("push", "rbp"), ("sub", "rsp, 0x28"), ("push", "ebp"))
        if arch == "x64":
            body = dump.disassemble(heap.start + 0x20, 8, count=2)
            assert body in (
                [("push", "rbp"), ("mov", "rbp, rsp")],
                [("sub", "rsp, 0x28"), ("mov", "rax, rcx")],
            )


# --- ETW patches -------------------------------------------------------------------------------------

ETW_EXPECTATIONS = {
    "etw_ret": ("ntdll.dll", "EtwEventWrite", {"x64": [("ret", "")], "x86": [("ret", "")]}),
    "etw_xor_ret": (
        "ntdll.dll",
        "EtwEventWrite",
        {"x64": [("xor", "eax, eax"), ("ret", "")], "x86": [("xor", "eax, eax"), ("ret", "")]},
    ),
    "etw_ret_imm": ("ntdll.dll", "EtwEventWrite", {"x64": [("ret", "0x14")], "x86": [("ret", "0x14")]}),
    "etw_offset": (
        "ntdll.dll",
        "EtwEventWrite",
        {
            "x64": [("mov", "r11, rsp"), ("ret", "")],
            "x86": [("mov", "edi, edi"), ("push", "ebp"), ("pop", "ebp"), ("ret", "0x14")],
        },
    ),
    "etw_ntTraceEvent": (
        "ntdll.dll",
        "NtTraceEvent",
        {"x64": [("xor", "eax, eax"), ("ret", "")], "x86": [("xor", "eax, eax"), ("ret", "")]},
    ),
    "etw_eventwrite": (
        "advapi32.dll",
        "EventWrite",
        {"x64": [("xor", "eax, eax"), ("ret", "")], "x86": [("ret", "0x14")]},
    ),
}


@pytest.mark.parametrize("arch", sorted(BUILDS))
@pytest.mark.parametrize("name", sorted(ETW_EXPECTATIONS))
def test_etw_patch_bytes_at_the_export_read_back_from_the_dump(scenario_dump, name, arch):
    module_name, function, expected = ETW_EXPECTATIONS[name]
    dump = scenario_dump(name, arch)
    clean = scenario_dump("clean", arch)
    record = _one(dump, "etw_patch")
    address, forwarder = dump.exports(module_name)[function]
    assert forwarder is None and record.start == address
    instructions = dump.disassemble(address, 16, count=len(expected[arch]))
    assert instructions == expected[arch]
    assert dump.read(address, record.end - record.start) != clean.read(address, record.end - record.start)
    info = dump.info(address)
    assert (_value(info.Type), _value(info.Protect)) == (MEM_IMAGE, PAGE_EXECUTE_READ)
    # Everything else in ntdll's code is as in the clean dump.
    ntdll = dump.module("ntdll.dll")
    text = dump.info(ntdll.baseaddress + 0x1000)
    changed = [
        offset
        for offset, (a, b) in enumerate(
            zip(dump.read(text.BaseAddress, text.RegionSize), clean.read(text.BaseAddress, text.RegionSize))
        )
        if a != b
    ]
    if module_name == "ntdll.dll":
        assert changed and text.BaseAddress + changed[0] >= record.start
        assert text.BaseAddress + changed[-1] < record.end
    else:
        assert changed == []


@pytest.mark.parametrize("arch", sorted(BUILDS))
def test_etw_jmp_out_leaves_ntdll_for_a_private_handler(scenario_dump, arch):
    dump = scenario_dump("etw_jmp_out", arch)
    patch = _one(dump, "etw_patch")
    handler = _one(dump, "exec_private")
    address, _ = dump.exports("ntdll.dll")["EtwEventWrite"]
    assert patch.start == address
    code = dump.disassemble(address, 16, count=2)
    if arch == "x64":
        assert code == [("movabs", f"rax, {handler.start:#x}"), ("jmp", "rax")]
        assert patch.end - patch.start == 12
    else:
        assert code[0] == ("jmp", f"{handler.start:#x}")
        assert patch.end - patch.start == 5
    info = _allocation(dump, handler)
    assert (_value(info.Type), _value(info.Protect), info.AllocationProtect) == (
        MEM_PRIVATE,
        PAGE_EXECUTE_READ,
        PAGE_READWRITE,
    )
    assert dump.disassemble(handler.start, 8, count=1) == [("xor", "eax, eax")]
    assert not any(m.baseaddress <= handler.start < m.baseaddress + m.size for m in dump.modules)


@pytest.mark.parametrize("arch", sorted(BUILDS))
def test_event_write_thunk_jumps_to_ntdll_through_a_slot(tmp_path, arch):
    proc = build_wmiprvse(arch, BUILDS[arch], 0)
    thunk = convert_event_write_forwarder(proc)
    assert convert_event_write_forwarder(proc) == thunk
    path = tmp_path / "thunk.dmp"
    write_minidump_file(proc, str(path))
    dump = Dump(path, arch, [])
    address, forwarder = dump.exports("advapi32.dll")["EventWrite"]
    assert (address, forwarder) == (thunk, None)
    etw, _ = dump.exports("ntdll.dll")["EtwEventWrite"]
    (jump,) = dump.disassemble(address, 16, count=1)
    if arch == "x64":
        assert jump[0] == "jmp" and jump[1].startswith("qword ptr [rip + ")
        slot = address + 7 + int(jump[1].split("+ ")[1].rstrip("]"), 16)
    else:
        assert jump[0] == "jmp" and jump[1].startswith("dword ptr [")
        slot = int(jump[1].split("[")[1].rstrip("]"), 16)
    assert dump.pointer_at(slot) == etw
    _, pe = dump.module_pe("advapi32.dll")
    assert pe.OPTIONAL_HEADER.CheckSum == pe.generate_checksum()
    text = next(s for s in pe.sections if s.Name.startswith(b".text"))
    assert (
        text.VirtualAddress
        <= address - dump.module("advapi32.dll").baseaddress
        < text.VirtualAddress + 0x1000 * 16
    )
    forwarded = {s.name: s.forwarder for s in pe.DIRECTORY_ENTRY_EXPORT.symbols}
    assert forwarded[b"EventRegister"] == b"ntdll.EtwEventRegister"


def test_offset_style_is_refused_on_the_event_write_thunk():
    proc = build_wmiprvse("x64", 19045, 0)
    with pytest.raises(ValueError, match="jump thunk"):
        plant_etw_patch(proc, "EventWrite", "offset")
    with pytest.raises(ValueError, match="style"):
        plant_etw_patch(proc, "EtwEventWrite", "nop")


# --- the combined example, allocation and determinism ------------------------------------------------


@pytest.mark.parametrize("arch", sorted(BUILDS))
def test_lab_example_holds_every_planted_artifact(scenario_dump, arch):
    dump = scenario_dump("lab_example", arch)
    kinds = [p.kind for p in dump.planted]
    assert kinds == [
        "pe_injected",
        "exec_rwx",
        "thread_start_unbacked",
        "thread_ip_unbacked",
        "pe_headerless",
        "module_masquerade",
        "etw_patch",
        "wmi_consumer_module",
    ]
    address, _ = dump.exports("ntdll.dll")["EtwEventWrite"]
    assert dump.disassemble(address, 8, count=2) == [("xor", "eax, eax"), ("ret", "")]
    assert dump.module("wbemcore.dll").name == "C:\\ProgramData\\wbemcore.dll"
    assert dump.path.stat().st_size < 2 << 20
    executable_private = [
        i
        for i in dump.infos
        if _value(i.State) == MEM_COMMIT and _value(i.Protect) & EXECUTABLE and _value(i.Type) != MEM_IMAGE
    ]
    expected = {p.start for p in dump.planted if p.kind in ("pe_injected", "exec_rwx", "pe_headerless")}
    assert {i.BaseAddress for i in executable_private} == expected


def test_scenarios_are_deterministic_and_seed_dependent():
    def dump(name: str, arch: str, seed: int) -> bytes:
        proc, _ = build_scenario(name, arch, BUILDS[arch], seed)
        out = io.BytesIO()
        write_minidump(proc, out)
        return out.getvalue()

    assert dump("lab_example", "x86", 0) == dump("lab_example", "x86", 0)
    assert dump("lab_example", "x86", 0) != dump("lab_example", "x86", 1)
    assert build_scenario("jit_host", "x64")[1] == build_scenario("jit_host", "x64")[1]


@pytest.mark.parametrize("arch", sorted(BUILDS))
def test_free_address_avoids_everything_and_is_aligned(arch):
    proc = build_wmiprvse(arch, BUILDS[arch], 0)
    taken = [(r.base, r.end) for r in proc.regions] + [(m.base, m.end) for m in proc.modules]
    taken += [(u.base, u.base + u.size) for u in proc.unloaded_modules]
    for area in ("private", "mapped", "image", "stack", "teb"):
        base = free_address(proc, 0x30000, area=area)
        assert base % 0x10000 == 0 and base + 0x30000 <= proc.highest_user_address
        assert not any(lo < base + 0x30000 and base < hi for lo, hi in taken)
    lowest_dll = min(m.base for m in proc.modules if m.path != proc.image_path)
    assert free_address(proc, 0x10000, area="image") < lowest_dll
    plant_reflective_dll(proc)
    plant_reflective_dll(proc)
    proc.sorted_regions()  # raises on overlap


def test_command_line_writes_a_scenario_and_its_expected_findings(tmp_path, capsys):
    dump_path, json_path = tmp_path / "etw.dmp", tmp_path / "etw.json"
    argv = ["--arch", "x86", "--build", "22631", "--scenario", "etw_ret", "-o", str(dump_path)]
    assert labdump_main(argv + ["--expected", str(json_path), "--list"]) == 0
    assert "etw_patch" in capsys.readouterr().out
    document = json.loads(json_path.read_text())
    assert (document["scenario"], document["arch"], document["build"]) == ("etw_ret", "x86", 22631)
    (entry,) = document["planted"]
    dump = Dump(dump_path, "x86", [])
    address, _ = dump.exports("ntdll.dll")["EtwEventWrite"]
    assert entry == {
        "kind": "etw_patch",
        "start": hex(address),
        "end": hex(address + 1),
        "detail": entry["detail"],
    }
    assert dump.read(address, 1) == b"\xc3"
    assert labdump_main(["--scenarios"]) == 0
    assert "lab_example" in capsys.readouterr().out


@pytest.mark.parametrize("arch", sorted(BUILDS))
def test_lldb_sees_the_injected_thread_and_executable_shellcode(tmp_path, arch):
    from tests.test_labdump_readers import _lldb

    proc, planted = build_scenario("shellcode_thread", arch, BUILDS[arch])
    path = tmp_path / f"shellcode-{arch}.dmp"
    write_minidump_file(proc, str(path))
    region = next(p for p in planted if p.kind == "exec_rwx")
    ip = next(p for p in planted if p.kind == "thread_ip_unbacked")
    report = _lldb(path, region.start)
    assert bytes.fromhex(report["memory"])[:2] == (b"\xfc\x48" if arch == "x64" else b"\xfc\xe8")
    assert ip.start in [pc for _, pc, _ in report["threads"]]
    assert [region.start, region.end, True] in report["regions"]
