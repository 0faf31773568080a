"""Lab dumps round-trip through minidump readers this project did not write.

Three independent readers: the PyPI ``minidump`` package, LLVM's ``obj2yaml-22`` and ``lldb-22``
(through the system Python's ``lldb`` module). Each must see the modules, threads, memory, handles and
system facts the model describes, in both the x64 (19045) and the x86 (22631) baseline.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from fixtures.labdump import build_wmiprvse, write_minidump_file
from fixtures.labdump.constants import PAGE_EXECUTE_READ, PAGE_GUARD, PAGE_NOACCESS

BASELINES = {"x64": 19045, "x86": 22631}
OBJ2YAML = "/usr/bin/obj2yaml-22"
SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.fixture(scope="module", params=sorted(BASELINES))
def lab(request, tmp_path_factory):
    arch = request.param
    proc = build_wmiprvse(arch, BASELINES[arch], seed=0)
    path = tmp_path_factory.mktemp("labdump") / f"wmiprvse-{arch}.dmp"
    write_minidump_file(proc, str(path))
    return proc, path


@pytest.fixture(scope="module")
def parsed(lab):
    minidumpfile = pytest.importorskip(
        "minidump.minidumpfile", reason="needs the PyPI minidump package (0.0.24)"
    )
    return minidumpfile.MinidumpFile.parse(str(lab[1]))


# --- PyPI minidump package --------------------------------------------------------------------------


def test_minidump_package_reads_the_module_list(lab, parsed):
    proc, _ = lab
    modules = parsed.modules.modules
    assert [m.name for m in modules] == [m.path for m in proc.modules]
    assert [(m.baseaddress, m.size) for m in modules] == [(m.base, m.size) for m in proc.modules]
    assert [(m.checksum, m.timestamp) for m in modules] == [(m.checksum, m.timestamp) for m in proc.modules]
    build_and_qfe = (proc.system.build_string[:5], modules[1].versioninfo.dwFileVersionLS)
    assert build_and_qfe[1] >> 16 == int(build_and_qfe[0])
    system_dir = "System32" if proc.arch == "x64" else "SysWOW64"
    assert modules[1].name == f"C:\\Windows\\{system_dir}\\ntdll.dll"
    assert modules[0].name == f"C:\\Windows\\{system_dir}\\wbem\\WmiPrvSE.exe"


def test_minidump_package_reads_threads_contexts_and_stacks(lab, parsed):
    proc, path = lab
    data = path.read_bytes()
    threads = parsed.threads.threads
    assert [t.ThreadId for t in threads] == [t.thread_id for t in proc.threads]
    context_size = 1232 if proc.arch == "x64" else 716
    for parsed_thread, thread in zip(threads, proc.threads):
        assert parsed_thread.Teb == thread.teb
        assert parsed_thread.SuspendCount == thread.suspend_count
        assert parsed_thread.ThreadContext.DataSize == context_size
        context = parsed_thread.ContextObject
        if proc.arch == "x64":
            assert (context.Rip, context.Rsp) == (thread.instruction_pointer, thread.stack_pointer)
        else:
            assert (context.Eip, context.Esp) == (thread.instruction_pointer, thread.stack_pointer)
        stack = parsed_thread.Stack
        assert stack.StartOfMemoryRange == thread.stack_pointer
        assert stack.DataSize == thread.stack_base - thread.stack_pointer
        assert data[stack.Rva : stack.Rva + stack.DataSize] == proc.read(thread.stack_pointer, stack.DataSize)
        return_address = int.from_bytes(data[stack.Rva : stack.Rva + proc.pointer_size], "little")
        assert proc.region_at(return_address).protect == PAGE_EXECUTE_READ


def test_minidump_package_reads_memory64_ranges_and_bytes(lab, parsed):
    proc, _ = lab
    segments = parsed.memory_segments_64.memory_segments
    captured = proc.captured_regions()
    assert [(s.start_virtual_address, s.size) for s in segments] == [(r.base, r.size) for r in captured]
    reader = parsed.get_reader()
    etw = proc.address_of("ntdll.dll", "EtwEventWrite")
    expected_prologue = (
        bytes.fromhex("4C8BDC4883EC58") if proc.arch == "x64" else bytes.fromhex("8BFF558BEC83E4F8")
    )
    assert reader.read(etw, len(expected_prologue)) == expected_prologue
    for module in proc.modules:
        assert reader.read(module.base, 2) == b"MZ"
    peb_image_base_offset = 0x10 if proc.arch == "x64" else 0x08
    image_base = reader.read(proc.peb + peb_image_base_offset, proc.pointer_size)
    assert int.from_bytes(image_base, "little") == proc.module("WmiPrvSE.exe").base
    assert struct.unpack("<I", reader.read(0x7FFE0260, 4))[0] == proc.build


def test_minidump_package_reads_the_memory_info_list(lab, parsed):
    proc, _ = lab
    infos = parsed.memory_info.infos
    expected = proc.memory_map()
    assert len(infos) == len(expected)
    for info, region in zip(infos, expected):
        assert (info.BaseAddress, info.RegionSize, info.AllocationBase) == (
            region.base,
            region.size,
            region.allocation_base,
        )
        assert info.AllocationProtect == region.allocation_protect
        assert info.State.value == region.state
        assert (info.Type.value if info.Type else 0) == region.type
        if region.protect and not region.protect & PAGE_GUARD:
            assert info.Protect.value == region.protect
    assert infos[0].BaseAddress == 0 and infos[0].Protect.value == PAGE_NOACCESS
    assert infos[-1].BaseAddress + infos[-1].RegionSize == proc.highest_user_address
    if proc.arch == "x86":
        assert all(info.BaseAddress + info.RegionSize <= 0x8000_0000 for info in infos)


def test_minidump_package_reads_handles(lab, parsed):
    proc, _ = lab
    handles = parsed.handles.handles
    assert len(handles) == len(proc.handles) >= 20
    for parsed_handle, handle in zip(handles, proc.handles):
        assert parsed_handle.Handle == handle.value
        assert parsed_handle.TypeName == handle.type_name
        assert (parsed_handle.ObjectName or "") == handle.object_name
        assert parsed_handle.GrantedAccess == handle.granted_access
        assert (parsed_handle.HandleCount, parsed_handle.PointerCount) == (
            handle.handle_count,
            handle.pointer_count,
        )
    names = {h.ObjectName for h in handles}
    assert r"\REGISTRY\MACHINE\SOFTWARE\Microsoft\WBEM\CIMOM" in names
    assert any(name and name.startswith("\\Device\\NamedPipe\\") for name in names)


def test_minidump_package_reads_system_misc_thread_info_and_unloaded_modules(lab, parsed):
    proc, _ = lab
    system = parsed.sysinfo
    assert system.ProcessorArchitecture.name == ("AMD64" if proc.arch == "x64" else "INTEL")
    assert (system.MajorVersion, system.MinorVersion, system.BuildNumber) == (10, 0, proc.build)
    assert system.NumberOfProcessors == proc.system.processor_count
    if proc.arch == "x86":
        assert struct.pack("<3I", *system.VendorId) == b"GenuineIntel"
        assert system.VersionInformation == proc.system.cpuid_version
    assert parsed.misc_info.ProcessId == proc.process_id
    assert parsed.misc_info.ProcessCreateTime == proc.process_create_time
    starts = [info.StartAddress for info in parsed.thread_info.infos]
    assert starts == [t.start_address for t in proc.threads]
    assert starts[1] == proc.address_of("ntdll.dll", "TppWorkerThread")
    unloaded = parsed.unloaded_modules.modules
    assert [(u.name, u.baseaddress) for u in unloaded] == [(u.path, u.base) for u in proc.unloaded_modules]
    assert "procdump" in parsed.comment_w.data


def test_minidump_package_walks_teb_peb_and_process_parameters(lab, parsed):
    proc, _ = lab
    peb = parsed.peb
    assert peb is not None and peb.address == proc.peb
    assert peb.image_base_address == proc.module("WmiPrvSE.exe").base
    assert peb.image_path == proc.image_path
    assert peb.command_line == proc.command_line
    environment = {entry["name"]: entry["value"] for entry in peb.environment_variables}
    assert environment["SystemRoot"] == "C:\\Windows"
    assert environment["PROCESSOR_ARCHITECTURE"] == ("AMD64" if proc.arch == "x64" else "x86")


# --- LLVM obj2yaml ------------------------------------------------------------------------------------


def _obj2yaml(path: Path) -> dict:
    if not Path(OBJ2YAML).exists():
        pytest.skip(f"{OBJ2YAML} is missing (Debian package llvm-22)")
    yaml = pytest.importorskip("yaml", reason="PyYAML reads obj2yaml's output")
    result = subprocess.run([OBJ2YAML, str(path)], capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    text = result.stdout.decode("utf-8", "replace").replace("--- !minidump", "---", 1)
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def test_obj2yaml_reads_the_stream_directory_modules_threads_and_memory(lab):
    proc, path = lab
    document = _obj2yaml(path)
    assert document["Flags"] == 0x461826
    assert document["Version"] & 0xFFFF == 0xA793
    streams = {}
    for stream in document["Streams"]:
        streams.setdefault(stream["Type"], stream)
    assert [s["Type"] for s in document["Streams"]] == [
        "ThreadList",
        "ThreadInfoList",
        "ModuleList",
        "UnloadedModuleList",
        "MemoryInfoList",
        "Memory64List",
        "CommentW",
        "SystemInfo",
        "MiscInfo",
        "HandleData",
        "Token",
        "SystemMemoryInfo",
        "ProcessVMCounters",
        0,
        0,
        0,
        0,
    ]
    modules = streams["ModuleList"]["Modules"]
    assert [(m["Module Name"], m["Base of Image"]) for m in modules] == [
        (m.path, m.base) for m in proc.modules
    ]
    assert [t["Thread Id"] for t in streams["ThreadList"]["Threads"]] == [t.thread_id for t in proc.threads]
    ranges = streams["Memory64List"]["Memory Ranges"]
    assert [r["Start of Memory Range"] for r in ranges] == [r.base for r in proc.captured_regions()]
    ntdll_header = next(r for r in ranges if r["Start of Memory Range"] == proc.module("ntdll.dll").base)
    assert bytes.fromhex(ntdll_header["Content"])[:2] == b"MZ"
    system = streams["SystemInfo"]
    assert system["Build Number"] == proc.build and system["Platform ID"] == "Win32NT"
    assert system["Processor Arch"] == ("AMD64" if proc.arch == "x64" else "X86")
    infos = streams["MemoryInfoList"]["Memory Ranges"]
    assert len(infos) == len(proc.memory_map())
    guard_pages = [info for info in infos if "PAGE_GUARD" in (info.get("Protect") or [])]
    assert len(guard_pages) == len(proc.threads)
    assert all(info["Protect"] == ["PAGE_READ_WRITE", "PAGE_GUARD"] for info in guard_pages)


# --- lldb ---------------------------------------------------------------------------------------------

LLDB_SCRIPT = r"""
import json, sys
import lldb
debugger = lldb.SBDebugger.Create()
target = debugger.CreateTarget(None)
process = target.LoadCore(sys.argv[1])
modules = []
for index in range(target.GetNumModules()):
    module = target.GetModuleAtIndex(index)
    header = module.GetObjectFileHeaderAddress()
    modules.append([module.GetFileSpec().fullpath, header.GetLoadAddress(target)])
