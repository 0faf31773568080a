"""Fast VAD tree walk: node fields decoded from raw bytes at offsets taken from the ISF.

Volatility's object layer costs tens of microseconds per field access; a process with thousands
of VADs then spends seconds in attribute lookups. Here each field's byte offset and bit range are
resolved once per symbol table, and every node is one read plus integer arithmetic. Builds whose
VAD node layout is not the Windows 10+ ``_RTL_BALANCED_NODE`` form fall back to Volatility's
own traversal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from volatility3.framework import exceptions
from volatility3.framework.objects import templates

#: Most VAD nodes one walk reads (a node is one small read): a bound on the walk itself, above the
#: region budget (`bounds.MAX_DETAILED_REGIONS`) so that the most relevant VADs can be chosen from
#: more than the first ones.
MAX_VADS = 200_000
POINTER_MASK = (1 << 64) - 1


class Field(NamedTuple):
    offset: int
    size: int
    start_bit: Optional[int] = None
    end_bit: Optional[int] = None

    def get(self, data: bytes) -> int:
        value = int.from_bytes(data[self.offset : self.offset + self.size], "little")
        if self.start_bit is not None:
            value = (value >> self.start_bit) & ((1 << (self.end_bit - self.start_bit)) - 1)
        return value


def _resolve(context, template):
    if isinstance(template, templates.ReferenceTemplate):
        return context.symbol_space.get_type(template.vol.type_name)
    return template


def locate(context, table: str, type_name: str, path: str) -> Optional[Field]:
    """Byte offset (and bits) of a dotted member path, or None when the build lacks it."""
    try:
        template = context.symbol_space.get_type(f"{table}!{type_name}")
        offset = 0
        for part in path.split("."):
            template = _resolve(context, template)
            members = template.vol.members
            if part not in members:
                return None
            member_offset, template = members[part]
            offset += member_offset
        template = _resolve(context, template)
        vol = template.vol
        if "start_bit" in vol:
            base = _resolve(context, vol.base_type)
            return Field(offset, base.size, vol.start_bit, vol.end_bit)
        return Field(offset, template.size)
    except (exceptions.SymbolError, KeyError, AttributeError):
        return None


class Vad(NamedTuple):
    start: int
    end: int  # exclusive
    protection_index: int
    vad_type: int
    private: bool
    mem_commit: bool
    first_prototype_pte: int


@dataclass
class VadLayout:
    left: Field
    right: Field
    starting_vpn: Field
    ending_vpn: Field
    starting_vpn_high: Optional[Field]
    ending_vpn_high: Optional[Field]
    protection: Field
    vad_type: Field
    private_memory: Field
    mem_commit: Optional[Field]
    first_prototype_pte: Optional[Field]
    read_size: int

    @classmethod
    def for_table(cls, context, table: str) -> Optional[VadLayout]:
        short = "_MMVAD_SHORT"
        fields: Dict[str, Optional[Field]] = {
            "left": locate(context, table, short, "VadNode.Left"),
            "right": locate(context, table, short, "VadNode.Right"),
            "starting_vpn": locate(context, table, short, "StartingVpn"),
            "ending_vpn": locate(context, table, short, "EndingVpn"),
            "protection": locate(context, table, short, "u.VadFlags.Protection"),
            "vad_type": locate(context, table, short, "u.VadFlags.VadType"),
            "private_memory": locate(context, table, short, "u.VadFlags.PrivateMemory"),
        }
        if any(value is None for value in fields.values()):
            return None
        optional = {
            "starting_vpn_high": locate(context, table, short, "StartingVpnHigh"),
            "ending_vpn_high": locate(context, table, short, "EndingVpnHigh"),
            "mem_commit": locate(context, table, short, "u1.VadFlags1.MemCommit"),
            "first_prototype_pte": locate(context, table, "_MMVAD", "FirstPrototypePte"),
        }
        present = [value for value in (*fields.values(), *optional.values()) if value is not None]
        size = max(value.offset + value.size for value in present)
        return cls(**fields, **optional, read_size=size)

    def decode(self, data: bytes) -> Tuple[int, int, Vad]:
        start_vpn = self.starting_vpn.get(data) | (
            self.starting_vpn_high.get(data) << 32 if self.starting_vpn_high else 0
        )
        end_vpn = self.ending_vpn.get(data) | (
            self.ending_vpn_high.get(data) << 32 if self.ending_vpn_high else 0
        )
        vad_type = self.vad_type.get(data)
        prototype = 0
        if vad_type == 2 and self.first_prototype_pte is not None:
            prototype = self.first_prototype_pte.get(data)
        vad = Vad(
            start_vpn << 12,
            (end_vpn + 1) << 12,
            self.protection.get(data),
            vad_type,
            bool(self.private_memory.get(data)),
            bool(self.mem_commit.get(data)) if self.mem_commit else False,
            prototype,
        )
        return self.left.get(data), self.right.get(data), vad


def walk(kernel_layer, layout: VadLayout, root: int, notes: List[str]) -> Iterator[Vad]:
    """Every VAD under ``root`` in address order; loops and unreadable nodes are skipped."""
    stack, seen, found = [root], set(), []
    while stack:
        node = stack.pop()
        if not node or node in seen:
            continue
        if len(seen) >= MAX_VADS:
            notes.append(f"more than {MAX_VADS} VADs: the rest are ignored")
            break
        seen.add(node)
        try:
            data = kernel_layer.read(node, layout.read_size)
        except exceptions.InvalidAddressException:
            notes.append(f"VAD node 0x{node:x} is unreadable; its subtree is skipped")
            continue
        left, right, vad = layout.decode(data)
        if vad.end > vad.start:
            found.append(vad)
        stack.extend((right & POINTER_MASK, left & POINTER_MASK))
    found.sort(key=lambda item: item.start)
    return iter(found)


def within_budget(
    found: Sequence[Vad], budget: int, executable: Callable[[Vad], bool], budget_mark: str
) -> Tuple[List[Vad], Optional[str]]:
    """At most ``budget`` VADs, in address order, and past the budget a note saying what was skipped.

    What the VAD itself says decides, never a page-table walk (that is the cost being bounded):
    executable VADs first, committed ones (private with MemCommit, every section view) ahead of
    reserved ones, then the lowest addresses.
    """
    if len(found) <= budget:
        return list(found), None

    def rank(position: int) -> Tuple[bool, bool, int]:
        vad = found[position]
        return not executable(vad), vad.private and not vad.mem_commit, position

    ordered = sorted(range(len(found)), key=rank)
    skipped = ordered[budget:]
    skipped_executable = sum(1 for position in skipped if executable(found[position]))
    note = (
        f"the VAD tree holds {len(found):,} VADs, more than the {budget:,} examined in detail per "
        f"process {budget_mark}: {len(skipped):,} VADs were skipped, {skipped_executable:,} of them "
        "executable (executable VADs are kept first, committed ahead of reserved, then the lowest "
        "addresses); findings and scans cover only the VADs kept"
    )
    return [found[position] for position in sorted(ordered[:budget])], note
