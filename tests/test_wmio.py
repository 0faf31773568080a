"""The MS-WMIO decoder against impacket's encoder, the spec-built fixtures, and hostile blobs."""

from __future__ import annotations

import functools
import struct
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures.labdump import wmiobjects as w
from tests import impacket_wmi as imp
from wmiforensics.wmio import (
    WmiObject,
    WmioError,
    decode_encoding_unit,
    decode_instance_without_class,
    decode_object_block,
)

SIGNATURE = b"\x78\x56\x34\x12"
WMIEXEC_COMMAND = "cmd.exe /Q /c whoami /all 1> \\\\127.0.0.1\\ADMIN$\\__1700000000.8913 2>&1"


def _unit(data: bytes) -> WmiObject:
    return decode_encoding_unit(data, data.index(SIGNATURE))


def test_impacket_win32_process_create_in_params():
    sent = imp.in_params(w.win32_process_class(), "Create", WMIEXEC_COMMAND, "C:\\", None)
    obj = _unit(sent)
    assert not obj.is_class and obj.class_name == "__PARAMETERS"
    assert obj.values() == {
        "CommandLine": WMIEXEC_COMMAND,
        "CurrentDirectory": "C:\\",
        "ProcessStartupInformation": None,
    }
    assert obj.notes == [] and not obj.truncated


def test_impacket_stdregprov_in_params_numbers_and_strings():
    spec = w.ClassSpec(
        "StdRegProv",
        [],
        [],
        [
            (
                "SetDWORDValue",
                w.class_block(w.STDREGPROV_SET_DWORD_IN, None, None),
                w.class_block(w.ClassSpec("__PARAMETERS", [w.Prop("ReturnValue", w.UINT32)]), None, None),
            )
        ],
    )
    sent = imp.in_params(
        w.class_block(spec, namespace="ROOT\\default"),
        "SetDWORDValue",
        0x80000002,
        "SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\WDigest",
        "UseLogonCredential",
        1,
    )
    assert _unit(sent).values() == {
        "hDefKey": 0x80000002,
        "sSubKeyName": "SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\WDigest",
        "sValueName": "UseLogonCredential",
        "uValue": 1,
    }


SID_ADMINISTRATORS = [1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 32, 2, 0, 0]
SUBSCRIPTION = [
    (
        w.EVENT_FILTER,
        {
            "Name": "EF_lab",
            "EventNamespace": "root\\cimv2",
            "QueryLanguage": "WQL",
            "Query": "SELECT * FROM __TimerEvent WHERE TimerID = 'TI_lab'",
            "CreatorSID": SID_ADMINISTRATORS,
        },
    ),
    (
        w.ACTIVE_SCRIPT_CONSUMER,
        {
            "Name": "lab",
            "ScriptingEngine": "VBScript",
            "ScriptText": 'Set s = CreateObject("WScript.Shell")\ns.Run "calc.exe"',
            "CreatorSID": SID_ADMINISTRATORS,
        },
    ),
    (
        w.COMMAND_LINE_CONSUMER,
        {
            "Name": "lab",
            "CommandLineTemplate": "powershell.exe -nop -enc SQBFAFgA",
            "ExecutablePath": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
            "RunInteractively": False,
        },
    ),
    (
        w.BINDING,
        {
            "Filter": '__EventFilter.Name="EF_lab"',
            "Consumer": 'ActiveScriptEventConsumer.Name="lab"',
            "DeliverSynchronously": True,
        },
    ),
]


@pytest.mark.parametrize("spec,values", SUBSCRIPTION, ids=[spec.name for spec, _ in SUBSCRIPTION])
def test_impacket_subscription_instances(spec, values):
    obj = _unit(imp.put_instance(spec, values))
    assert obj.class_name == spec.name and obj.namespace == "ROOT\\subscription"
    decoded = obj.values()
    for name, value in values.items():
        assert decoded[name] == value, name
    unset = [p.name for p in spec.props if p.name not in values and p.cim_type in (w.STRING, w.REFERENCE)]
    assert all(decoded[name] is None for name in unset)