threads = [[t.GetThreadID(), t.GetFrameAtIndex(0).GetPC(), t.GetFrameAtIndex(0).GetSP()] for t in process]
error = lldb.SBError()
probe = int(sys.argv[2])
memory = process.ReadMemory(probe, 16, error)
regions = []
info = lldb.SBMemoryRegionInfo()
region_list = process.GetMemoryRegions()
for index in range(region_list.GetSize()):
    region_list.GetMemoryRegionAtIndex(index, info)
    regions.append([info.GetRegionBase(), info.GetRegionEnd(), info.IsExecutable()])
report = {"pid": process.GetProcessID(), "triple": target.GetTriple(), "modules": modules}
report.update(threads=threads, memory=memory.hex() if error.Success() else None, regions=regions)
print(json.dumps(report))
"""


def _lldb(path: Path, probe: int) -> dict:
    if not Path(SYSTEM_PYTHON).exists() or shutil.which("lldb-22") is None:
        pytest.skip("lldb-22 and the system Python with its lldb module are needed")
    check = subprocess.run([SYSTEM_PYTHON, "-c", "import lldb"], capture_output=True)
    if check.returncode != 0:
        pytest.skip("the system Python cannot import lldb (Debian package python3-lldb-22)")
    result = subprocess.run(
        [SYSTEM_PYTHON, "-c", LLDB_SCRIPT, str(path), str(probe)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_lldb_loads_modules_threads_memory_and_regions(lab):
    proc, path = lab
    nt_trace_event = proc.address_of("ntdll.dll", "NtTraceEvent")
    report = _lldb(path, nt_trace_event)
    assert report["pid"] == proc.process_id
    assert report["triple"].startswith("x86_64" if proc.arch == "x64" else "i386")
    assert report["modules"] == [[m.path, m.base] for m in proc.modules]
    expected_threads = [[t.thread_id, t.instruction_pointer, t.stack_pointer] for t in proc.threads]
    assert report["threads"] == expected_threads
    assert bytes.fromhex(report["memory"]) == proc.read(nt_trace_event, 16)
    assert [[r[0], r[1]] for r in report["regions"]] == [[r.base, r.end] for r in proc.memory_map()]
    executable = [r[0] for r in report["regions"] if r[2]]
    assert proc.region_at(nt_trace_event).base in executable
