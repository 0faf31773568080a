"""The Volatility layer serves the same bytes as the reader and stacks only on MDMP files."""

from __future__ import annotations

import pytest
from volatility3.framework import contexts, exceptions
from volatility3.framework.layers import physical

from tests.conftest import real_dump
from wmiforensics.minidump import Minidump
from wmiforensics.minidump.layer import MINIDUMP_OS, MinidumpLayer, MinidumpStacker


def stack(path):
    context = contexts.Context()
    context.config["FileLayer.location"] = path.as_uri()
    context.add_layer(physical.FileLayer(context, "FileLayer", "FileLayer"))
    return MinidumpStacker.stack(context, "FileLayer")


def test_layer_reads_match_reader_and_metadata_is_derived():
    path = real_dump("breakpad/tiny-exe-fastfail.dmp")
    layer = stack(path)
    assert isinstance(layer, MinidumpLayer)
    assert layer.metadata["architecture"] == "Intel64"
    assert layer.metadata["os"] == MINIDUMP_OS
    assert MinidumpLayer._direct_metadata["os"] == "Unknown"  # the class-level default is untouched
    with Minidump.open(path) as dump:
        for segment in dump.segments:
            assert layer.read(segment.start, segment.size) == dump.read(segment.start, segment.size)
        first = dump.segments[0]
        assert layer.is_valid(first.start, first.size)
        assert not layer.is_valid(first.start - 1)
        with pytest.raises(exceptions.InvalidAddressException):
            layer.read(first.start - 1, 2)
        assert layer.minimum_address == first.start
        assert layer.maximum_address == dump.segments[-1].end - 1


def test_x86_dump_is_intel32():
    assert stack(real_dump("llvm-lldb/fizzbuzz_no_heap.dmp")).metadata["architecture"] == "Intel32"


def test_stacker_ignores_other_files(tmp_path):
    other = tmp_path / "kernel.dmp"
    other.write_bytes(b"PAGEDU64" + bytes(4096))
    assert stack(other) is None


def test_stacker_declines_unreadable_minidump(tmp_path):
    broken = tmp_path / "broken.dmp"
    broken.write_bytes(b"MDMP\x93\xa7")
    assert stack(broken) is None