@pytest.mark.parametrize("wide", [True, False], ids=["utf16", "one-byte"])
def test_fixture_objects_read_the_same_by_impacket_and_the_decoder(wide):
    values = {
        "Name": "Debug",
        "Query": "SELECT * FROM __InstanceModificationEvent WITHIN 60",
        "QueryLanguage": "WQL",
        "EventNamespace": "root\\cimv2",
    }
    unit = w.encoding_unit(w.instance_block(w.EVENT_FILTER, values, wide=wide))
    ours = decode_encoding_unit(unit).values()
    theirs = imp.impacket_values(unit)
    for name, value in values.items():
        assert ours[name] == value == theirs[name]


def test_class_with_methods_matches_impacket():
    block = w.win32_process_class()
    obj = decode_encoding_unit(w.encoding_unit(block))
    theirs = imp.class_object(block).getMethods()
    assert obj.is_class and obj.class_name == "Win32_Process" and obj.superclass == "CIM_Process"
    assert [m.name for m in obj.methods] == list(theirs) == ["Create", "Terminate"]
    assert obj.methods[0].in_parameters == list(theirs["Create"]["InParams"])
    assert obj.methods[0].out_parameters == ["ProcessId", "ReturnValue"]


def test_arrays_embedded_objects_and_scalars_round_trip():
    inner = w.instance_block(w.WIN32_ENVIRONMENT, {"Name": "_Context##RANDOM##", "VariableValue": "QUJD"})
    spec = w.ClassSpec(
        "Lab_Types",
        [
            w.Prop("S", w.ARRAY | w.STRING),
            w.Prop("O", w.OBJECT),
            w.Prop("Q", w.SINT64),
            w.Prop("B", w.BOOLEAN),
            w.Prop("C", 103),
            w.Prop("R", 5),
            w.Prop("OA", w.ARRAY | w.OBJECT),
        ],
    )
    values = {
        "S": ["a", "ü", "日本"],
        "O": inner,
        "Q": -5,
        "B": True,
        "C": "x",
        "R": 2.5,
        "OA": [inner, inner],
    }
    obj = decode_encoding_unit(w.encoding_unit(w.instance_block(spec, values)))
    got = obj.values()
    assert got["S"] == ["a", "ü", "日本"] and got["Q"] == -5 and got["B"] is True and got["C"] == "x"
    assert got["R"] == 2.5
    assert got["O"].values()["Name"] == "_Context##RANDOM##"
    assert [o.values()["VariableValue"] for o in got["OA"]] == ["QUJD", "QUJD"]


def test_truncated_unit_keeps_what_it_has():
    values = {"Name": "lab", "ScriptingEngine": "JScript", "ScriptText": "x" * 4000}
    unit = w.encoding_unit(w.instance_block(w.ACTIVE_SCRIPT_CONSUMER, values))
    cut = unit[: len(unit) - 3000]
    obj = decode_encoding_unit(cut)
    assert obj.truncated and any("cut short" in note for note in obj.notes)
    assert obj.class_name == "ActiveScriptEventConsumer"
    assert obj.values()["Name"] == "lab" and obj.values()["ScriptingEngine"] == "JScript"
    assert obj.values()["ScriptText"] is None
    assert any("ScriptText" in note for note in obj.notes)


# ---- hostile blobs -------------------------------------------------------------------------------


def _patch_u32(data: bytes, at: int, value: int) -> bytes:
    return data[:at] + struct.pack("<I", value) + data[at + 4 :]


def _decode_bounded(data: bytes):
    started = time.perf_counter()
    try:
        result = decode_encoding_unit(data)
    except WmioError as error:
        result = error
    assert time.perf_counter() - started < 2.0
    return result


def test_property_count_of_2_to_the_32():
    unit = w.encoding_unit(w.instance_block(w.EVENT_FILTER, {"Name": "x"}, server=None))
    part_at = 9  # signature, length, ObjectFlags
    derivation_length = struct.unpack_from("<I", unit, part_at + 13)[0]
    qualifiers_at = part_at + 13 + derivation_length
    count_at = qualifiers_at + struct.unpack_from("<I", unit, qualifiers_at)[0]
    assert struct.unpack_from("<I", unit, count_at)[0] == len(w.EVENT_FILTER.props)
    result = _decode_bounded(_patch_u32(unit, count_at, 0xFFFFFFFF))
    assert isinstance(result, WmioError) and "property count 4294967295" in str(result)


