"""ETW timestamps as UTC times, for every clock a session can use.

An ETW session stamps events with one clock, chosen when it starts (``WNODE_HEADER.ClientContext``,
kept in ``_WMI_LOGGER_CONTEXT.ClockType`` and in an ``.etl`` file's ``TRACE_LOGFILE_HEADER.ReservedFlags``):
1 the performance counter (QPC), 2 system time (a FILETIME), 3 the CPU cycle counter. A session keeps
one reference pair taken at the same moment, the system time and the clock's value then
(``_ETW_REF_CLOCK`` {StartTime, StartPerfClock}; in a file the header's StartTime and the timestamp of
its header record), so for counters::

    time = StartTime + (raw - StartPerfClock) * 10**7 / frequency      (100 ns units)

with the QPC frequency (``TRACE_LOGFILE_HEADER.PerfFreq``, ``KUSER_SHARED_DATA.QpcFrequency``) or the
cycle counter's (``CpuSpeedInMHz`` * 10**6). https://learn.microsoft.com/windows/win32/etw/wnode-header
and https://learn.microsoft.com/windows/win32/api/evntrace/ns-evntrace-trace_logfile_header.

Nothing from the input is trusted: a value before the reference or converting outside 2000..2100 is
missing with a note, and a session without a usable frequency or with an unknown clock keeps raw values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Optional, Tuple

CLOCK_QPC = 1
CLOCK_SYSTEM_TIME = 2
CLOCK_CYCLES = 3
CLOCK_NAMES = {CLOCK_QPC: "QPC", CLOCK_SYSTEM_TIME: "system time", CLOCK_CYCLES: "CPU cycles"}

FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=timezone.utc)
TICKS_PER_SECOND = 10_000_000  # FILETIME counts 100 ns
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2100, 1, 1, tzinfo=timezone.utc)
EARLIEST_TICKS = int((EARLIEST - FILETIME_EPOCH).total_seconds()) * TICKS_PER_SECOND
LATEST_TICKS = int((LATEST - FILETIME_EPOCH).total_seconds()) * TICKS_PER_SECOND
#: No real counter runs faster than this (a 100 GHz cycle counter); above it the value is garbage.
MAX_FREQUENCY = 100_000_000_000

OUTSIDE = "timestamp outside the session's clock range"


def filetime_to_datetime(ticks: int) -> Optional[datetime]:
    """A FILETIME as an aware UTC datetime, or None outside 2000..2100."""
    if not EARLIEST_TICKS <= ticks < LATEST_TICKS:
        return None
    return FILETIME_EPOCH + timedelta(microseconds=ticks // 10)


@dataclass(frozen=True)
class SessionClock:
    """One session's clock: its type, reference pair and frequency (Hz; unused for system time)."""

    clock_type: int
    start_time: int  # FILETIME when the reference was taken
    start_clock: int  # the clock's value at that moment
    frequency: int

    @property
    def problem(self) -> Optional[str]:
        """Why no raw value of this session can be converted, or None when they can."""
        name = CLOCK_NAMES.get(self.clock_type)
        if name is None:
            return f"clock type {self.clock_type} is unknown: timestamps are raw clock values"
        if self.clock_type == CLOCK_SYSTEM_TIME:
            return None
        if not 0 < self.frequency <= MAX_FREQUENCY:
            return f"{name} frequency {self.frequency} is unusable: timestamps are raw clock values"
        if filetime_to_datetime(self.start_time) is None:
            return f"reference StartTime {self.start_time} is not a time: timestamps are raw clock values"
        if self.start_clock < 0:
            return f"reference clock value {self.start_clock} is negative: timestamps are raw clock values"
        return None

    def to_filetime(self, raw: int) -> Optional[int]:
        """``raw`` as a FILETIME, or None when it cannot be converted or falls outside the session."""
        if self.problem is not None:
            return None
        if self.clock_type == CLOCK_SYSTEM_TIME:
            ticks = raw
        else:
            if raw < self.start_clock:
                return None
            ticks = self.start_time + (raw - self.start_clock) * TICKS_PER_SECOND // self.frequency
        return ticks if EARLIEST_TICKS <= ticks < LATEST_TICKS else None

    def convert(self, raw: Optional[int]) -> Tuple[Optional[datetime], Optional[str]]:
        """(UTC time, None), or (None, why not) for a value this session's clock cannot place."""
        if raw is None:
            return None, None
        problem = self.problem
        if problem is not None:
            return None, problem
        ticks = self.to_filetime(raw)
        if ticks is None:
            return None, OUTSIDE
        return filetime_to_datetime(ticks), None


def logfile_clock(
    reserved_flags: int, start_time: int, header_timestamp: int, perf_freq: int, cpu_mhz: int
) -> SessionClock:
    """The clock of an ``.etl`` file: its header record's timestamp is the clock value at StartTime."""
    frequency = cpu_mhz * 1_000_000 if reserved_flags == CLOCK_CYCLES else perf_freq
    return SessionClock(reserved_flags, start_time, header_timestamp, frequency)
