"""TreeGrids whose rows fit a 200-column text line, while structured output keeps every value whole.

Volatility hands one TreeGrid to whichever renderer the user chose. Structured renderers (JSON,
JSONL, CSV: ``structured_output = True``) must get every column complete, because they feed
Timesketch, a SIEM or a script. The text renderers (``quick``, the default, and ``pretty``) print
one tab-separated line per row, and hexdumps, disassembly, evidence, YARA strings or decoded event
fields made those lines up to 15,000 characters wide. A grid learns which renderer consumes it from
the visitor the renderer passes to :meth:`populate` (Volatility's renderers build it as a closure over
themselves); for a text renderer each row that would be wider than :data:`TEXT_WIDTH` keeps its short
columns on its own line and moves its longest text values, one each, into child rows right below it
(shown as ``(below)`` in the row). A child row carries the value in its own column and nothing else,
cut to the line width with a ``...[+N chars]`` marker; the full value is in ``-r json``/``jsonl``/``csv``.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple

from volatility3.framework import interfaces, renderers

from .common import MISSING, escape_control

#: The widest line a text renderer prints for a row; ``WMI_FORENSICS_TEXT_WIDTH=0`` turns fitting off.
TEXT_WIDTH = 200
#: What a row shows in a column whose value moved to a child row.
MOVED = "(below)"


def text_width() -> int:
    """The line budget: :data:`TEXT_WIDTH`, or ``$WMI_FORENSICS_TEXT_WIDTH`` (0 = unlimited)."""
    value = os.environ.get("WMI_FORENSICS_TEXT_WIDTH", "")
    try:
        return max(0, int(value)) if value.strip() else TEXT_WIDTH
    except ValueError:
        return TEXT_WIDTH


def consuming_renderer(visitor: Optional[Callable]) -> Any:
    """The Volatility renderer whose visitor this is, or None (a library caller such as triage)."""
    from volatility3.framework.interfaces.renderers import Renderer

    for cell in getattr(visitor, "__closure__", None) or ():
        try:
            contents = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if isinstance(contents, Renderer):
            return contents
    return None


def cut(text: str, width: int) -> str:
    """``text`` (escaped for display) in at most ``width`` characters, ending in ``...[+N chars]`` if cut."""
    shown = escape_control(text)
    if len(shown) <= width:
        return shown
    keep = width
    while keep > 0:
        marker = f"...[+{len(shown) - keep} chars]"
        if keep + len(marker) <= width:
            return shown[:keep] + marker
        keep -= 1
    return f"...[+{len(shown)} chars]"


class TextLayout:
    """Splits rows wider than ``width`` into a row of short values and child rows of long ones."""

    def __init__(self, columns: Sequence[interfaces.renderers.Column], renderer: Any, width: int) -> None:
        self.columns = list(columns)
        self.width = width
        type_renderers = getattr(renderer, "_type_renderers", {})
        default = type_renderers.get("default", lambda value: f"{value}")
        self.render = [type_renderers.get(column.type, default) for column in self.columns]

    def line_width(self, level: int, cells: Sequence[str]) -> int:
        prefix = level + 1 if level else 0  # Volatility prints "*" per level below the top and a space
        longest = [max((len(part) for part in cell.split("\n")), default=0) for cell in cells]
        return prefix + sum(longest) + len(cells) - 1

    def rows(self, level: int, values: Tuple) -> Iterator[Tuple[int, Tuple]]:
        if self.width <= 0:
            yield level, values
            return
        cells = [render(value) for render, value in zip(self.render, values)]
        moved: List[int] = []
        while self.line_width(level, cells) > self.width:
            candidates = [
                index
                for index, value in enumerate(values)
                if isinstance(value, str) and index not in moved and len(cells[index]) > len(MOVED)
            ]
            if not candidates:
                break
            index = max(candidates, key=lambda i: len(cells[i]))
            moved.append(index)
            cells[index] = MOVED
        if not moved:
            yield level, values
            return
        yield level, tuple(MOVED if index in moved else value for index, value in enumerate(values))
        for index in sorted(moved):
            yield level + 1, self.child(level + 1, index, values[index])

    def child(self, level: int, index: int, value: str) -> Tuple:
        """A row holding only ``value`` in column ``index``: empty text, ``-`` elsewhere."""
        empty = tuple("" if column.type is str else MISSING for column in self.columns)
        others = [self.render[i](empty[i]) for i in range(len(self.columns)) if i != index]
        room = self.width - self.line_width(level, [*others, ""])
        return tuple(cut(value, max(room, 1)) if i == index else empty[i] for i in range(len(empty)))


class FittedTreeGrid(renderers.TreeGrid):
    """A TreeGrid that lays its rows out for a text renderer and hands structured ones every value."""

    def populate(self, function=None, initial_accumulator=None, fail_on_errors: bool = True):
        renderer = consuming_renderer(function)
        if renderer is not None and not getattr(renderer, "structured_output", True) and not self.populated:
            layout = TextLayout(self.columns, renderer, text_width())
            source = self._generator
            self._generator = (row for level, values in source for row in layout.rows(level, values))
        return super().populate(function, initial_accumulator, fail_on_errors)


class StreamingTreeGrid(FittedTreeGrid):
    """A TreeGrid that hands each row to the renderer and keeps none of them.

    Volatility's TreeGrid stores every node it renders; a listing of a million regions would then
    hold a million rows at once. Nothing needs a row after it is written, so each node (a child
    row of the text layout too) is built on its own, outside the tree.
    """

    def _append(self, parent, values):
        path = str(self._row_count) if parent is None else parent.path + self.path_sep + str(self._row_count)
        return renderers.TreeNode(path, self, parent, values)
