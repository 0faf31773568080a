"""The committed lab dump and its expected-findings file are what the generator writes, byte for byte,
and the dump stays small."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

from fixtures.labdump import build_scenario, build_wmiprvse, write_minidump
from fixtures.make_examples import EXAMPLES, EXAMPLES_DIR, Example, example_bytes, example_files

EXAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "examples" / "wmiprvse-lab.dmp"
EXPECTED = EXAMPLE.with_name("wmiprvse-lab.expected.json")


def test_generator_reproduces_the_committed_example_byte_for_byte():
    assert EXAMPLES["wmiprvse-lab.dmp"] == Example("lab_example", "x64", 19045, 0)
    assert EXAMPLES_DIR / "wmiprvse-lab.dmp" == EXAMPLE
    committed = EXAMPLE.read_bytes()
    generated = example_bytes("wmiprvse-lab.dmp")
    assert hashlib.sha256(generated).hexdigest() == hashlib.sha256(committed).hexdigest()


def test_expected_json_is_regenerated_identically_and_names_the_dump():
    files = example_files("wmiprvse-lab.dmp")
    assert files["wmiprvse-lab.expected.json"] == EXPECTED.read_bytes()
    document = json.loads(EXPECTED.read_text(encoding="utf-8"))
    assert (document["scenario"], document["arch"], document["build"], document["seed"]) == (
        "lab_example",
        "x64",
        19045,
        0,
    )
    assert document["dump"] == "wmiprvse-lab.dmp"
    assert document["sha256"] == hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()
    _, planted = build_scenario("lab_example", "x64", 19045, 0)
    assert document["planted"] == [record.to_dict() for record in planted]
    kinds = [entry["kind"] for entry in document["planted"]]
    assert kinds == [
        "pe_injected",
        "exec_rwx",
        "thread_start_unbacked",
        "thread_ip_unbacked",
        "pe_headerless",
        "module_masquerade",
        "etw_patch",
        "wmi_consumer_module",
    ]
    for entry in document["planted"]:
        assert int(entry["start"], 16) < int(entry["end"], 16)


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
