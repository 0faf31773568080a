"""``--dump`` for every plugin: write only bytes the input holds, within a per-run budget.

A range's declared size is the input's claim; its captured bytes are what exists. Each file is
written sparsely: captured runs (from :mod:`wmiforensics.captured`) at their true offsets, holes
left unwritten (a sparse file on disk, never zeros in memory), and a ``.missing.txt`` map beside it
listing every range the input did not hold. The bytes written by one run are capped by
``--dump-limit`` (MiB); a file that would pass the cap, or that cannot be written, is not written,
and the finding says why while the run goes on. A rebuilt PE is streamed the same way: only its
header page is patched in memory, never a buffer of the declared ``SizeOfImage``.
"""

from __future__ import annotations

import logging
import re
import struct
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Tuple

from .. import captured
from ..engine import pe
from ..engine.facts import ProcessFacts

vollog = logging.getLogger("wmiforensics")

#: Default of ``--dump-limit``: bytes written by one run, in MiB.
DEFAULT_DUMP_LIMIT_MIB = 512
#: Largest range one file covers; larger ones are cut, and the file name says so.
MAX_DUMP_BYTES = 256 << 20
#: PE headers patched in memory are at most this long (one page, like the loader maps them).
HEADER_PAGE = 0x1000
_CHUNK = 1 << 20
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

OpenFile = Callable[[str], object]


def safe_component(text: str, limit: int = 64) -> str:
    """A file-name part that cannot leave the output folder, whatever the dump called things."""
    cleaned = _UNSAFE.sub("_", text).strip("._-")[:limit]
    return cleaned or "unnamed"


def dump_limit_requirement():
    """The ``--dump-limit`` option shared by every plugin with ``--dump``."""
    from volatility3.framework.configuration import requirements

    return requirements.IntRequirement(
        name="dump_limit",
        description=f"--dump writes at most this many MiB of captured bytes per run "
        f"(default {DEFAULT_DUMP_LIMIT_MIB})",
        default=DEFAULT_DUMP_LIMIT_MIB,
        optional=True,
    )


@dataclass
class Dumper:
    """Writes ranges of one run's processes, counting captured bytes against the run's budget."""

    open_file: OpenFile
    limit: int = DEFAULT_DUMP_LIMIT_MIB << 20
    written: int = 0
    _warned: bool = False
    _names: set = field(default_factory=set)

    @classmethod
    def from_config(cls, open_file: Optional[OpenFile], config) -> Optional[Dumper]:
        if open_file is None:
            return None
        mib = config.get("dump_limit")
        mib = DEFAULT_DUMP_LIMIT_MIB if mib is None else max(int(mib), 0)
        return cls(open_file, mib << 20)

    def write_range(
        self,
        facts: ProcessFacts,
        stem: str,
        start: int,
        size: int,
        header: Optional[bytes] = None,
        suffix: str = ".bin",
        with_range: bool = True,
    ) -> List[str]:
        """Write [start, start + size) (``header`` replacing its first bytes).

        Returns the names of the files written (the data file, then its ``.missing.txt`` map when
        the input lacks part of the range), or one "not dumped: ..." sentence saying why not.
        """
        cut = size > MAX_DUMP_BYTES
        size = min(size, MAX_DUMP_BYTES)
        if size <= 0:
            return ["not dumped: empty range"]
        name = f"{stem}.{start:x}-{start + size:x}" if with_range else stem
        name = f"{name}{'.cut' if cut else ''}{suffix}"
        if name in self._names:
            return [name]
        runs = list(captured.present_runs(facts.present_spans, start, start + size))
        if header:
            header = header[:size]
            runs = _merge([(start, start + len(header)), *runs])
        wanted = sum(end - begin for begin, end in runs)
        if not wanted:
            return [f"not dumped: none of 0x{start:x}-0x{start + size:x} is captured"]
        if self.written + wanted > self.limit:
            return [self._over_budget(wanted)]
        missing = _holes(runs, start, start + size)
        names = [name]
        try:
            with self.open_file(name) as handle:
                for begin, end in runs:
                    for offset in range(begin, end, _CHUNK):
                        data = _bytes_at(facts, offset, min(_CHUNK, end - offset), start, header)
                        handle.seek(offset - start)
                        handle.write(data)
                        self.written += len(data)
                handle.truncate(size)
            if missing:
                names.append(f"{name}.missing.txt")
                with self.open_file(names[-1]) as handle:
                    handle.write(_missing_map(missing, start).encode())
        except (OSError, ValueError) as error:
            return [f"not dumped: {name}: {getattr(error, 'strerror', None) or error}"]
        self._names.add(name)
        return names

    def write_bytes(self, name: str, data: bytes) -> List[str]:
        """Write ``data`` whole as ``name`` (a name the suite built), within the run's budget."""
        if name in self._names:
            return [name]
        if self.written + len(data) > self.limit:
            return [self._over_budget(len(data))]
        try:
            with self.open_file(name) as handle:
                handle.write(data)
        except (OSError, ValueError) as error:
            return [f"not dumped: {name}: {getattr(error, 'strerror', None) or error}"]
        self.written += len(data)
        self._names.add(name)
        return [name]

    def write_pe(self, facts: ProcessFacts, stem: str, base: int) -> List[str]:
        """A loadable file from an image as mapped (intact or rebuilt headers); [] if no PE is there."""
        page = facts.read(base, HEADER_PAGE)
        header = pe.parse_headers(page, base)
        patched: Optional[bytes] = None
        if header is not None:
            patched = unmap_headers(page, header)
        else:
            wiped = pe.find_wiped_headers(page, base)
            if wiped is None or wiped[0] != "nt_headers" or wiped[2] is None:
                return [] if wiped is None else ["PE not rebuilt: only a section table survives"]
            offset, header = wiped[1], wiped[2]
            if offset < 0x40:
                return ["PE not rebuilt: the NT headers start where the DOS header belongs"]
            patched = unmap_headers(restore_dos_header(page, offset), header)
        if header.size_of_image <= 0:
            return ["PE not rebuilt: SizeOfImage is 0"]
        return self.write_range(facts, stem, base, header.size_of_image, patched, ".pe", with_range=False)

    def _over_budget(self, wanted: int) -> str:
        if not self._warned:
            vollog.warning(
                f"--dump-limit of {self.limit >> 20} MiB reached: further files are not written "
                "(raise it with --dump-limit)"
            )
            self._warned = True
        return (
            f"not dumped: {wanted:,} captured bytes would pass the run's --dump-limit of "
            f"{self.limit >> 20} MiB ({self.written:,} bytes written)"
        )


