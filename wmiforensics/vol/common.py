"""Shared plugin plumbing: find the minidump behind a layer and end bad runs with one message."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import Iterable, Iterator, Optional

from volatility3.framework import exceptions, interfaces, renderers
from volatility3.framework.renderers import format_hints

from ..errors import InputError, WmiForensicsError
from ..minidump.layer import MinidumpLayer, location_name
from ..minidump.reader import Minidump, identify_foreign_format
from ..minidump.source import LayerSource

vollog = logging.getLogger("wmiforensics")


def _layer_stack(context: interfaces.context.ContextInterface, layer_name: str) -> list:
    """The layer and everything under it, top first."""
    seen, order, pending = set(), [], [layer_name]
    while pending:
        name = pending.pop(0)
        if name in seen or name not in context.layers:
            continue
        seen.add(name)
        layer = context.layers[name]
        order.append(layer)
        pending.extend(getattr(layer, "dependencies", []))
    return order


def locate_minidump(context: interfaces.context.ContextInterface, layer_name: str) -> Minidump:
    """The parsed minidump under ``layer_name``, or an :class:`InputError` that says what the input is.

    When the stacker could not build a minidump layer, the bottom file is read again here so the
    user learns exactly why (truncated header, directory past the end, another format...).
    """
    stack = _layer_stack(context, layer_name)
    for layer in stack:
        if isinstance(layer, MinidumpLayer):
            dump = layer.minidump
            dump.require_windows()
            dump.require_usable()
            return dump
    bottom = stack[-1] if stack else None
    if bottom is None:
        raise InputError("no input layer was built: give the dump with -f before the plugin name")
    location = location_name(bottom)
    try:
        head = bottom.read(0, min(64, bottom.maximum_address + 1))
    except exceptions.InvalidAddressException:
        head = b""
    if not head:
        raise InputError(f"{location}: the file is empty")
    if head.startswith(b"MDMP"):
        Minidump(LayerSource(bottom), name=str(location))  # raises the precise MinidumpError
        raise InputError(f"{location}: the minidump could not be stacked as a Volatility layer")
    what = identify_foreign_format(head)
    if len(stack) > 1:
        what = f"a memory image that Volatility reads as {type(stack[0]).__name__}"
    raise InputError(f"{location}: this plugin reads Windows process minidumps, but the input is {what}")


def guarded(rows: Iterable) -> Iterator:
    """Rows that end in one message on stderr and a non-zero exit instead of the suite's exceptions.

    Volatility's CLI prints a generic "file a bug" text for unknown exceptions; a damaged or
    foreign input deserves a sentence naming the problem instead. Called from ``run()``, before the
    renderer writes anything, it also lets ``vol ... | head`` end quietly.
    """
    _quiet_broken_pipe()
    return _guarded(rows)


def _guarded(rows: Iterable) -> Iterator:
    try:
        yield from rows
    except WmiForensicsError as error:
        sys.stdout.flush()
        sys.stderr.write(f"wmi-forensics: error: {error}\n")
        sys.stderr.flush()
        raise SystemExit(error.exit_code) from None


def _quiet_broken_pipe() -> None:
    """``vol ... | head`` should end quietly, as other command-line tools do, not with a traceback."""
    if hasattr(signal, "SIGPIPE") and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)


def report_warnings(dump: Minidump) -> None:
    for message in dump.warnings:
        vollog.warning(f"{dump.name}: {message}")


#: The one missing-value convention of every plugin: Volatility's own "N/A" in text, null in JSON.
MISSING = renderers.NotAvailableValue()


def hex_or_na(value: Optional[int]):
    return MISSING if value is None else format_hints.Hex(value)


def name_or_na(value: Optional[str]):
    """Constant names from the reader and engine, which spell "none" as ``-``, in the plugins' convention."""
    return MISSING if value in (None, "", "-") else value


def text_or_na(value: Optional[str]):
    return MISSING if value is None else value
