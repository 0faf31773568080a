"""Engine pieces on hand-made bytes and facts: no minidump, no fixture builder."""

from __future__ import annotations

import struct

import pytest

from wmiforensics.engine import (
    AllowList,
    ModuleFact,
    ProcessFacts,
    RegionFact,
    Severity,
    ThreadFact,
    analyse,
    code,
    pe,
)
from wmiforensics.engine.detectors import classify_patch
from wmiforensics.engine.knowledge import in_system_folder, in_user_writable_folder, normalise_path
from wmiforensics.errors import InputError
from wmiforensics.minidump import constants as c
from wmiforensics.vol.injection import safe_component

NTDLL = {
    "x64": ModuleFact(0x7FFE3A000000, 0x200000, "C:\\Windows\\System32\\ntdll.dll"),
    "x86": ModuleFact(0x774C0000, 0x1A0000, "C:\\Windows\\SysWOW64\\ntdll.dll"),
}


def patch_verdict(hex_bytes: str, arch: str = "x64"):
    module = NTDLL[arch]
    address = module.base + 0x1050
    return classify_patch(code.disassemble(bytes.fromhex(hex_bytes), address, arch, 8), module)


@pytest.mark.parametrize(
    ("hex_bytes", "arch", "expected"),
    [
        ("c3 cc cc cc", "x64", "returns at once"),
        ("33 c0 c3 90", "x64", "returns 0 (success) at once"),
        ("48 33 c0 c3", "x64", "returns 0 (success) at once"),
        ("c2 14 00 90", "x86", "returns at once (ret 0x14, popping the caller's arguments)"),
        ("4c 8b dc c3 90 90", "x64", "returns at +0x3 before doing any work"),
        ("48 b8 00 00 41 00 00 00 00 00 ff e0", "x64", "jmps out of ntdll.dll to 0x410000"),
        ("e9 ab 0f 00 00", "x64", "inside"),
        ("68 00 10 40 00 c3", "x86", "pushes 0x401000 and returns into it (push/ret hook)"),
    ],
)
def test_patched_openings_are_recognised(hex_bytes, arch, expected):
    verdict = patch_verdict(hex_bytes, arch)
    if expected == "inside":
        assert verdict is None  # a jump that stays inside ntdll is ordinary code
        return
    assert verdict is not None
    assert verdict[0] == expected


@pytest.mark.parametrize(
    ("hex_bytes", "arch"),
    [
        # x64 EtwEventWrite prologue: mov r11,rsp; sub rsp,0x58; mov [r11-0x18],r9; ... call
        ("4c 8b dc 48 83 ec 58 4d 89 4b e8 33 c0 e8 00 10 00 00", "x64"),
        # x64 NtTraceEvent syscall stub
        ("4c 8b d1 b8 5e 00 00 00 f6 04 25 08 03 fe 7f 01 75 03 0f 05 c3 cd 2e c3", "x64"),
        # x86 syscall stub: mov eax,N; mov edx,ntdll!Wow64SystemServiceCall; call edx; ret 0x10
        ("b8 5e 00 00 00 ba 00 10 4c 77 ff d2 c2 10 00", "x86"),
        # Windows 7 WOW64 stub: mov eax,N; xor ecx,ecx; lea edx,[esp+4]; call fs:[0xc0]
        ("b8 5e 00 00 00 33 c9 8d 54 24 04 64 ff 15 c0 00 00 00", "x86"),
        # kernel32-style thunk: jmp qword ptr [rip+x]
        ("48 ff 25 f9 0f 00 00", "x64"),
    ],
)
def test_normal_openings_are_not_patches(hex_bytes, arch):
    assert patch_verdict(hex_bytes, arch) is None


def test_shellcode_prologues():
    assert "Metasploit" in code.shellcode_prologue(bytes.fromhex("fc4883e4f0e8c0000000"))
    assert "PEB walk" in code.shellcode_prologue(b"\x90" * 8 + bytes.fromhex("4831d265488b5260"))
    assert code.shellcode_prologue(bytes.fromhex("4883ec28e8")) is None


