"""Random-access byte sources the minidump reader runs on: a file, or a Volatility data layer.

The reader never loads a whole dump: it asks a source for small, bounded pieces.
"""

from __future__ import annotations

import os
from typing import Protocol


class ByteSource(Protocol):
    """Anything with a size that can read ``length`` bytes at ``offset`` (short only at the end)."""

    @property
    def size(self) -> int: ...

    def read(self, offset: int, length: int) -> bytes: ...


class FileSource:
    """A file read with ``os.pread``: no shared file position, no whole-file buffering."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        self._size = os.fstat(self._fd).st_size

    @property
    def size(self) -> int:
        return self._size

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length <= 0 or offset >= self._size:
            return b""
        return os.pread(self._fd, min(length, self._size - offset), offset)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> FileSource:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class BytesSource:
    """An in-memory buffer, for tests and for small embedded blobs."""

    def __init__(self, data: bytes) -> None:
        self._data = bytes(data)

    @property
    def size(self) -> int:
        return len(self._data)

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length <= 0:
            return b""
        return self._data[offset : offset + length]


class LayerSource:
    """A Volatility data layer (normally the ``FileLayer`` under the minidump layer)."""

    def __init__(self, layer) -> None:  # volatility3 DataLayerInterface
        self._layer = layer
        self._size = layer.maximum_address + 1

    @property
    def size(self) -> int:
        return self._size

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length <= 0 or offset >= self._size:
            return b""
        return self._layer.read(offset, min(length, self._size - offset))
