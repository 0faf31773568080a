"""Volatility 3 data layer and stacker for Windows user-mode minidumps (MDMP).

Shaped like Volatility's own ``layers/lime.py``: a small ``SegmentedLayer`` whose segments are the
reader's merged memory ranges, over the ``FileLayer`` that holds the dump, plus a stacker that
checks the magic. Reads go through the file layer (seek + read) after a bisect over the segments;
the dump is never loaded whole.

Volatility builds the layer twice in every run: once in the stacker, then again from the saved
configuration. The second build reuses the first one's parse (keyed by the file's identity), so a
dump is parsed once per run.
"""

from __future__ import annotations

import logging
import os
import urllib.parse
import urllib.request
from bisect import bisect_right
from typing import Optional, Tuple

from volatility3.framework import constants, exceptions, interfaces
from volatility3.framework.layers import segmented

from ..errors import WmiForensicsError
from .reader import Minidump
from .source import LayerSource
from .tables import LayerSegments

vollog = logging.getLogger(__name__)

#: Layer metadata "os" value. Not plain "Windows": Volatility's Windows Intel stacker would then
#: scan this virtual address space for page tables that a process dump does not contain.
MINIDUMP_OS = "WindowsProcessDump"

_ARCHITECTURES = {"x64": "Intel64", "x86": "Intel32", "arm64": "ARM64", "arm": "ARM"}


def location_name(layer) -> str:
    """A file path for messages: Volatility keeps file locations as ``file://`` URLs."""
    location = str(getattr(layer, "location", layer.name))
    if location.startswith("file:"):
        return urllib.request.url2pathname(urllib.parse.urlparse(location).path)
    return location


class MinidumpFormatException(exceptions.LayerException):
    """The base layer holds something that cannot be read as a minidump."""


#: The most recent parse and the identity of the file it came from (one entry: a run reads one dump).
_last_parse: Optional[Tuple[tuple, Minidump]] = None


def _file_identity(layer) -> Optional[tuple]:
    """Path, device, inode, size and modification time of a local file layer; None for anything else."""
    location = str(getattr(layer, "location", ""))
    if not location.startswith("file:"):
        return None
    path = location_name(layer)
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (path, info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


def parse_minidump(base_layer) -> Minidump:
    """The minidump in ``base_layer``, parsed at most once per file (the stacker's parse is reused)."""
    global _last_parse
    source = LayerSource(base_layer)
    identity = _file_identity(base_layer)
    if identity is not None and _last_parse is not None and _last_parse[0] == identity:
        dump = _last_parse[1]
        if dump.file_size == source.size:
            dump.source = source  # read through this run's own file layer from now on
            return dump
    dump = Minidump(source, name=location_name(base_layer))
    if identity is not None:
        _last_parse = (identity, dump)
    return dump


class MinidumpLayer(segmented.SegmentedLayer):
    """The captured memory of one process, addressed by its virtual addresses."""

    _minidump: Optional[Minidump] = None

    def __init__(
        self,
        context: interfaces.context.ContextInterface,
        config_path: str,
        name: str,
        metadata: Optional[dict] = None,
    ) -> None:
        super().__init__(context, config_path, name, metadata)
        # Derived here, never stored on the class: Volatility rebuilds layers from their config.
        self._direct_metadata = {
            **type(self)._direct_metadata,
            "architecture": _ARCHITECTURES.get(self.minidump.arch, "Unknown"),
            "os": MINIDUMP_OS,
        }

    @property
    def minidump(self) -> Minidump:
        """The parsed dump: typed access to modules, threads, regions, handles and warnings."""
        if self._minidump is None:
            self._load_segments()
        assert self._minidump is not None
        return self._minidump

    def _load_segments(self) -> None:
        base_layer = self._context.layers[self._base_layer]
        try:
            dump = parse_minidump(base_layer)
        except WmiForensicsError as error:
            raise MinidumpFormatException(self.name, str(error)) from error
        self._minidump = dump
        # A view, not a copy: a million segments stay in the reader's compact table.
        self._segments = LayerSegments(dump.segments)

    def _find_segment(self, offset: int, next: bool = False) -> Tuple[int, int, int, int]:
        """Volatility's lookup, bisecting the reader's start column instead of a list of tuples."""
        table = self.minidump.segments
        index = bisect_right(table.starts, offset) - 1
        if next:
            if index + 1 < len(table):
                return table.layer_tuple(index + 1)
        elif index >= 0 and offset < table.starts[index] + table.sizes[index]:
            return table.layer_tuple(index)
        raise exceptions.InvalidAddressException(self.name, offset, f"Invalid address at {offset:0x}")

    @property
    def minimum_address(self) -> int:
        return super().minimum_address if self._segments else 0

    @property
    def maximum_address(self) -> int:
        if self._segments:
            return super().maximum_address
        return (1 << self.minidump.address_bits) - 1

    def is_valid(self, offset: int, length: int = 1) -> bool:
        if not self._segments:
            return False
        return super().is_valid(offset, length)


#: A file at least this large whose minidump structure explains less than half of it is not taken
#: for a minidump: real writers fill the file with streams and memory, nothing else.
FULL_IMAGE_MINIMUM = 16 << 20


def explained_bytes(dump: Minidump) -> int:
    """End of the last file byte the dump's structure refers to (directory, streams, memory)."""
    ends = [stream.rva + stream.present_size for stream in dump.streams]
    ends += [segment.file_offset + segment.size for segment in dump.segments]
    return max(ends, default=0)


def not_a_process_dump(dump: Minidump) -> Optional[str]:
    """Why a file that starts with a valid MDMP header is read as something else, or None.

    Decided by the whole structure, not the first bytes: a full memory image can begin with a
    minidump header (planted, or left in physical page 0), but its streams then cover only a
    sliver of a large file.
    """
    explained = explained_bytes(dump)
    if dump.file_size >= FULL_IMAGE_MINIMUM and explained * 2 < dump.file_size:
        return (
            f"{dump.name} begins with a minidump header, but its streams and memory cover only the first "
            f"{explained:,} of {dump.file_size:,} bytes: it is read as a full memory image"
        )
    return None


class MinidumpStacker(interfaces.automagic.StackerLayerInterface):
    """Stacks a :class:`MinidumpLayer` on any layer that starts with ``MDMP``."""

    stack_order = 10
    exclusion_list: list = []

    @classmethod
    def stack(
        cls,
        context: interfaces.context.ContextInterface,
        layer_name: str,
        progress_callback: constants.ProgressCallback = None,
    ) -> Optional[interfaces.layers.DataLayerInterface]:
        base_layer = context.layers[layer_name]
        if isinstance(base_layer, MinidumpLayer):
            return None
        try:
            if base_layer.read(0, 4) != b"MDMP":
                return None
        except exceptions.InvalidAddressException:
            return None
        new_name = context.layers.free_layer_name("MinidumpLayer")
        context.config[interfaces.configuration.path_join(new_name, "base_layer")] = layer_name
        try:
            layer = MinidumpLayer(context, new_name, new_name)
            decision = not_a_process_dump(layer.minidump)
            if decision:
                vollog.warning(decision)
                del context.config[interfaces.configuration.path_join(new_name, "base_layer")]
                return None
            return layer
        except MinidumpFormatException as error:
            # The plugin re-reads the file and reports this one clear message itself.
            vollog.debug(f"Minidump stacking failed: {error}")
            return None