def _bytes_at(facts, address: int, length: int, start: int, header: Optional[bytes]) -> bytes:
    if header and address - start < len(header):
        inside = header[address - start : address - start + length]
        rest = facts.read(address + len(inside), length - len(inside)) if length > len(inside) else b""
        return inside + rest
    return facts.read(address, length)


def _merge(runs: List[Tuple[int, int]]) -> List[Tuple[int, int]]:
    merged: List[Tuple[int, int]] = []
    for begin, end in sorted(runs):
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((begin, end))
    return merged


def _holes(runs: List[Tuple[int, int]], start: int, end: int) -> List[Tuple[int, int]]:
    holes, cursor = [], start
    for begin, finish in runs:
        if begin > cursor:
            holes.append((cursor, begin))
        cursor = max(cursor, finish)
    if cursor < end:
        holes.append((cursor, end))
    return holes


def _missing_map(holes: List[Tuple[int, int]], start: int) -> str:
    lines = ["# file offset range\taddress range\tbytes (not captured: left as zeros in the sparse file)"]
    for begin, end in holes:
        lines.append(f"0x{begin - start:x}-0x{end - start:x}\t0x{begin:x}-0x{end:x}\t{end - begin}")
    return "\n".join(lines) + "\n"


def restore_dos_header(page: bytes, nt_offset: int) -> bytes:
    """A minimal DOS header (``MZ``, ``e_lfanew``) over a wiped one, so PE tools find the NT headers."""
    fixed = bytearray(page)
    fixed[0:2] = pe.IMAGE_DOS_SIGNATURE
    struct.pack_into("<I", fixed, 0x3C, nt_offset)
    return bytes(fixed)


def unmap_headers(page: bytes, header: pe.PeHeader) -> bytes:
    """The header page with each section's raw pointer and size set to its virtual ones.

    This "unmaps" an image the way memory dumpers such as pe-sieve do, so PE tools open the file.
    Every write is bounds-checked against the page: a SizeOfImage or section table that does not
    fit leaves the rest of the page as it was.
    """
    image = bytearray(page[: max(min(len(page), header.size_of_image), 0)])
    field_at = header.nt_offset + 20
    if field_at + 2 > len(image):
        return bytes(image)
    size_of_optional = struct.unpack_from("<H", image, field_at)[0]
    table = header.nt_offset + 24 + size_of_optional
    for index, section in enumerate(header.sections):
        at = table + index * 40
        if at + 24 > len(image):
            break
        size = max(section.virtual_size, section.raw_size)
        struct.pack_into("<II", image, at + 16, size, section.virtual_address)
    return bytes(image)


__all__ = [
    "DEFAULT_DUMP_LIMIT_MIB",
    "MAX_DUMP_BYTES",
    "Dumper",
    "dump_limit_requirement",
    "restore_dos_header",
    "safe_component",
    "unmap_headers",
]
