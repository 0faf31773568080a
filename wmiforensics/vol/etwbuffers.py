"""Rows for ``wmi.etwbuffers``, ``wmi.etwevents`` and ``wmi.etwfindings``: ETW buffers recovered from
logger contexts, the events decoded from them, and the findings those events support."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Iterator, Optional

from volatility3.framework.renderers import format_hints

from ..etl import events as etl_events
from ..etl.buffer import used_length, walk_records
from ..etl.findings import Located, event_findings
from ..etl.logfile import HeaderFacts, header_buffer
from ..etl.records import decode_record
from ..etw.buffers import LoggerBuffers
from .common import MISSING
from .dumps import Dumper, safe_component
from .etw import tamper_rows

BUFFER_COLUMNS = [
    ("Silo", str),
    ("LoggerId", int),
    ("Logger", str),
    ("Address", format_hints.Hex),
    ("Via", str),
    ("State", str),
    ("Type", str),
    ("Flags", str),
    ("Processor", int),
    ("BufferSize", format_hints.Hex),
    ("Used", format_hints.Hex),
    ("Events", int),
    ("FirstTimestamp", int),
    ("LastTimestamp", int),
    ("FirstTime", datetime),
    ("LastTime", datetime),
    ("Valid", bool),
    ("Problems", str),
    ("Notes", str),
    ("File", str),
]


def _int_or_na(value: Optional[int]):
    return value if isinstance(value, int) else MISSING


def dump_logger(item: LoggerBuffers, dumper: Dumper) -> Optional[str]:
    """One ``.etl`` per logger: a logfile header buffer, then every valid buffer as memory held it.

    Written through the run's :class:`Dumper`, so ``--dump-limit`` bounds it like every other dump.
    """
    valid = [buffer for buffer in item.buffers if buffer.valid]
    if not valid:
        return None
    fields = item.logger.fields
    logger_id = fields.get("LoggerId") if isinstance(fields.get("LoggerId"), int) else item.logger.slot
    size = valid[0].header.buffer_size if valid[0].header else 0
    valid = [buffer for buffer in valid if buffer.header and buffer.header.buffer_size == size]
    facts = HeaderFacts(
        buffer_size=size,
        logger_id=int(logger_id),
        logger_name=item.logger.name,
        log_file_name=str(fields.get("LogFileName") or ""),
        buffers=len(valid) + 1,  # BuffersWritten counts the header buffer too, as Windows' files do
        start_time=item.reference_start_time or int(fields.get("StartTime") or 0),
        clock_type=int(fields.get("ClockType") or 1),
        # the logger's reference pair and frequency, so a reader of the file gets the same UTC times
        perf_freq=item.clock.frequency if item.clock.frequency > 0 else HeaderFacts.perf_freq,
        timestamp=max(item.start_perf_clock, 0),
        events_lost=int(fields.get("EventsLost") or 0),
    )
    silo = "host" if item.silo.label.startswith("host") else f"silo{item.silo.address or 0:x}"
    name = f"etw.{silo}.{logger_id}.{safe_component(item.logger.name)}.etl"
    data = b"".join([header_buffer(facts), *(buffer.data for buffer in valid)])
    return ", ".join(dumper.write_bytes(name, data))


def buffer_rows(loggers: Iterator[LoggerBuffers], dumper: Optional[Dumper]) -> Iterator[tuple]:
    for item in loggers:
        written = dump_logger(item, dumper) if dumper is not None else None
        fields = item.logger.fields
        for buffer in item.buffers:
            header = buffer.header
            yield (
                0,
                (
                    buffer.silo,
                    _int_or_na(fields.get("LoggerId")),
                    item.logger.name or MISSING,
                    format_hints.Hex(buffer.address),
                    ", ".join(buffer.via),
                    header.state_name if header else MISSING,
                    header.type_name if header else MISSING,
                    header.flag_names or MISSING if header else MISSING,
                    header.processor if header else MISSING,
                    format_hints.Hex(header.buffer_size) if header else MISSING,
                    format_hints.Hex(used_length(header)) if header else MISSING,
                    buffer.events,
                    _int_or_na(buffer.first_timestamp),
                    _int_or_na(buffer.last_timestamp),
                    buffer.first_time or MISSING,
                    buffer.last_time or MISSING,
                    buffer.valid,
                    "; ".join(buffer.problems) or MISSING,
                    "; ".join(item.notes + buffer.notes) or MISSING,
                    written if (written and buffer.valid) else MISSING,
                ),
            )
        if not item.buffers and item.notes:
            missing = MISSING
            logger_id = _int_or_na(fields.get("LoggerId"))
            zero = format_hints.Hex(0)
            empty = (missing, missing, missing, missing, 0, zero, zero, 0, missing, missing, missing, missing)
            note = "; ".join(item.notes)
            yield (
                0,
                (
                    item.silo.label,
                    logger_id,
                    item.logger.name,
                    format_hints.Hex(0),
                    *empty,
                    False,
                    missing,
                    note,
                    missing,
                ),
            )


EVENT_COLUMNS = [
    ("Silo", str),
    ("Logger", str),
    ("Buffer", format_hints.Hex),
    ("Offset", format_hints.Hex),
    ("Header", str),
    ("Timestamp", int),
    ("Time", datetime),
    ("Provider", str),
    ("ProviderGuid", str),
    ("EventId", int),
    ("Version", int),
    ("Event", str),
    ("PID", int),
    ("TID", int),
    ("Decoder", str),
    ("Fields", str),
    ("FieldsJson", str),
    ("Notes", str),
]


def located_events(loggers: Iterator[LoggerBuffers]) -> Iterator[Located]:
    for item in loggers:
        for buffer in item.buffers:
            if not buffer.valid:
                continue
            for raw in walk_records(buffer.data).records:
                event = etl_events.decode_event(decode_record(raw))
                time, note = item.clock.convert(event.record.timestamp)
                yield Located(event, buffer.silo, item.logger.name, buffer.address, time, note)


def _json_value(value):
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {key: _json_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_value(item) for item in value]
    return value


def event_rows(events: Iterator[Located]) -> Iterator[tuple]:
    for item in events:
        event = item.event
        record = event.record
        shown = "; ".join(f"{key}={etl_events.display_value(value)}" for key, value in event.fields.items())
        yield (
            0,
            (
                item.silo,
                item.logger,
                format_hints.Hex(item.buffer_address),
                format_hints.Hex(record.offset),
                record.kind,
                _int_or_na(record.timestamp),
                item.time or MISSING,
                event.provider_name,
                "{" + record.provider + "}" if record.provider else MISSING,
                _int_or_na(record.event_id if record.event_id is not None else record.event_type),
                record.version,
                event.event_name or MISSING,
                _int_or_na(record.process_id),
                _int_or_na(record.thread_id),
                event.decoder,
                shown or MISSING,
                json.dumps(_json_value(event.fields), ensure_ascii=True),
                "; ".join(event.notes + ([item.time_note] if item.time_note else [])) or MISSING,
            ),
        )


FINDING_COLUMNS = [
    ("Kind", str),
    ("Severity", str),
    ("Confidence", str),
    ("Logger", str),
    ("Address", format_hints.Hex),
    ("Reason", str),
    ("Evidence", str),
]


def finding_rows(events: Iterator[Located], rules=None) -> Iterator[tuple]:
    yield from tamper_rows(list(event_findings(events, rules)))
