#!/usr/bin/env python3
"""False positives of the compiled-code rules on ordinary compiled code found on this machine.

Scans, file by file, with ``yara_rules/wmi_vtable_calls.yar`` (the rules meant for unbacked code):
Windows code built by mingw-w64 (the COFF objects in its static libraries, x64 and x86), MSVC-built
PE launchers shipped inside Python installations, and x86-64 ELF shared objects from /usr/lib.
Prints a Markdown table (files, MiB, files with a hit per group) and lists every hit; results also go
to ``bench/out/code_rule_false_positives.json``.

Run: ``python bench/code_rule_false_positives.py [--max-mib-per-group 400]``
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from wmiforensics.yarascan import RulePack  # noqa: E402

GROUPS = {
    "mingw-w64 x64 static libraries (COFF)": [
        "/usr/x86_64-w64-mingw32/lib/*.a",
        "/usr/lib/gcc/x86_64-w64-mingw32/*/*.a",
    ],
    "mingw-w64 x86 static libraries (COFF)": [
        "/usr/i686-w64-mingw32/lib/*.a",
        "/usr/lib/gcc/i686-w64-mingw32/*/*.a",
    ],
    "PE executables in Python installations (MSVC)": [
        os.path.expanduser("~/.pyenv/versions/*/lib/python*/site-packages/**/*.exe"),
        os.path.expanduser("~/.pyenv/versions/*/lib/python*/**/*.exe"),
        "/usr/lib/python3*/**/*.exe",
    ],
    "x86-64 ELF shared objects (/usr/lib/x86_64-linux-gnu)": ["/usr/lib/x86_64-linux-gnu/*.so*"],
}


def files_of(patterns, limit: int):
    seen, total = [], 0
    for pattern in patterns:
        for name in sorted(glob.glob(pattern, recursive=True)):
            path = Path(name)
            if path in seen or not path.is_file() or path.is_symlink():
                continue
            size = path.stat().st_size
            if total + size > limit:
                return seen, total
            seen.append(path)
            total += size
    return seen, total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-mib-per-group", type=int, default=400)
    parser.add_argument("--engine", choices=["yara-x", "yara-python"], default=None)
    args = parser.parse_args()
    pack = RulePack.from_file(str(REPO / "yara_rules" / "wmi_vtable_calls.yar"), engine=args.engine)
    results = {"engine": pack.engine, "groups": {}}
    print("| code | files | MiB | files with a hit |")
    print("| --- | --- | --- | --- |")
    for group, patterns in GROUPS.items():
        paths, total = files_of(patterns, args.max_mib_per_group << 20)
        hits = {}
        for path in paths:
            found = sorted(info.identifier for info, _ in pack.matches(path.read_bytes()))
            if found:
                hits[str(path)] = found
        results["groups"][group] = {"files": len(paths), "bytes": total, "hits": hits}
        print(f"| {group} | {len(paths)} | {total / (1 << 20):.0f} | {len(hits)} |")
    for result in results["groups"].values():
        for path, found in result["hits"].items():
            print(f"hit: {path}: {', '.join(found)}")
    out = REPO / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "code_rule_false_positives.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
