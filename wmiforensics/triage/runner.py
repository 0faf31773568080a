"""Run one Volatility plugin on one file inside this process and return its rows.

This is what a triage worker does for every dump: Volatility and the suite's plugins are imported
once per process, and each call builds a fresh context, runs the automagic, constructs the plugin
and walks its TreeGrid. Values are converted exactly as ``vol -r json`` converts them, so a row
from here equals the row ``vol`` prints for the same dump.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from ..suite import plugins_path

_LOADED: Dict[str, type] = {}


@dataclass
class PluginRun:
    """Rows of one plugin on one file, as ``vol -r json`` would print them, or why there are none."""

    plugin: str
    rows: List[Dict[str, Any]] = field(default_factory=list)
    error: Optional[str] = None
    notes: List[str] = field(default_factory=list)
    #: What a Volatility CLI renderer printed, when ``run_plugin`` was asked for ``renderer=NAME``.
    text: Optional[str] = None


def _no_files():
    """Open method for plugins run without ``--dump``: nothing may be written."""
    from volatility3.framework import interfaces

    class NoFiles(interfaces.plugins.FileHandlerInterface):
        def __init__(self, filename: str):
            raise PermissionError(f"{filename}: this run writes no files")

    return NoFiles


def available_plugins() -> Dict[str, type]:
    """The suite's plugins by short name (``wmi.injection``), importing Volatility once per process."""
    if not _LOADED:
        import volatility3.plugins
        from volatility3 import framework
        from volatility3.framework import constants

        framework.require_interface_version(2, 0, 0)
        folder = plugins_path()
        if str(folder) not in volatility3.plugins.__path__:
            volatility3.plugins.__path__ = [str(folder), *constants.PLUGINS_PATH]
        # A host that imported one of Volatility's plugins first has fixed the search path of
        # volatility3.plugins.windows: our windows/ folder must join it or wmi.* cannot import.
        windows = sys.modules.get("volatility3.plugins.windows")
        if windows is not None and str(folder / "windows") not in list(windows.__path__):
            windows.__path__.append(str(folder / "windows"))
        framework.import_files(volatility3.plugins, True)
        for full_name, plugin in framework.list_plugins().items():
            module = full_name.rsplit(".", 1)[0]
            if module.startswith("windows.wmi."):
                _LOADED[module[len("windows.") :]] = plugin
    return _LOADED


class _Notes(logging.Handler):
    """Collects the warnings a plugin logs (hidden findings, damaged streams) for the dump's record."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage().strip())


def run_plugin(
    path: Path,
    plugin_name: str,
    options: Optional[Mapping[str, Any]] = None,
    *,
    cache_path: Path,
    symbol_dirs: Sequence[str] = (),
    offline: bool = True,
    renderer: Optional[str] = None,
) -> PluginRun:
    """Run ``plugin_name`` on ``path``; any failure becomes ``PluginRun.error``, never an exception.

    ``renderer`` (``quick``, ``pretty``, ``csv``, ...) also prints the grid with that Volatility CLI
    renderer into ``PluginRun.text``: what ``vol -r NAME`` would print, from the same run as the rows.
    """
    import volatility3.symbols
    from volatility3.cli.text_renderer import JsonRenderer
    from volatility3.framework import automagic, constants, contexts, exceptions, interfaces, plugins
    from volatility3.framework.automagic import stacker
    from volatility3.framework.configuration import requirements

    result = PluginRun(plugin_name)
    plugin = available_plugins().get(plugin_name)
    if plugin is None:
        result.error = f"{plugin_name} is not installed"
        return result
    constants.CACHE_PATH = str(cache_path)
    constants.OFFLINE = offline
    volatility3.symbols.__path__ = [*symbol_dirs, *constants.SYMBOL_BASEPATHS]

    notes = _Notes()
    root = logging.getLogger()
    root.addHandler(notes)
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            context = contexts.Context()
            context.config["automagic.LayerStacker.single_location"] = (
                requirements.URIRequirement.location_from_file(str(path))
            )
            config_path = interfaces.configuration.path_join("plugins", plugin.__name__)
            for key, value in (options or {}).items():
                context.config[interfaces.configuration.path_join(config_path, key)] = value
            # available() imports every automagic module, and with it the OS stackers that
            # choose_os_stackers() looks for: it must come first, as in Volatility's own CLI.
            chosen = automagic.choose_automagic(automagic.available(context), plugin)
            context.config["automagic.LayerStacker.stackers"] = stacker.choose_os_stackers(plugin)
            constructed = plugins.construct_plugin(context, chosen, plugin, "plugins", None, _no_files())
            grid = constructed.run()
            if renderer is None:
                result.rows = _rows(grid, JsonRenderer._type_renderers)
            else:
                printed: List[str] = []
                render = functools.partial(_render_text, renderer_name=renderer, into=printed)
                result.rows = _rows(grid, JsonRenderer._type_renderers, render)
                result.text = "".join(printed)
    except exceptions.UnsatisfiedException as error:
        result.error = _unsatisfied_message(error)
    except SystemExit:
        lines = [line for line in stderr.getvalue().splitlines() if line.strip()]
        result.error = (
            lines[-1].removeprefix("wmi-forensics: error: ") if lines else "the plugin ended the run"
        )
    except Exception as error:  # a hostile dump must cost one record, never the batch
        result.error = f"{type(error).__name__}: {error}"
    finally:
        root.removeHandler(notes)
    result.notes = notes.messages
    if result.error:
        result.rows = []
    return result


def _render_text(grid, renderer_name: str, into: List[str]) -> None:
    from volatility3 import framework
    from volatility3.cli import text_renderer

    renderers = framework.class_subclasses(text_renderer.CLIRenderer)
    chosen = [cls for cls in renderers if cls.name == renderer_name]
    if not chosen:
        raise ValueError(f"no Volatility renderer named {renderer_name}")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        chosen[0]().render(grid)
    into.append(printed.getvalue())


def _rows(grid, type_renderers, render: Optional[Callable[[Any], None]] = None) -> List[Dict[str, Any]]:
    """The grid as ``vol -r json`` prints it: one dict per row, children under ``__children``.

    The rows are taken from the grid's generator as the grid reads them, so ``render`` (a text
    renderer printing the grid) and the JSON rows come from one run of the plugin.
    """
    from volatility3.framework import interfaces

    recorded: List[Tuple[int, Any]] = []

    def recording(source):
        for level, values in source:
            recorded.append((level, values))
            yield level, values

    grid._generator = recording(grid._generator)
    if render is None:
        grid.populate(None, None)
    else:
        render(grid)
    renderers = [type_renderers.get(column.type, type_renderers["default"]) for column in grid.columns]
    top: List[Dict[str, Any]] = []
    ancestors: List[Dict[str, Any]] = []
    for level, values in recorded:
        row: Dict[str, Any] = {"__children": []}
        for column, convert, value in zip(grid.columns, renderers, values):
            shown = convert(value)
            row[column.name] = None if isinstance(shown, interfaces.renderers.BaseAbsentValue) else shown
        depth = min(len(ancestors), level)  # as TreeGrid.populate places a row under its parent
        (ancestors[depth - 1]["__children"] if depth else top).append(row)
        ancestors = ancestors[:depth] + [row]
    return top


def _unsatisfied_message(error) -> str:
    names = sorted(str(name).rsplit(".", 1)[-1] for name in error.unsatisfied)
    if any(name in ("kernel", "primary") for name in names):
        return "Volatility could not build a memory layer from this file (not a minidump or a readable image)"
    return "unsatisfied plugin requirements: " + ", ".join(names)
