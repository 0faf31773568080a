"""x64 page-table walking in bulk: whole tables per read, PTE runs per virtual range.

Volatility translates one address at a time; deriving the *current* protection of every page in a
process that way costs a Python call per page. Reading each page-table page once and decoding
its 512 entries with ``struct`` keeps the cost near one read per 2 MiB of mapped address space.
Layout: Intel SDM Vol. 3A §4.5 (4-level paging); Windows software PTE fields come from the ISF.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, Optional, Tuple

PRESENT, WRITABLE, USER, LARGE = 1 << 0, 1 << 1, 1 << 2, 1 << 7
NO_EXECUTE = 1 << 63
PFN_MASK = 0x000F_FFFF_FFFF_F000
_TABLE = struct.Struct("<512Q")
_SHIFTS = (39, 30, 21, 12)  # PML4, PDPT, PD, PT
_CANONICAL_HIGH = 0xFFFF_0000_0000_0000

PhysicalReader = Callable[[int, int], bytes]


@dataclass(frozen=True)
class SoftwarePteLayout:
    """Bit positions of the Windows software PTE fields (from ``_MMPTE_SOFTWARE``)."""

    protection_shift: int = 5
    protection_bits: int = 5
    prototype_bit: int = 10
    transition_bit: int = 11
    copy_on_write_bit: int = 9

    def protection_index(self, entry: int) -> int:
        return (entry >> self.protection_shift) & ((1 << self.protection_bits) - 1)


class PageTableWalker:
    """Walks one address space (one DTB) over a physical reader, caching table pages."""

    def __init__(self, read_physical: PhysicalReader, dtb: int) -> None:
        self._read = read_physical
        self._dtb = dtb & PFN_MASK
        self._tables: Dict[int, Tuple[int, ...]] = {}

    def _table(self, physical: int) -> Optional[Tuple[int, ...]]:
        if physical not in self._tables:
            data = self._read(physical, 0x1000)
            self._tables[physical] = _TABLE.unpack(data) if len(data) == 0x1000 else ()
        return self._tables[physical] or None

    def entries(self, start: int, end: int) -> Iterator[Tuple[int, int, int]]:
        """(virtual address, size, leaf entry) for every non-zero leaf entry in [start, end).

        Leaf entries are PTEs (4 KiB) or present large PDEs/PDPTEs. Non-present PTEs that are not
        zero (Windows software, prototype or transition PTEs) are yielded too; zero entries and
        absent tables are skipped, so huge reserved ranges cost almost nothing.
        """
        yield from self._walk(self._dtb, 0, start & ~0xFFF, end, 0)

    def _walk(
        self, table_address: int, base: int, start: int, end: int, level: int
    ) -> Iterator[Tuple[int, int, int]]:
        table = self._table(table_address)
        if table is None:
            return
        shift = _SHIFTS[level]
        span = 1 << shift
        first = (start >> shift) & 0x1FF
        for index in range(first, 512):
            address = base | (index << shift)
            if level == 0 and index >= 256:
                address |= _CANONICAL_HIGH
            if address >= end:
                return
            entry = table[index]
            if not entry:
                continue
            if level == 3:
                yield address, 0x1000, entry
                continue
            if not entry & PRESENT:
                continue
            if level in (1, 2) and entry & LARGE:
                yield address, span, entry
                continue
            child_start = max(start, address)
            yield from self._walk(entry & PFN_MASK, address, child_start, min(end, address + span), level + 1)


def hardware_protection(entry: int) -> int:
    """PAGE_* value from a present PTE's R/W, NX and Windows copy-on-write bits."""
    executable = not entry & NO_EXECUTE
    if entry & WRITABLE:
        return 0x40 if executable else 0x04
    if entry & (1 << 9):
        return 0x80 if executable else 0x08
    return 0x20 if executable else 0x02
