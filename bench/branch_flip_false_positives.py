#!/usr/bin/env python3
"""False positives of the flipped-branch check (`wmiforensics/engine/branches.py`) on compiled code.

Runs `find_flip` over the first 0x80 bytes of every function start of code we did not write:
MSVC-built PE launchers and installers shipped inside Python installations (x64 function starts from
their ``.pdata`` exception directory, x86 starts after ``ret``/``int3`` padding) and x86-64 ELF shared
objects from /usr/lib (starts after ``ret``/``nop``/``int3`` padding, aligned to 16). Prints files,
function starts and every hit per group; results also go to
``bench/out/branch_flip_false_positives.json``.

Run: ``python bench/branch_flip_false_positives.py [--max-files-per-group 400]``
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import struct
import sys
from pathlib import Path
from typing import Callable, Iterator, List, Tuple

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from wmiforensics.engine import code  # noqa: E402
from wmiforensics.engine.branches import FLIP_WINDOW, MAX_INSTRUCTIONS, find_flip  # noqa: E402
from wmiforensics.engine.facts import ModuleFact  # noqa: E402

PE_PATTERNS = [
    os.path.expanduser("~/.pyenv/versions/*/lib/python*/**/*.exe"),
    os.path.expanduser("~/.pyenv/versions/*/lib/python*/**/*.dll"),
    os.path.expanduser("~/.pyenv/versions/*/lib/python*/**/*.pyd"),
    "/usr/lib/python3*/**/*.exe",
]
ELF_PATTERNS = ["/usr/lib/x86_64-linux-gnu/*.so*"]
#: A code image: (bytes laid out at their virtual addresses from 0, arch, function start offsets).
Image = Tuple[bytes, str, List[int]]


def padding_starts(text: bytes, base: int, align: int = 1) -> Iterator[int]:
    """Offsets right after a ``ret``/``int3``/``nop`` run where code resumes: likely function starts."""
    for position in range(1, len(text)):
        resumes = text[position - 1] in (0xC3, 0xCC, 0x90) and text[position] not in (0xCC, 0x90, 0x00)
        if resumes and (base + position) % align == 0:
            yield base + position


def pe_image(data: bytes) -> List[Image]:
    import pefile

    try:
        image = pefile.PE(data=data)
    except pefile.PEFormatError:
        return []
    arch = {0x8664: "x64", 0x14C: "x86"}.get(image.FILE_HEADER.Machine)
    if arch is None:
        return []
    mapped = image.get_memory_mapped_image()
    if arch == "x64" and hasattr(image, "DIRECTORY_ENTRY_EXCEPTION"):
        starts = sorted({entry.struct.BeginAddress for entry in image.DIRECTORY_ENTRY_EXCEPTION})
    else:
        starts = []
        for section in image.sections:
            if section.Characteristics & 0x20000000:  # IMAGE_SCN_MEM_EXECUTE
                text = mapped[section.VirtualAddress : section.VirtualAddress + section.Misc_VirtualSize]
                starts.extend(padding_starts(text, section.VirtualAddress))
    return [(mapped, arch, starts)]


def elf_image(data: bytes) -> List[Image]:
    """The executable sections of an ELF64 little-endian x86-64 file, laid out by file offset."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1 or struct.unpack_from("<H", data, 18)[0] != 62:
        return []
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    entsize, count = struct.unpack_from("<HH", data, 0x3A)
    starts: List[int] = []
    for index in range(min(count, 4096)):
        at = shoff + index * entsize
        if at + 64 > len(data):
            break
        kind, flags, _, offset, size = struct.unpack_from("<IQQQQ", data, at + 4)
        if kind == 1 and flags & 0x4 and offset + size <= len(data):  # SHT_PROGBITS, SHF_EXECINSTR
            starts.extend(padding_starts(data[offset : offset + size], offset, 16))
    return [(data, "x64", starts)] if starts else []


def survey(patterns: List[str], load: Callable[[bytes], List[Image]], limit: int) -> dict:
    seen, files, functions, hits = set(), 0, 0, []
    for pattern in patterns:
        for name in sorted(glob.glob(pattern, recursive=True)):
            path = Path(name)
            if files >= limit or not path.is_file() or path.is_symlink():
                continue
            data = path.read_bytes()
            digest = hashlib.sha256(data).digest()
            if digest in seen:
                continue
            seen.add(digest)
            images = load(data)
            files += bool(images)
            for mapped, arch, starts in images:
                module = ModuleFact(0, len(mapped), str(path))

                def read(address: int, length: int, mapped=mapped) -> bytes:
                    return mapped[address : address + length] if address >= 0 else b""

                for start in starts:
                    functions += 1
                    window = code.disassemble(read(start, FLIP_WINDOW), start, arch, MAX_INSTRUCTIONS)
                    found = find_flip(window, module, read, arch)
                    if found is not None:
                        hits.append({"file": str(path), "offset": hex(start), "why": found[2]})
    return {"files": files, "function_starts": functions, "hits": hits}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-files-per-group", type=int, default=400)
    args = parser.parse_args()
    results = {
        "MSVC-built PEs in Python installations": survey(PE_PATTERNS, pe_image, args.max_files_per_group),
        "x86-64 ELF shared objects (/usr/lib/x86_64-linux-gnu)": survey(
            ELF_PATTERNS, elf_image, args.max_files_per_group
        ),
    }
    print("| group | files | function starts | flagged |\n|---|---|---|---|")
    for group, result in results.items():
        print(f"| {group} | {result['files']} | {result['function_starts']:,} | {len(result['hits'])} |")
    for group, result in results.items():
        for hit in result["hits"]:
            print(f"{group}: {hit['file']} {hit['offset']}: {hit['why']}")
    out = REPO / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "branch_flip_false_positives.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