def _pe_page(machine=0x8664, e_lfanew=0xF8, sections=(".text", ".rdata", ".data")) -> bytearray:
    page = bytearray(0x1000)
    page[0:2] = b"MZ"
    struct.pack_into("<I", page, 0x3C, e_lfanew)
    page[e_lfanew : e_lfanew + 4] = b"PE\x00\x00"
    struct.pack_into("<HHIIIHH", page, e_lfanew + 4, machine, len(sections), 0, 0, 0, 0xF0, 0x2022)
    optional = e_lfanew + 24
    struct.pack_into("<H", page, optional, 0x20B)
    struct.pack_into("<I", page, optional + 16, 0x1000)
    struct.pack_into("<Q", page, optional + 24, 0x180000000)
    struct.pack_into("<II", page, optional + 56, 0x5000, 0x400)
    table = optional + 0xF0
    for index, name in enumerate(sections):
        struct.pack_into(
            "<8sIIIIIIHHI",
            page,
            table + 40 * index,
            name.encode(),
            0x1000,
            0x1000 * (index + 1),
            0x1000,
            0x400 * (index + 1),
            0,
            0,
            0,
            0,
            0x60000020,
        )
    return page


def test_intact_and_wiped_headers():
    page = _pe_page()
    header = pe.parse_headers(bytes(page), 0x10000)
    assert (header.arch, header.is_dll, header.entry_point, header.size_of_image) == (
        "x64",
        True,
        0x1000,
        0x5000,
    )
    assert [s.name for s in header.sections] == [".text", ".rdata", ".data"]
    page[:0x40] = bytes(0x40)
    assert pe.parse_headers(bytes(page), 0x10000) is None
    how, offset, wiped = pe.find_wiped_headers(bytes(page), 0x10000)
    assert (how, offset, wiped.machine) == ("nt_headers", 0xF8, 0x8664)
    page[0xF8 : 0xF8 + 24] = bytes(24)
    how, offset, wiped = pe.find_wiped_headers(bytes(page), 0x10000)
    assert (how, offset, wiped) == ("section_table", 0xF8 + 24 + 0xF0, None)
    assert pe.find_wiped_headers(bytes(0x1000), 0) is None


def test_headers_with_absurd_fields_do_not_crash():
    page = _pe_page()
    struct.pack_into("<I", page, 0x3C, 0xFFFFFFF0)
    assert pe.parse_headers(bytes(page), 0) is None
    page = _pe_page()
    struct.pack_into("<H", page, 0xF8 + 6, 0xFFFF)  # NumberOfSections
    header = pe.parse_headers(bytes(page), 0)
    assert len(header.sections) <= pe.MAX_SECTIONS


def _facts(regions, modules=(), threads=(), memory=None) -> ProcessFacts:
    memory = memory or {}

    def read(address, length):
        for base, data in memory.items():
            if base <= address < base + len(data):
                return data[address - base : address - base + length]
        return b""

    return ProcessFacts(
        1234, "WmiPrvSE.exe", None, "x64", list(regions), list(modules), list(threads), [], read
    )


def private(base, size, protect, allocation_protect):
    return RegionFact(base, size, c.MEM_COMMIT, protect, base, allocation_protect, c.MEM_PRIVATE)


def test_engine_on_hand_made_facts():
    shellcode = bytes.fromhex("fc4883e4f0e8c0000000415141505251564831d2") + bytes(100)
    facts = _facts(
        [
            private(0x10000, 0x1000, c.PAGE_EXECUTE_READWRITE, c.PAGE_EXECUTE_READWRITE),
            private(0x20000, 0x1000, c.PAGE_EXECUTE_READ, c.PAGE_EXECUTE_READWRITE),
            private(0x30000, 0x1000, c.PAGE_READWRITE, c.PAGE_READWRITE),
        ],
        threads=[ThreadFact(7, 0x10000, 0x10010)],
        memory={0x10000: shellcode, 0x20000: bytes(0x1000)},
    )
    analysis = analyse(facts, min_severity=Severity.INFO)
    kinds = [(f.kind, hex(f.start), f.severity.name) for f in analysis.findings]
    assert kinds == [
        ("exec_rwx", "0x10000", "CRITICAL"),
        ("thread_start_unbacked", "0x10000", "HIGH"),
        ("thread_ip_unbacked", "0x10010", "HIGH"),
        ("exec_was_rwx", "0x20000", "INFO"),
    ]
    rwx = analysis.findings[0]
    assert rwx.disassembly.startswith("0x10000: cld; 0x10001: and rsp, 0xfffffffffffffff0")
    assert any("shellcode prologue" in line for line in rwx.evidence)
    ranked = analysis.findings[-1]
    assert ranked.ranked_down == [
        "the first bytes are all zero: no code has been written yet",
        "RWX-then-RX allocations are common (JIT compilers, unpacking stubs)",
    ]
    default = analyse(facts)
    assert [f.kind for f in default.findings][-1] == "thread_ip_unbacked"
    assert default.below_threshold == 1


