"""What PyPI ``etl-parser`` (airbus-cert, an independent reader) decodes from ETL buffers, normalised
to the shape `normalise_ours` gives our decoder's events, so the two can be compared field by field."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Dict, List

from tests.conftest import SHARED

ETL_DIR = SHARED / "etl"
COUNTED_ANSI_STRING = 23
ETL_FILES = ("AMSITrace.etl", "lxcore_kernel.etl", "ShutdownPerfDiagLogger.etl")


def etl_path(name: str) -> Path:
    import pytest

    path = ETL_DIR / name
    if not path.exists():
        pytest.skip(f"real ETL files not found in {ETL_DIR}")
    return path


def _guid(container) -> str:
    inner = container.inner
    return str(
        uuid.UUID(
            fields=(
                inner.data1,
                inner.data2,
                inner.data3,
                inner.data4[0],
                inner.data4[1],
                int.from_bytes(bytes(inner.data4[2:]), "big"),
            )
        )  # fmt: skip
    ).upper()


def _plain(value):
    if hasattr(value, "inner") and getattr(value, "type", None) == "Guid":
        return _guid(value)
    if isinstance(value, (bytes, bytearray)):
        return list(value)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def reference_buffer(payload: bytes) -> List[Dict[str, object]]:
    """etl-parser's records of one buffer's used bytes (after the 0x48-byte header)."""
    from etl.etl import ChunkParser
    from etl.event import Event

    rows = []
    for chunk in ChunkParser.parse(payload):
        value = chunk.value
        if chunk.type == "EventRecord":
            header = value.event_header
            row = {
                "kind": "event",
                "thread_id": header.thread_id,
                "process_id": header.process_id,
                "timestamp": header.timestamp,
                "provider": _guid(header.provider_id),
                "event_id": header.event_descriptor.Id,
                "version": header.event_descriptor.Version,
                "keyword": header.event_descriptor.Keyword,
                "extended": [(item.ext_type, bytes(item.data_item)) for item in value.extended_data or []],
                "user_data": bytes(value.user_data),
            }
            try:
                decoded = Event(value).parse_tracelogging()
            except Exception:  # etl-parser raises its own errors for events it cannot decode
                decoded = None
            if decoded is not None:
                values = {k: _plain(v) for k, v in decoded.items()}
                for item in decoded.scheme.fields:
                    if item.tag_in & 0x1F == COUNTED_ANSI_STRING and isinstance(values.get(item.name), str):
                        # etl-parser 1.0.1 reads this UINT16 length as one byte and returns its high
                        # byte (0 for lengths under 256) as a first character: drop that one character.
                        values[item.name] = values[item.name][1:]
                row["tracelogging"] = (decoded.get_name(), values)
        elif chunk.type in ("SystemTraceRecord", "PerfInfoTraceRecord"):
            header = value.system_header if chunk.type == "SystemTraceRecord" else value
            packet = header.header
            row = {
                "kind": "system" if chunk.type == "SystemTraceRecord" else "perfinfo",
                "group": int(packet.group),
                "event_type": packet.type,
                "version": header.marker.version,
                "user_data": bytes(value.mof_data),
            }
            if chunk.type == "SystemTraceRecord":
                row.update(thread_id=header.thread_id, process_id=header.process_id,
                           timestamp=header.system_time)  # fmt: skip
                if str(header.marker.type.enum) in ("SYSTEM_TRACE_MARKER_32", "SYSTEM_TRACE_MARKER_64"):
                    row["kind"] = "system"
                else:
                    row["kind"] = "compact"
            else:
                row["timestamp"] = value.timestamp
        elif chunk.type == "TraceRecord":
            header = value.event_header
            row = {
                "kind": "full",
                "thread_id": header.thread_id,
                "process_id": header.process_id,
                "timestamp": header.timestamp,
                "provider": _guid(header.guid),
                "user_data": bytes(value.user_data),
            }
        else:
            header = value.event_header
            row = {
                "kind": "message",
                "thread_id": header.thread_id,
                "process_id": header.process_id,
                "provider": _guid(header.provider_id),
                "user_data": bytes(value.user_data),
            }
        rows.append(row)
    return rows


def normalise_ours(event) -> Dict[str, object]:
    """Our event in the reference's shape (only the keys the reference has for that kind)."""
    record = event.record
    row: Dict[str, object] = {"kind": record.kind, "user_data": record.user_data}
    if record.kind in ("system", "compact", "perfinfo"):
        row.update(group=record.group, event_type=record.event_type, version=record.version,
                   timestamp=record.timestamp)  # fmt: skip
        if record.kind != "perfinfo":
            row.update(thread_id=record.thread_id, process_id=record.process_id)
    elif record.kind == "event":
        row.update(
            thread_id=record.thread_id, process_id=record.process_id, timestamp=record.timestamp,
            provider=record.provider, event_id=record.event_id, version=record.version,
            keyword=record.keyword, extended=record.extended,
        )  # fmt: skip
        if event.decoder == "tracelogging":
            row["tracelogging"] = (event.event_name, {k: _plain(v) for k, v in event.fields.items()})
    elif record.kind == "full":
        row.update(thread_id=record.thread_id, process_id=record.process_id, timestamp=record.timestamp,
                   provider=record.provider)  # fmt: skip
    else:
        row.update(thread_id=record.thread_id, process_id=record.process_id, provider=record.provider)
    return row


def _manifest_value(value):
    """etl-parser's construct values as plain Python: WString/CString text, SID text, bytes."""
    kind = getattr(value, "type", None) if hasattr(value, "items") else None
    if kind == "WString":
        return bytes(value.string[:-2]).decode("utf-16-le")
    if kind == "CString":
        return bytes(value.string[:-1]).decode("latin-1")
    if hasattr(value, "SubAuthorityCount"):
        authority = int.from_bytes(bytes(value.IdentifierAuthority), "big")
        return "-".join(["S", str(value.Revision), str(authority), *(str(sub) for sub in value.SubAuthority)])
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    return value


def reference_manifest_fields(provider: str, event_id: int, version: int, user_data: bytes) -> Dict:
    """The fields etl-parser's manifest-generated layouts decode (raises its own errors if unknown)."""
    from etl.parsers.etw.core import Guid as EtwGuid
    from etl.parsers.etw.core import build_etw

    key = uuid.UUID(provider)
    guid = EtwGuid(key.fields[0], key.fields[1], key.fields[2], list(key.bytes[8:]))
    source = build_etw(guid, event_id, version, user_data).source
    return {name: _manifest_value(value) for name, value in source.items() if not name.startswith("_")}