def test_array_count_of_2_to_the_32_and_names_outside_the_heap():
    unit = bytearray(
        w.encoding_unit(w.instance_block(w.EVENT_FILTER, {"Name": "x", "CreatorSID": [1, 2, 3]}))
    )
    at = bytes(unit).rindex(struct.pack("<I3B", 3, 1, 2, 3))
    struct.pack_into("<I", unit, at, 0xFFFFFFFF)
    obj = _decode_bounded(bytes(unit))
    assert obj.values()["Name"] == "x" and obj.values()["CreatorSID"] is None
    assert any("array count 4294967295" in note for note in obj.notes)
    # every property-name reference pointed past the heap: the object is refused with the reason
    unit = bytearray(w.encoding_unit(w.instance_block(w.EVENT_FILTER, {"Name": "x"}, server=None)))
    start = 9 + 13 + struct.unpack_from("<I", unit, 22)[0]
    count_at = start + struct.unpack_from("<I", unit, start)[0]
    struct.pack_into("<I", unit, count_at + 4, 0x7FFFFFF0)
    result = _decode_bounded(bytes(unit))
    assert isinstance(result, WmioError) and "outside the" in str(result)


def _nesting_prefix(spec: w.ClassSpec):
    """The bytes the encoder puts before an embedded object that ends its instance's heap, as a
    function of that object's length (three length fields grow with it)."""
    base_length = 0x110
    first = w.instance_block(spec, {"Inner": b"\0" * base_length}, server=None)[:-base_length]
    second = w.instance_block(spec, {"Inner": b"\0" * (base_length + 1)}, server=None)[: -base_length - 1]
    fields = [i for i in range(len(first)) if first[i] != second[i]]
    assert len(fields) == 3

    def prefix(length: int) -> bytes:
        out = bytearray(first)
        for at in fields:
            struct.pack_into("<I", out, at, struct.unpack_from("<I", first, at)[0] + length - base_length)
        return bytes(out)

    return prefix


def test_embedded_objects_nested_10000_deep():
    spec = w.ClassSpec("Nest", [w.Prop("Inner", w.OBJECT)])
    prefix = _nesting_prefix(spec)
    parts = [w.instance_block(spec, {}, server=None)]
    length = len(parts[0])
    for _ in range(10000):
        parts.append(prefix(length))
        length += len(parts[-1])
    obj = _decode_bounded(w.encoding_unit(b"".join(reversed(parts))))
    assert isinstance(obj, WmiObject) and obj.class_name == "Nest"
    depth, node = 0, obj
    while isinstance(node.values().get("Inner"), WmiObject):
        node, depth = node.values()["Inner"], depth + 1
    assert depth == 8
    assert any("nest deeper than 8" in note for note in obj.notes)


def test_heap_references_looping_onto_one_long_string():
    """Every array item and property points at the same 1 MiB string: the work budget ends it."""
    spec = w.ClassSpec(
        "Loop", [w.Prop(f"P{i}", w.STRING) for i in range(64)] + [w.Prop("A", w.ARRAY | w.STRING)]
    )
    long_text = "A" * ((1 << 20) - 8)
    block = bytearray(w.instance_block(spec, {"P0": long_text, "A": ["b"] * 60000}, server=None))
    text_at = bytes(block).index(b"\x00" + b"A" * 16)
    heap_start = text_at
    while block[heap_start - 4 + 3] & 0x80 == 0:  # walk back to the instance heap's length field
        heap_start -= 1
    ref = text_at - heap_start
    refs_at = bytes(block).index(struct.pack("<I", 60000), text_at) + 4
    struct.pack_into(f"<{60000}I", block, refs_at, *([ref] * 60000))
    result = _decode_bounded(w.encoding_unit(bytes(block)))
    notes = result.notes if isinstance(result, WmiObject) else [str(result)]
    assert any("work budget" in note for note in notes)


