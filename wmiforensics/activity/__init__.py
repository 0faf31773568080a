"""WMI activity recovered from process memory: carved objects and requests, classified.

Backend-neutral (no Volatility import): :func:`carve` reads ``(address, bytes)`` chunks,
:func:`classify` turns what it finds into :class:`Activity` records.
"""

from .carver import Carved, carve
from .chunks import process_chunks
from .classify import Activity, classify, launcher

__all__ = ["Activity", "Carved", "carve", "classify", "launcher", "process_chunks"]