def test_jit_host_ranks_private_code_down_but_keeps_it():
    code_bytes = bytes.fromhex("554889e54883ec20") + bytes(64)
    regions = [private(0x10000, 0x1000, c.PAGE_EXECUTE_READWRITE, c.PAGE_EXECUTE_READWRITE)]
    clr_path = "C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\clr.dll"
    clr = ModuleFact(0x7FF0000000, 0x100000, clr_path)
    clr_image = RegionFact(clr.base, clr.size, c.MEM_COMMIT, c.PAGE_EXECUTE_READ, clr.base, 0x80, c.MEM_IMAGE)
    plain = analyse(_facts(regions, memory={0x10000: code_bytes}), min_severity=Severity.INFO).findings
    jit_facts = _facts([*regions, clr_image], [clr], memory={0x10000: code_bytes})
    jit = analyse(jit_facts, min_severity=Severity.INFO).findings
    assert [f.kind for f in jit] == ["exec_rwx"]
    assert plain[0].severity == Severity.HIGH
    assert jit[0].severity == Severity.MEDIUM
    assert jit[0].ranked_down == ["the process hosts a JIT compiler (clr.dll)"]


def test_allow_list_rules():
    allow = AllowList.parse(
        "# known good\nexec_rwx module=unbacked process=wmiprvse.exe\n* address=0x20000-0x20fff\n", "t"
    )
    facts = _facts(
        [
            private(0x10000, 0x1000, c.PAGE_EXECUTE_READWRITE, c.PAGE_EXECUTE_READWRITE),
            private(0x20000, 0x1000, c.PAGE_EXECUTE_READ, c.PAGE_READWRITE),
            private(0x40000, 0x1000, c.PAGE_EXECUTE_READ, c.PAGE_READWRITE),
        ],
        memory={0x10000: b"\x90" * 16, 0x20000: b"\x90" * 16, 0x40000: b"\x90" * 16},
    )
    analysis = analyse(facts, allow_list=allow)
    assert [(f.kind, f.start) for f in analysis.findings] == [("exec_private", 0x40000)]
    assert analysis.allowed == 2
    with pytest.raises(InputError, match=r"t:1: expected KEY=VALUE"):
        AllowList.parse("exec_rwx colour=blue", "t")
    with pytest.raises(InputError, match="address must be HEX"):
        AllowList.parse("* address=zz", "t")


@pytest.mark.parametrize(
    ("path", "system", "user"),
    [
        ("C:\\Windows\\System32\\wbem\\wbemcore.dll", True, False),
        ("\\SystemRoot\\System32\\ntdll.dll", True, False),
        ("\\Device\\HarddiskVolume3\\Windows\\SysWOW64\\ntdll.dll", True, False),
        ("\\\\?\\C:\\ProgramData\\wbemcore.dll", False, True),
        ("C:\\Users\\Public\\Libraries\\wmiprov64.dll", False, True),
        ("C:\\Program Files\\Vendor\\agent.dll", False, False),
    ],
)
def test_path_classification(path, system, user):
    assert in_system_folder(path) is system
    assert in_user_writable_folder(path) is user
    assert "\\" in normalise_path(path)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("..\\..\\evil.dll", "evil.dll"),
        ("/etc/passwd", "etc_passwd"),
        ("....", "unnamed"),
        ("a b:c", "a_b_c"),
    ],
)
def test_safe_file_names(name, expected):
    assert safe_component(name) == expected
