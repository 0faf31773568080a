"""Answer "what lies at this address?" from regions and modules, for any backend.

Works on anything with ``base``/``size`` (regions) and ``base``/``size``/``name`` (modules), so
the minidump and the kernel-image backends share it.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Generic, Optional, Protocol, Sequence, TypeVar

from .minidump import constants


class _Span(Protocol):
    @property
    def base(self) -> int: ...

    @property
    def size(self) -> int: ...


SpanT = TypeVar("SpanT", bound=_Span)

#: How far back to look for an enclosing span when spans overlap (hostile module lists do).
_OVERLAP_LOOKBACK = 8


class SpanIndex(Generic[SpanT]):
    """Sorted spans with bisect lookup; tolerates overlap by looking a few entries back.

    A table that is already in address order and offers ``sorted_bases()`` (the minidump's
    MemoryInfoList) is used in place: no copy, no per-entry objects.
    """

    def __init__(self, spans: Sequence[SpanT]) -> None:
        sorted_bases = getattr(spans, "sorted_bases", None)
        if sorted_bases is not None:
            self.spans: Sequence[SpanT] = spans
            self._bases: Sequence[int] = sorted_bases()
            return
        self.spans = sorted(spans, key=lambda span: span.base)
        self._bases = [span.base for span in self.spans]

    def find(self, address: int) -> Optional[SpanT]:
        index = bisect_right(self._bases, address) - 1
        for candidate in range(index, max(index - _OVERLAP_LOOKBACK, -1), -1):
            span = self.spans[candidate]
            if span.base <= address < span.base + span.size:
                return span
        return None


class AddressMap:
    """Regions (MemoryInfoList entries or VADs) and loader-reported modules of one process."""

    def __init__(self, regions: Sequence, modules: Sequence) -> None:
        self.regions = SpanIndex(regions)
        self.modules = SpanIndex(modules)

    def region_of(self, address: int):
        return self.regions.find(address)

    def module_of(self, address: int):
        return self.modules.find(address)

    def describe(self, address: Optional[int]) -> str:
        """``ntdll.dll+0x9f3c4 (MEM_IMAGE, PAGE_EXECUTE_READ)`` or ``unbacked MEM_PRIVATE ...``."""
        if address is None:
            return "-"
        module = self.module_of(address)
        region = self.region_of(address)
        where = ""
        if region is not None:
            where = (
                f"{constants.type_name(region.type)}, {constants.protection_name(region.protect)}"
                if region.state == constants.MEM_COMMIT
                else constants.state_name(region.state)
            )
        if module is not None:
            text = f"{module.name}+0x{address - module.base:x}"
            return f"{text} ({where})" if where else text
        if region is not None:
            return f"unbacked, region 0x{region.base:x} ({where})"
        return "outside every listed region" if self.regions.spans else "unknown (no region list)"
