"""Windows user-mode minidump (MDMP) support: a bounded reader, typed model and Volatility layer."""

from .model import (
    ExceptionInfo,
    Handle,
    Header,
    MemoryInfo,
    MiscInfo,
    Module,
    StreamInfo,
    SystemInfo,
    Thread,
    UnloadedModule,
)
from .reader import MemoryNotCaptured, Minidump, identify_foreign_format
from .segments import MemoryRange, merge_ranges
from .source import BytesSource, FileSource, LayerSource

__all__ = [
    "BytesSource",
    "ExceptionInfo",
    "FileSource",
    "Handle",
    "Header",
    "LayerSource",
    "MemoryInfo",
    "MemoryNotCaptured",
    "MemoryRange",
    "Minidump",
    "MiscInfo",
    "Module",
    "StreamInfo",
    "SystemInfo",
    "Thread",
    "UnloadedModule",
    "identify_foreign_format",
    "merge_ranges",
]
