"""Shared plugin plumbing: find the minidump behind a layer and end bad runs with one message."""

from __future__ import annotations

import logging
import os
import re
import signal
import stat
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
    check_input_file(location)
    try:
        head = bottom.read(0, min(64, bottom.maximum_address + 1)) if bottom.maximum_address >= 0 else b""
    except (exceptions.InvalidAddressException, ValueError, OSError):
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


def check_input_file(location: str) -> None:
    """Refuse, in one sentence, inputs that are not regular, non-empty files (dirs, FIFOs, devices).

    Volatility opens such paths without complaint and then fails with ``Length must be
    positive``, ``Illegal seek`` or ``IsADirectoryError``, or waits forever on a FIFO.
    """
    try:
        info = os.stat(location)
    except OSError as error:
        if not os.path.lexists(location):
            return  # not a local path (a URL Volatility fetched): nothing to check here
        raise InputError(f"{location}: cannot open: {error.strerror or error}") from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError(f"{location}: is a directory, not a dump or memory image")
    if not stat.S_ISREG(info.st_mode):
        kind = "a FIFO" if stat.S_ISFIFO(info.st_mode) else "a device or socket"
        raise InputError(f"{location}: is {kind}, not a regular file; save the dump to a file first")
    if info.st_size == 0:
        raise InputError(f"{location}: the file is empty")


def guarded(rows: Iterable) -> Iterator:
    """Rows that end in one message on stderr and a non-zero exit instead of the suite's exceptions.

    Volatility's CLI prints a generic "file a bug" text for unknown exceptions; a damaged or
    foreign input deserves a sentence naming the problem instead. Called from ``run()``, before the
    renderer writes anything, it also lets ``vol ... | head`` end quietly.
    """
    _quiet_broken_pipe()
    return _guarded(rows)


#: Characters that move the cursor, clear the screen, start escape sequences or reorder text:
#: C0 and C1 controls, DEL, the Unicode line/paragraph separators and the bidirectional overrides.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def escape_control(text: str) -> str:
    r"""``text`` with every control character shown as ``\xNN`` / ``\uNNNN`` (one line, inert)."""
    return _CONTROL.sub(lambda match: _escape_one(match.group()), str.__str__(text))


def _escape_one(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


class DisplayText(str):
    r"""A string from the input: its exact value for structured renderers, escaped as text.

    Volatility's JSON renderers pass column values to ``json.dumps``, which writes a ``str``
    subclass by value, so JSON keeps the exact string. The text, pretty and CSV renderers format
    values with ``f"{value}"``, which goes through ``__format__``/``__str__`` here and shows each
    control character as ``\xNN`` (``\uNNNN`` above U+00FF), so input cannot forge rows, columns
    or terminal escape sequences. Backslashes themselves are left as they are: Windows paths stay
    readable, and the JSON output is the reference when an escape must be told from a literal.
    """

    def __str__(self) -> str:
        return escape_control(self)

    def __format__(self, spec: str) -> str:
        return format(escape_control(self), spec)


def display_row(row: tuple) -> tuple:
    """A TreeGrid row whose strings holding control characters are :class:`DisplayText`."""
    level, values = row
    if not any(type(value) is str and _CONTROL.search(value) for value in values):
        return row
    return level, tuple(
        DisplayText(value) if type(value) is str and _CONTROL.search(value) else value for value in values
    )


def _guarded(rows: Iterable) -> Iterator:
    try:
        for row in rows:
            yield display_row(row)
    except WmiForensicsError as error:
        sys.stdout.flush()
        sys.stderr.write(f"wmi-forensics: error: {escape_control(str(error))}\n")
        sys.stderr.flush()
        raise SystemExit(error.exit_code) from None


def _quiet_broken_pipe() -> None:
    """``vol ... | head`` should end quietly, as other command-line tools do, not with a traceback."""
    if hasattr(signal, "SIGPIPE") and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)


def report_warnings(dump: Minidump) -> None:
    for message in dump.warnings:
        vollog.warning(escape_control(f"{dump.name}: {message}"))


#: The one missing-value convention of every plugin: Volatility's own "N/A" in text, null in JSON.
MISSING = renderers.NotAvailableValue()


def hex_or_na(value: Optional[int]):
    return MISSING if value is None else format_hints.Hex(value)


def name_or_na(value: Optional[str]):
    """Constant names from the reader and engine, which spell "none" as ``-``, in the plugins' convention."""
    return MISSING if value in (None, "", "-") else value


def text_or_na(value: Optional[str]):
    return MISSING if value is None else value
