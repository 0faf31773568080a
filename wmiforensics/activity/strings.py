"""Free-standing WMI strings in raw memory: UTF-16LE text and BSTR copies of WMI operations.

A client process or a provider host keeps the strings of an operation after the object or the
request that carried them is gone: the WQL of a query or an event filter, the command line handed to
``Win32_Process.Create``, object paths (``\\\\.\\root\\subscription:__EventFilter.Name="..."``),
namespace paths (``//./root/cimv2``), ``StdRegProv`` key paths. This module finds them by
WMI-specific markers and extends each hit to the whole string:

* the hits come from the carver's one YARA-X pass over the chunk (:mod:`.anchors`): one regular
  expression, the alternation of every marker's UTF-16LE bytes (``nocase``), which finds text at
  either alignment;
* a hit is extended backwards and forwards over printable UTF-16LE code units of any script (no C0
  or C1 control but tab, CR and LF, no lone surrogate, no private-use character, not U+FFFE/FFFF;
  surrogate pairs whole) with two anchored regular expressions on a window of at most
  :data:`MAX_STRING_BYTES` each way, and must end in a NUL terminator inside the chunk or run to the
  chunk's last byte (``cut``: the carver reports it when no later chunk repeats those bytes, i.e. at
  the end of the captured memory); longer text is no string (and its hits are not tried again);
* binary data reads as characters of random scripts, so units that are not Latin-1 are dropped from
  a string's start (pointers and heap headers before it; a WMI operation's text starts with a Latin
  character), and text where a Latin letter is glued to another script's character, or two adjacent
  letters belong to different scripts, is no string (:data:`_NOT_TEXT`);
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

#: One printable UTF-16LE code unit, as (low byte, high byte): Latin-1 text (tab, CR, LF, no other
#: C0 or C1 control), any other BMP character but a surrogate, a private-use one (U+E000-U+F8FF, not
#: text) or U+FFFE/U+FFFF, or a valid surrogate pair (a character outside the BMP).
_LATIN1 = rb"[\x09\x0a\x0d\x20-\x7e\xa0-\xff]\x00"
_TEXT_UNIT = (
    rb"(?:" + _LATIN1 + rb"|[\x00-\xff][\x01-\xd7\xf9-\xfe]|[\x00-\xfd]\xff"
    rb"|[\x00-\xff][\xd8-\xdb][\x00-\xff][\xdc-\xdf])"
)
#: The same unit on reversed bytes (high byte first; a pair's low surrogate first).
_TEXT_UNIT_REVERSED = (
    rb"(?:\x00[\x09\x0a\x0d\x20-\x7e\xa0-\xff]|[\x01-\xd7\xf9-\xfe][\x00-\xff]|\xff[\x00-\xfd]"
    rb"|[\xdc-\xdf][\x00-\xff][\xd8-\xdb][\x00-\xff])"
)
_FORWARD = re.compile(_TEXT_UNIT + rb"*")
_BACKWARD = re.compile(_TEXT_UNIT_REVERSED + rb"*")  # on reversed bytes
#: Units that are not Latin-1 at a run's start: binary data before a string (pointers, heap
#: headers) reads as such characters, and the text of a WMI operation starts with a Latin-1 one.
_LEADING_NOT_LATIN1 = re.compile(rb"(?:[\x00-\xff][\x01-\xff])*")
#: Characters read like Latin text: Latin-1, Latin Extended, general punctuation, currency signs.
_LATIN_LIKE = "\u0000-\u024f\u1e00-\u1eff\u2000-\u206f\u20a0-\u20cf"
_LATIN_LETTER = "A-Za-z\u00aa\u00b5\u00ba\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff"
#: Letters of one writing system (coarse: kana, kanji, CJK punctuation and fullwidth forms are one).
_SCRIPTS = (
    "\u0370-\u03ff\u1f00-\u1fff",  # Greek
    "\u0400-\u052f",  # Cyrillic
    "\u0530-\u058f",  # Armenian
    "\u0590-\u05ff",  # Hebrew
    "\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufefe",  # Arabic
    "\u0900-\u0dff",  # Indic
    "\u0e00-\u0eff",  # Thai, Lao
    "\u10a0-\u10ff",  # Georgian
    "\u1100-\u11ff\u3130-\u318f\uac00-\ud7af",  # Hangul
    "\u2e80-\u2fdf\u3000-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef",  # CJK
    "\U00010000-\U0010ffff",  # outside the BMP (emoji, rare ideographs)
)
_OTHER = f"[^{_LATIN_LIKE}]"
#: Binary data read as UTF-16 looks like text of random scripts: a Latin letter glued to another
#: script's character (``cimom憭㣪``), or two adjacent letters of different scripts (``준㳜``). Real
#: text starts a word of another script after a separator or a digit (``C:\\Users\\Дмитрий``,
#: ``2024年``) and keeps to one script within a word.
_NOT_TEXT = re.compile(
    f"[{_LATIN_LETTER}]{_OTHER}"
    + "".join(f"|[{script}](?={_OTHER})(?![{script}])" for script in _SCRIPTS)
    + f"|[^{_LATIN_LIKE}{''.join(_SCRIPTS)}](?={_OTHER})"
)
_U32 = struct.Struct("<I")


@dataclass
class FoundString:
    """One UTF-16LE string: where its text starts, its text, whether it is a BSTR, and whether it
    runs to the end of the bytes given (``cut``: no terminator seen)."""

    address: int
    text: str
    bstr: bool
    cut: bool = False

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
    # never past the hit: the marker itself is Latin-1
    start = _LEADING_NOT_LATIN1.match(data, start, hit).end()
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
        cut = _runs_to_end(data, end)
        if not (cut or data[end : end + 2] == b"\0\0") or end - start > MAX_STRING_BYTES:
            continue  # unterminated or too long: not a string
        if (end - start) // 2 < MIN_STRING_CHARS or covered.contains(base + start):
            continue
        text = data[start:end].decode("utf-16-le")
        if not text.isascii() and _NOT_TEXT.search(text):
            continue  # binary data glued to the text, not a string
        bstr = start >= 4 and _U32.unpack_from(data, start - 4)[0] == end - start
        found.append(FoundString(base + start, text, bstr, cut))
    return found


def _runs_to_end(data: bytes, end: int) -> bool:
    """True when the text ending at ``end`` stops only because ``data`` does: no whole code unit
    follows, or only a high surrogate whose pair is missing."""
    left = len(data) - end
    return left < 2 or (left < 4 and 0xD8 <= data[end + 1] <= 0xDB)
