"""Free-standing WMI strings in raw memory: UTF-16LE text and BSTR copies of WMI operations.

A client process or a provider host keeps the strings of an operation after the object or the
request that carried them is gone: the WQL of a query or an event filter, the command line handed to
``Win32_Process.Create``, object paths (``\\\\.\\root\\subscription:__EventFilter.Name="..."``),
namespace paths (``//./root/cimv2``), ``StdRegProv`` key paths. This module finds them by
WMI-specific markers and extends each hit to the whole string:

* the hits come from the carver's one YARA-X pass over the chunk (:mod:`.anchors`): one regular
  expression, the alternation of every marker's UTF-16LE bytes (``nocase``), which finds text at
  either alignment;
* a hit is extended backwards and forwards over UTF-16LE code units of Latin-1 text (high byte zero,
  printable low byte, tab, CR, LF) with two anchored regular expressions on a window of at most
  :data:`MAX_STRING_BYTES` each way, and must end in a NUL terminator inside the chunk; text that runs
  past the window or the chunk is no string (and its hits are not tried again);
* a 4-byte length prefix right before the text that equals the text's byte length marks a BSTR
  ([MS-OAUT] 2.2.23.1: the length prefix of a BSTR, in bytes, without the terminator).

Hits inside a string already extended, or inside an object or request the carver decoded, are
skipped, so each byte is extended over at most once per direction and hostile memory (megabytes of
``SELECT `` or unterminated text) stays linear.
"""

from __future__ import annotations

import bisect
import re
import struct
from dataclasses import dataclass
from typing import List, Sequence, Tuple

#: Longest string extended, in bytes of UTF-16LE (16,384 characters): it fits in the chunk overlap,
#: so a string that starts in a chunk always ends inside that chunk's bytes.
MAX_STRING_BYTES = 32 << 10
MIN_STRING_CHARS = 8
SHORT_WINDOW = 512

#: ASCII markers of WMI operations (matched without case, in UTF-16LE text).
MARKERS = (
    "select ",  # WQL queries and event filters (a FROM must follow)
    "root\\",  # namespace paths
    "root/",
    "winmgmts:",  # the WMI moniker of scripts
    "wscript.shell",  # consumer scripts (scrcons.exe runs ActiveScriptEventConsumer text)
    "__eventfilter",
    "eventconsumer",
    "__filtertoconsumerbinding",
    "__win32provider",
    "__intervaltimerinstruction",
    "win32_",  # object paths of Win32 classes
    "stdregprov",
    "admin$\\__",  # impacket wmiexec's output redirection
    "cmd.exe /q /c",  # wmiexec / dcomexec command shells
    "cmd /q /c",
    " -enc ",  # encoded PowerShell
    " -encodedcommand ",
    "\\wdigest",  # StdRegProv key paths of security settings
    "\\amsi\\providers",
    "defender\\exclusions",
    "wbem\\cimom",
    "wmi\\autologger",
)

_TEXT_UNIT = rb"[\x09\x0a\x0d\x20-\x7e\xa0-\xff]"
_FORWARD = re.compile(rb"(?:" + _TEXT_UNIT + rb"\x00)*")
_BACKWARD = re.compile(rb"(?:\x00" + _TEXT_UNIT + rb")*")  # on reversed bytes
_U32 = struct.Struct("<I")


@dataclass
class FoundString:
    """One terminated UTF-16LE string: where its text starts, its text, and whether it is a BSTR."""

    address: int
    text: str
    bstr: bool

    @property
    def size(self) -> int:
        return 2 * len(self.text) + 2

    @property
    def end(self) -> int:
        """Address of the NUL terminator (the same whichever chunk the string is seen in)."""
        return self.address + 2 * len(self.text)


def utf16_regex(marker: str) -> str:
    """A marker as a YARA regular expression over its UTF-16LE bytes (letters literal, for nocase)."""
    return "".join((ch if ch.isalnum() else f"\\x{ord(ch):02x}") + "\\x00" for ch in marker)


class Covered:
    """Address ranges already explained (decoded objects and requests): strings inside them are not
    reported again."""

    def __init__(self) -> None:
        self._ranges: List[Tuple[int, int]] = []
        self._starts: List[int] = []
        self._max_end: List[int] = []

    def add(self, start: int, end: int) -> None:
        if end > start:
            self._ranges.append((start, end))
            self._starts = []

    def forget_before(self, address: int) -> None:
        """Drop ranges that end before ``address`` (chunks come in address order)."""
        kept = [item for item in self._ranges if item[1] > address]
        if len(kept) != len(self._ranges):
            self._ranges = kept
            self._starts = []

    def contains(self, address: int) -> bool:
        if not self._ranges:
            return False
        if not self._starts:
            self._ranges.sort()
            self._starts = [start for start, _ in self._ranges]
            running, self._max_end = 0, []
            for _, end in self._ranges:
                running = max(running, end)
                self._max_end.append(running)
        index = bisect.bisect_right(self._starts, address) - 1
        return index >= 0 and self._max_end[index] > address


def _extend(data: bytes, hit: int) -> Tuple[int, int]:
    """(start, end) of the UTF-16LE text run around ``hit``, each way at most a window long."""
    for window in (SHORT_WINDOW, MAX_STRING_BYTES):  # most strings start close to their marker
        low = max(hit - window, hit & 1)
        start = hit - _BACKWARD.match(data[low:hit][::-1]).end()
        if start > low or low == hit & 1:
            break
    # bounded from the hit, not from the start: a rejected run moves the caller on by a window
    forward = _FORWARD.match(data, hit, min(len(data), hit + MAX_STRING_BYTES + 2))
    return start, forward.end()


def find_strings(data: bytes, base: int, covered: Covered, hits: Sequence[int]) -> List[FoundString]:
    """The WMI strings anchored by ``hits`` in ``data`` (at ``base``), outside ``covered``."""
    found: List[FoundString] = []
    done = -1  # offsets before this were inside a string already extended
    for hit in hits:
        if hit < done or covered.contains(base + hit):
            continue
        start, end = _extend(data, hit)
        done = max(end, hit + 2)
        if data[end : end + 2] != b"\0\0" or end - start > MAX_STRING_BYTES:
            continue  # unterminated (in this chunk) or too long: not a string
        if (end - start) // 2 < MIN_STRING_CHARS or covered.contains(base + start):
            continue
        text = data[start:end].decode("utf-16-le")
        bstr = start >= 4 and _U32.unpack_from(data, start - 4)[0] == end - start
        found.append(FoundString(base + start, text, bstr))
    return found
