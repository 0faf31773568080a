"""Lab module images are PE files that `pefile` and `capstone` read the way the lab intends."""

from __future__ import annotations

import capstone
import pefile
import pytest

from fixtures.labdump import build_wmiprvse
from fixtures.labdump.constants import PAGE_EXECUTE_READ, PAGE_READONLY, PAGE_READWRITE, PAGE_WRITECOPY
from fixtures.labdump.pe import Section, build_pe_image

BASELINES = {"x64": (19045, 0x8664, 0x20B), "x86": (22631, 0x14C, 0x10B)}


@pytest.fixture(scope="module", params=sorted(BASELINES))
def process(request):
    arch = request.param
    return build_wmiprvse(arch, BASELINES[arch][0], seed=3)


def test_pefile_parses_every_module_header(process):
    _, machine, magic = BASELINES[process.arch]
    for module in process.modules:
        pe = pefile.PE(data=module.image)
        assert pe.FILE_HEADER.Machine == machine, module.name
        assert pe.OPTIONAL_HEADER.Magic == magic
        assert pe.OPTIONAL_HEADER.ImageBase == module.base
        assert pe.OPTIONAL_HEADER.SizeOfImage == module.size == len(module.image)
        assert pe.OPTIONAL_HEADER.AddressOfEntryPoint == module.entry_point_rva
        assert pe.FILE_HEADER.TimeDateStamp == module.timestamp
        assert pe.OPTIONAL_HEADER.CheckSum == module.checksum == pe.generate_checksum()
        assert pe.is_dll() == (module.name != "WmiPrvSE.exe")
        names = [section.Name.rstrip(b"\x00").decode() for section in pe.sections]
        assert names[:3] == [".text", ".rdata", ".data"]
        text = pe.sections[0]
        assert text.VirtualAddress == 0x1000 and text.IMAGE_SCN_MEM_EXECUTE
        codeview = pe.DIRECTORY_ENTRY_DEBUG[0].entry
        assert codeview.CvSignature == b"RSDS"
        assert module.cv_record.startswith(b"RSDS") and codeview.PdbFileName.rstrip(b"\x00").endswith(b".pdb")


def test_pefile_reads_ntdll_exports_at_the_model_addresses(process):
    ntdll = process.module("ntdll.dll")
    pe = pefile.PE(data=ntdll.image)
    exports = {symbol.name.decode(): symbol.address for symbol in pe.DIRECTORY_ENTRY_EXPORT.symbols}
    for name in ("EtwEventWrite", "EtwEventWriteFull", "NtTraceEvent", "NtCreateThreadEx", "LdrLoadDll"):
        assert exports[name] == ntdll.exports[name]
        assert ntdll.base + exports[name] == process.address_of("ntdll.dll", name)
    assert "EtwpEventWriteFull" not in exports and "EtwpEventWriteFull" in ntdll.symbols
    assert list(exports) == sorted(exports)
    assert pe.get_string_at_rva(pe.DIRECTORY_ENTRY_EXPORT.struct.Name) == b"ntdll.dll"


def test_advapi32_forwards_event_write_and_kernel32_exports_its_entry_points(process):
    advapi = pefile.PE(data=process.module("advapi32.dll").image)
    forwarders = {s.name.decode(): s.forwarder for s in advapi.DIRECTORY_ENTRY_EXPORT.symbols}
    assert forwarders["EventWrite"] == b"ntdll.EtwEventWrite"
    kernel32 = pefile.PE(data=process.module("kernel32.dll").image)
    names = {s.name.decode() for s in kernel32.DIRECTORY_ENTRY_EXPORT.symbols}
    assert {"LoadLibraryW", "CreateRemoteThread", "BaseThreadInitThunk"} <= names


def _disassemble(process, module: str, symbol: str, length: int):
    mode = capstone.CS_MODE_64 if process.arch == "x64" else capstone.CS_MODE_32
    address = process.address_of(module, symbol)
    code = process.read(address, length)
    return [(i.mnemonic, i.op_str) for i in capstone.Cs(capstone.CS_ARCH_X86, mode).disasm(code, address)]


def test_syscall_stubs_and_etw_prologue_disassemble_as_on_windows(process):
    if process.arch == "x64":
        assert process.read(process.address_of("ntdll.dll", "NtTraceEvent"), 24) == bytes.fromhex(
            "4C8BD1B85E000000F604250803FE7F0175030F05C3CD2EC3"
        )
        stub = _disassemble(process, "ntdll.dll", "NtCreateThreadEx", 24)
        assert stub[:2] == [("mov", "r10, rcx"), ("mov", "eax, 0xc1")]
        assert ("syscall", "") in stub
        etw = process.read(process.address_of("ntdll.dll", "EtwEventWrite"), 7)
        assert etw == bytes.fromhex("4C8BDC4883EC58")
    else:
        stub = _disassemble(process, "ntdll.dll", "NtTraceEvent", 15)
        service_call = process.address_of("ntdll.dll", "Wow64SystemServiceCall")
        assert stub == [
            ("mov", "eax, 0x5e"),
            ("mov", f"edx, {service_call:#x}"),
            ("call", "edx"),
            ("ret", "0x10"),
        ]
        etw = _disassemble(process, "ntdll.dll", "EtwEventWrite", 5)
        assert etw == [("mov", "edi, edi"), ("push", "ebp"), ("mov", "ebp, esp")]


def test_kernel32_load_library_jumps_through_a_slot_to_kernelbase(process):
    thunk = process.address_of("kernel32.dll", "LoadLibraryW")
    target = process.address_of("KERNELBASE.dll", "LoadLibraryW")
    code = process.read(thunk, 7)
    if process.arch == "x64":
        assert code[:3] == b"\x48\xff\x25"
        slot = thunk + 7 + int.from_bytes(code[3:7], "little", signed=True)
        assert int.from_bytes(process.read(slot, 8), "little") == target
    else:
        assert code[:2] == b"\xff\x25"
        slot = int.from_bytes(code[2:6], "little")
        assert int.from_bytes(process.read(slot, 4), "little") == target


def test_image_regions_carry_section_protections(process):
    ntdll = process.module("ntdll.dll")
    regions = [r for r in process.sorted_regions() if r.allocation_base == ntdll.base]
    assert regions[0].base == ntdll.base and regions[0].protect == PAGE_READONLY
    assert regions[1].protect == PAGE_EXECUTE_READ and regions[1].contains(
        process.address_of("ntdll.dll", "NtTraceEvent")
    )
    assert [r.protect for r in regions[2:5]] == [PAGE_READONLY, PAGE_READWRITE, PAGE_WRITECOPY]
    assert sum(r.size for r in regions) == ntdll.size


def test_build_pe_image_rejects_exports_that_do_not_fit():
    sections = [
        Section(".text", 0x1000, 0x1000, 0x60000020, b"\xc3"),
        Section(".rdata", 0x2000, 0x40, 0x40000040),
    ]
    with pytest.raises(ValueError, match="rdata needs"):
        build_pe_image("tiny.dll", "x64", 0x180000000, 0x3000, sections, {f"F{i}": 0x1000 for i in range(20)})