def test_garbage_and_flags():
    for blob in (b"", b"\x00", b"\x03" + b"\0" * 40, b"\x02" + b"\xff" * 64, b"\x01" * 100):
        with pytest.raises(WmioError):
            decode_object_block(blob)


@functools.lru_cache(maxsize=1)
def _seeds():
    return [
        w.encoding_unit(
            w.instance_block(
                w.ACTIVE_SCRIPT_CONSUMER, {"Name": "a", "ScriptText": "b" * 40, "CreatorSID": [1, 2]}
            )
        ),
        w.encoding_unit(w.win32_process_class()),
        w.encoding_unit(w.instance_block(w.EVENT_FILTER, {"Name": "ü", "Query": "SELECT"}, wide=False)),
    ]


EXTREMES = [0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x80000000 | 10, 0x10000]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2),
    operations=st.lists(
        st.one_of(
            st.tuples(st.just("u32"), st.integers(0, 4095), st.sampled_from(EXTREMES)),
            st.tuples(st.just("byte"), st.integers(0, 4095), st.integers(0, 255)),
            st.tuples(st.just("cut"), st.integers(8, 4095), st.just(0)),
        ),
        max_size=6,
    ),
)
def test_fuzz_mutated_units_end_in_an_object_or_one_error(seed, operations):
    data = bytearray(_seeds()[seed])
    for kind, offset, value in operations:
        if kind == "cut":
            del data[offset:]
        elif kind == "u32" and offset + 4 <= len(data):
            struct.pack_into("<I", data, offset, value)
        elif kind == "byte" and offset < len(data):
            data[offset] = value
    result = _decode_bounded(bytes(data))
    if isinstance(result, WmiObject):
        result.to_dict()


# --- instances without their class part ([MS-WMIO] 2.2.3, [MS-WMI] 2.2.14.4) ------------------------


def _without_class(first: bytes, second: bytes) -> WmiObject:
    buf = b"\xee" * 8 + first + b"\xee" * 8 + second + b"\xee" * 8
    return decode_instance_without_class(
        buf, (8, 8 + len(first)), 16 + len(first), 16 + len(first) + len(second)
    )


@pytest.mark.parametrize("wide", [True, False])
def test_instance_without_class_reads_the_earlier_instances_class(wide):
    first = {"Name": "a", "Query": "SELECT * FROM __TimerEvent", "QueryLanguage": "WQL"}
    second = {"Name": "second filter", "EventNamespace": "root\\cimv2", "CreatorSID": [1, 2, 0, 0]}
    block = w.instance_block(
        w.EVENT_FILTER, second, namespace="ROOT\\subscription", wide=wide, without_class=True
    )
    obj = _without_class(w.instance_block(w.EVENT_FILTER, first, wide=wide), block)
    assert obj.class_name == "__EventFilter" and not obj.is_class
    assert {k: v for k, v in obj.values().items() if v is not None} == second
    assert obj.namespace == "ROOT\\subscription" and obj.server == "LAB-HOST"
    assert obj.size == len(block) and obj.notes == []


def test_instance_without_class_hostile_inputs_end_in_one_error():
    first = w.instance_block(w.EVENT_FILTER, {"Name": "a"})
    second = bytearray(w.instance_block(w.EVENT_FILTER, {"Name": "b"}, server=None, without_class=True))
    with pytest.raises(WmioError, match="is a class"):
        _without_class(w.class_block(w.EVENT_FILTER), bytes(second))
    flagged = bytes([0x01]) + bytes(second[1:])
    with pytest.raises(WmioError, match="name a class"):
        _without_class(first, flagged)
    huge = bytearray(second)
    struct.pack_into("<I", huge, 1, 0xFFFFFFFF)  # EncodingLength 2^32 - 1
    with pytest.raises(WmioError, match="does not fit"):
        _without_class(first, bytes(huge))
    with pytest.raises(WmioError):
        _without_class(first, bytes(second[: len(second) // 2]))
    with pytest.raises(WmioError, match="outside the buffer"):
        decode_instance_without_class(bytes(second), (0, 1 << 40), 0, len(second))
