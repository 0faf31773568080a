"""Mutated real dumps must end in a clear error or a reader that answers every question.

Bounded for CI by example count and a per-example deadline; no example may raise anything but
the suite's own errors, allocate without bound or hang.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import REAL_DUMPS
from wmiforensics.errors import WmiForensicsError
from wmiforensics.minidump import BytesSource, Minidump
from wmiforensics.vol import inspection

SEEDS = [
    "breakpad/tiny-exe-fastfail.dmp",
    "breakpad/thread_name_list.dmp",
    "llvm-lldb/fizzbuzz_no_heap.dmp",
    "llvm-lldb/regions-memlist64.dmp",
    "rust-minidump/invalid-parameter.dmp",
]
EXTREMES = [0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFF0, 0x10000]


def _seed_bytes(name: str) -> bytes:
    path = REAL_DUMPS / name
    if not path.exists():
        pytest.skip(f"real dumps not found at {REAL_DUMPS}")
    # Only the first 64 KiB: headers, directory and lists live there; mutations stay cheap.
    return path.read_bytes()[:65536]


mutation = st.one_of(
    st.tuples(st.just("u32"), st.integers(0, 4095), st.sampled_from(EXTREMES)),
    st.tuples(
        st.just("u64"), st.integers(0, 4095), st.sampled_from([0, 1 << 63, (1 << 64) - 1, 0xFFFFFFFF0000])
    ),
    st.tuples(st.just("byte"), st.integers(0, 65535), st.integers(0, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 65535), st.just(0)),
)


def _mutate(data: bytes, operations) -> bytes:
    buffer = bytearray(data)
    for kind, offset, value in operations:
        if kind == "truncate":
            del buffer[max(offset, 4) :]
        elif kind == "u32" and offset + 4 <= len(buffer):
            struct.pack_into("<I", buffer, offset, value)
        elif kind == "u64" and offset + 8 <= len(buffer):
            struct.pack_into("<Q", buffer, offset, value)
        elif kind == "byte" and offset < len(buffer):
            buffer[offset] = value
    return bytes(buffer)


def _exercise(dump: Minidump) -> None:
    """Touch everything a plugin would."""
    for rows in (
        inspection.summary_rows(dump, dump.file_size),
        inspection.region_rows(dump, include_free=True),
        inspection.module_rows(dump),
        inspection.thread_rows(dump),
        inspection.handle_rows(dump),
    ):
        for _ in rows:
            pass
    for segment in dump.segments[:8]:
        # Segments only ever cover bytes present in the file, so every read inside one succeeds.
        assert len(dump.read(segment.start, min(segment.size, 64))) == min(segment.size, 64)


@settings(
    max_examples=250,
    deadline=2000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)
@given(st.sampled_from(SEEDS), st.lists(mutation, min_size=1, max_size=6))
def test_mutated_real_dumps_never_crash(seed, operations):
    data = _mutate(_seed_bytes(seed), operations)
    try:
        dump = Minidump(BytesSource(data), name="mutated.dmp")
    except WmiForensicsError as error:
        assert "mutated.dmp" in str(error)
        return
    _exercise(dump)
