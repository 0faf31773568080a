"""The committed lab dump is what the generator writes, byte for byte, and stays small."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from fixtures.labdump import build_wmiprvse, write_minidump
from fixtures.make_examples import EXAMPLES, EXAMPLES_DIR, example_bytes

EXAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "examples" / "wmiprvse-lab.dmp"


def test_generator_reproduces_the_committed_example_byte_for_byte():
    assert EXAMPLES["wmiprvse-lab.dmp"] == ("x64", 19045, 0)
    assert EXAMPLES_DIR / "wmiprvse-lab.dmp" == EXAMPLE
    committed = EXAMPLE.read_bytes()
    generated = example_bytes("wmiprvse-lab.dmp")
    assert hashlib.sha256(generated).hexdigest() == hashlib.sha256(committed).hexdigest()


def test_example_is_a_small_minidump():
    data = EXAMPLE.read_bytes()
    assert data[:4] == b"MDMP"
    assert int.from_bytes(data[4:6], "little") == 0xA793
    assert 1 << 20 < len(data) < 2 << 20


def test_two_builds_with_the_same_seed_write_identical_bytes_and_seeds_differ():
    def dump(seed: int) -> bytes:
        out = io.BytesIO()
        write_minidump(build_wmiprvse("x86", 22631, seed), out)
        return out.getvalue()

    assert dump(7) == dump(7)
    assert dump(7) != dump(8)
    assert (
        build_wmiprvse("x64", 19045, 1).module("ntdll.dll").base
        != build_wmiprvse("x64", 19045, 2).module("ntdll.dll").base
    )
