"""Bounded fuzzing of the hostile-input classes: region-size extremes, export-table damage,
control characters in strings, and the ``--dump`` budget.

Each property runs a fixed, derandomised number of examples with a per-example deadline, so CI
stays fast and repeatable; any traceback, hang, impossible range or over-budget write fails it.
"""

from __future__ import annotations

import json
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_hostile_round2 import deadline, dump_bytes, open_dump
from wmiforensics.backends.minidump import facts_from_minidump
from wmiforensics.engine import ModuleFact, ProcessFacts, Severity, analyse, pe
from wmiforensics.minidump import constants as c
from wmiforensics.vol.common import DisplayText, display_row
from wmiforensics.vol.dumps import Dumper
from wmiforensics.yarascan import RulePack, scan_process

BOUNDED = settings(
    max_examples=60,
    deadline=3000,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
EXTREME_SIZES = [0, 1, 0xFFF, 0x1000, 1 << 32, 1 << 47, (1 << 63) + 5, (1 << 64) - 0x10000, (1 << 64) - 1]
EXTREME_BASES = [0, 0x10000, 0x7FFFFFFEF000, 1 << 47, 0xFFFFFFFF0000, (1 << 64) - 0x1000]
PACK = RulePack.from_source("rule x { strings: $a = { CC CC CC CC } condition: $a }")

region = st.tuples(
    st.sampled_from(EXTREME_BASES) | st.integers(0, (1 << 64) - 1),
    st.sampled_from(EXTREME_SIZES) | st.integers(0, (1 << 64) - 1),
    st.sampled_from([c.PAGE_EXECUTE_READWRITE, c.PAGE_READWRITE, c.PAGE_EXECUTE_READ]),
    st.integers(0, (1 << 64) - 1),
)


@BOUNDED
@given(st.lists(region, min_size=1, max_size=6))
def test_region_size_extremes_cost_what_is_captured(regions):
    entries = [
        (base, allocation, protect, size, c.MEM_COMMIT, protect, c.MEM_PRIVATE)
        for base, size, protect, allocation in regions
    ]
    data = dump_bytes(entries, [(0x10000, 0x1000)], [b"\xcc" * 0x1000])
    with deadline(5):
        facts = facts_from_minidump(open_dump(data))
        analysis = analyse(facts, min_severity=Severity.INFO)
        hits = list(scan_process(facts, PACK))
    for item in facts.regions:
        assert item.size > 0 and item.end <= facts.address_limit and item.allocation_base <= item.base
    for finding in analysis.findings:
        assert finding.start <= finding.end
    assert all(0x10000 <= hit.address < 0x11000 for hit in hits)


def _ntdll(directory: bytes, export_rva: int, export_size: int, names: bytes) -> ProcessFacts:
    """Facts with one ntdll.dll whose export directory (and name table) are given raw."""
    base, size = 0x7FF000000000, 0x4000
    image = bytearray(size)
    image[0:2], image[0x3C:0x40] = b"MZ", struct.pack("<I", 0x80)
    image[0x80:0x84] = b"PE\0\0"
    struct.pack_into("<HHIIIHH", image, 0x84, 0x8664, 0, 0, 0, 0, 0xF0, 0x2022)
    struct.pack_into("<H", image, 0x98, 0x20B)
    struct.pack_into("<II", image, 0x98 + 56, size, 0x400)
    struct.pack_into("<II", image, 0x98 + 112, export_rva, export_size)
    image[0x1000 : 0x1000 + len(directory)] = directory[:0x1000]
    image[0x2000 : 0x2000 + len(names)] = names[:0x1000]
    image[0x3000:0x3010] = b"EtwEventWrite\0\0\0"

    def read(address: int, length: int) -> bytes:
        offset = address - base
        return bytes(image[offset : offset + length]) if 0 <= offset < size else b""

    module = ModuleFact(base, size, "C:\\Windows\\System32\\ntdll.dll")
    return ProcessFacts(1, "WmiPrvSE.exe", None, "x64", [], [module], [], [], read)


@BOUNDED
@given(
    st.binary(min_size=40, max_size=40),
    st.sampled_from([0x1000, 0, 0x3FFF, 0xFFFFFFFF]),
    st.sampled_from([40, 0x3000, 0x4000, 0xFFFFFFFF, 0]),
    st.lists(st.sampled_from([0x3000, 0x2000, 0, 0xFFFFFFFF]), max_size=64),
)
def test_export_table_damage_never_silences_the_etw_check(directory, export_rva, export_size, names):
    facts = _ntdll(directory, export_rva, export_size, struct.pack(f"<{len(names)}I", *names))
    with deadline(5):
        analysis = analyse(facts, min_severity=Severity.INFO)
    header = pe.parse_headers(facts.read(facts.modules[0].base, 0x1000), facts.modules[0].base)
    resolved = pe.read_exports(header, facts.read, {"EtwEventWrite"})
    checkable = resolved.get("EtwEventWrite", -1) not in (-1, None) and facts.read(
        resolved["EtwEventWrite"], 1
    )
    if not checkable:
        assert any(note.startswith("ntdll.dll: ETW patch check") for note in analysis.notes), analysis.notes


@BOUNDED
@given(st.text(alphabet=st.characters(max_codepoint=0x2070), max_size=40))
def test_control_characters_never_reach_text_output(text):
    level, values = display_row((0, (text, 5)))
    shown = f"{values[0]}"
    assert not any(ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F for char in shown)
    assert not any(
        char in shown for char in "\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
    )
    assert json.loads(json.dumps(values[0])) == text  # structured output keeps the exact value
    assert isinstance(values[0], DisplayText) or values[0] == shown


class _Budgeted:
    def __init__(self):
        self.files = {}

    def __call__(self, name):
        import io

        handle = self.files[name] = io.BytesIO()
        handle.close = lambda: None
        return handle


@BOUNDED
@given(
    st.lists(st.tuples(st.integers(0, 64), st.integers(1, 4)), min_size=1, max_size=8),
    st.integers(0, 64 << 10),
    st.sampled_from([0x1000, 0x100000, 1 << 40, (1 << 64) - 0x10000]),
)
def test_dump_budget_bounds_what_is_written(captured_pages, limit, declared):
    base = 0x10000
    ranges, payloads, seen = [], [], set()
    for page, count in captured_pages:
        start = base + page * 0x1000
        if any(start + index * 0x1000 in seen for index in range(count)):
            continue
        seen.update(start + index * 0x1000 for index in range(count))
        ranges.append((start, count * 0x1000))
        payloads.append(b"\x41" * count * 0x1000)
    entry = (
        base,
        base,
        c.PAGE_EXECUTE_READWRITE,
        declared,
        c.MEM_COMMIT,
        c.PAGE_EXECUTE_READWRITE,
        c.MEM_PRIVATE,
    )
    facts = facts_from_minidump(open_dump(dump_bytes([entry], ranges, payloads)))
    output = _Budgeted()
    dumper = Dumper(output, limit)
    with deadline(5):
        for region in facts.regions:
            dumper.write_range(facts, "pid1.exec_rwx", region.base, region.size)
            dumper.write_range(facts, "pid1.again", region.base, region.size)
    assert dumper.written <= limit
    captured_written = sum(
        handle.getvalue().count(b"\x41") for name, handle in output.files.items() if name.endswith(".bin")
    )
    assert captured_written <= limit and captured_written <= dumper.written
