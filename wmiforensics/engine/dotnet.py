""".NET in WmiPrvSE: assemblies in memory no file backs while the CLR is loaded.

``Assembly.Load(byte[])`` (execute-assembly, PowerShell reflection, malicious .NET WMI providers)
leaves the raw assembly, a PE with a CLI header (IMAGE_COR20_HEADER, data directory 14), in private
memory that is usually not executable: the CLR compiles its IL elsewhere. Legitimate .NET WMI
providers are loaded from the GAC or System32 as images and are not reported.
"""

from __future__ import annotations

import struct
from typing import Iterator

from ..minidump import constants
from . import pe
from .detectors import HEADER_WINDOW, Context, _allocations, _protections
from .findings import Confidence, Finding, Severity

CLR_MODULES = ("clr.dll", "coreclr.dll", "mscorwks.dll")
#: IMAGE_COR20_HEADER.cb is 0x48; its MetaData directory points at the "BSJB" metadata root.
COR20_SIZE = 0x48
METADATA_SIGNATURE = b"BSJB"


def detect_unbacked_assemblies(context: Context) -> Iterator[Finding]:
    """PE images with a CLI header in private or mapped, non-executable memory while the CLR runs."""
    facts = context.facts
    runtime = [module for module in facts.modules if module.name.lower() in CLR_MODULES]
    if not runtime:
        return
    for allocation in _allocations(facts.regions, (constants.MEM_PRIVATE, constants.MEM_MAPPED)):
        if any(region.is_executable for region in allocation):
            continue  # executable PEs are pe_injected findings already
        base = allocation[0].allocation_base
        if facts.read(base, 2) != b"MZ":
            continue
        header = pe.parse_headers(facts.read(base, HEADER_WINDOW), base)
        if header is None or not header.clr_directory[0]:
            continue
        rva, size = header.clr_directory
        cor20 = facts.read(base + rva, COR20_SIZE) if rva < header.size_of_image else b""
        if len(cor20) < 16 or struct.unpack_from("<I", cor20)[0] != COR20_SIZE:
            continue
        metadata_rva, _ = struct.unpack_from("<II", cor20, 8)
        runtime_version = struct.unpack_from("<HH", cor20, 4)
        has_metadata = facts.read(base + metadata_rva, 4) == METADATA_SIGNATURE
        end = max(region.end for region in allocation)
        finding = Finding(
            "dotnet_unbacked_assembly",
            Severity.HIGH,
            Confidence.HIGH if has_metadata else Confidence.MEDIUM,
            base,
            end,
            f"a .NET assembly ({header.arch}, {'DLL' if header.is_dll else 'EXE'}) lies in "
            f"{allocation[0].type_name} memory no file backs while {runtime[0].name} is loaded: loaded from "
            "bytes (Assembly.Load), not from the GAC or System32",
            protection=_protections(allocation),
            initial_protection=allocation[0].allocation_protect_name,
            region_type=allocation[0].type_name,
            module="unbacked",
            pe_base=base,
        )
        finding.evidence.append(
            f"CLI header at RVA 0x{rva:x} (runtime {runtime_version[0]}.{runtime_version[1]}), metadata "
            + ("'BSJB' root present" if has_metadata else "root not found")
        )
        finding.evidence.append(f"runtime {runtime[0].path}")
        context.preview(finding, base)
        yield finding
