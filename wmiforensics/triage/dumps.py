"""What a triage input is before any plugin runs: its files, their sha256, kind and capture time."""

from __future__ import annotations

import glob
import hashlib
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, List, Optional

from ..minidump.structs import MINIDUMP_HEADER

_HASH_CHUNK = 1 << 20
#: File name endings looked for inside folders; a file named on the command line is always taken.
DUMP_SUFFIXES = (".dmp", ".mdmp", ".raw", ".mem", ".img", ".bin", ".vmem", ".lime", ".core")


@dataclass(frozen=True)
class DumpFile:
    path: str
    sha256: str
    size: int


def expand_inputs(items: Iterable[str]) -> List[str]:
    """Files, folders (searched recursively for dump-like names) and globs, each file once, in order."""
    found: List[str] = []
    for item in items:
        matches = sorted(glob.glob(item, recursive=True)) if glob.has_magic(item) else [item]
        for match in matches:
            if os.path.isdir(match):
                for root, _dirs, files in sorted(os.walk(match)):
                    found += [
                        os.path.join(root, name)
                        for name in sorted(files)
                        if name.lower().endswith(DUMP_SUFFIXES)
                    ]
            else:
                found.append(match)
    unique: List[str] = []
    seen = set()
    for path in found:
        resolved = str(Path(path).resolve())
        if resolved not in seen:
            seen.add(resolved)
            unique.append(resolved)
    return unique


def sha256_of(path: str) -> str:
    """Streamed: a 64 GiB image costs 1 MiB of memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def describe(path: str) -> DumpFile:
    return DumpFile(path=path, sha256=sha256_of(path), size=os.path.getsize(path))


def is_minidump(path: str) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4) == b"MDMP"


def capture_time(path: str) -> tuple[Optional[datetime], str]:
    """When the memory was captured, and how we know: a minidump's header time, else the file's mtime."""
    with open(path, "rb") as handle:
        head = handle.read(MINIDUMP_HEADER.sizeof())
    if head.startswith(b"MDMP") and len(head) == MINIDUMP_HEADER.sizeof():
        stamp = MINIDUMP_HEADER.parse(head).TimeDateStamp
        if stamp:
            return datetime.fromtimestamp(stamp, timezone.utc), "Minidump written"
    try:
        return datetime.fromtimestamp(os.path.getmtime(path), timezone.utc), "Memory image file modified"
    except OSError:
        return None, "Unknown"
