"""Where the installed suite keeps its Volatility plugins, and which plugins a scan runs.

The plugin list lives here once: ``wmi-forensics scan`` and ``wmi-forensics triage`` both read it,
and a plugin that is not installed (an older checkout without ``wmi.activity``) is skipped instead
of failing the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, List

PACKAGE_DIR = Path(__file__).resolve().parent

#: Main plugins of a scan, in report order. Plugins missing from the installed suite are skipped.
SCAN_PLUGINS = ("wmi.injection", "wmi.activity", "wmi.yarascan")
#: Run only on full memory images: a process minidump holds no kernel memory.
IMAGE_ONLY_PLUGINS = ("wmi.etwtamper",)


def plugins_path() -> Path:
    """The folder to pass to ``vol -p``.

    A wheel carries the plugins inside the package (``volatility_plugins``); a source checkout
    (editable install or ``PYTHONPATH``) keeps them in the top-level ``plugins/`` folder.
    """
    for candidate in (PACKAGE_DIR / "volatility_plugins", PACKAGE_DIR.parent / "plugins"):
        if (candidate / "windows" / "wmi").is_dir():
            return candidate
    raise FileNotFoundError(f"the suite's Volatility plugins were not found beside {PACKAGE_DIR}")


def suite_plugin_names(plugins_dir: Path | None = None) -> List[str]:
    """Every plugin the suite ships (``wmi.NAME``), read from the plugin files without importing them."""
    folder = (plugins_dir or plugins_path()) / "windows" / "wmi"
    return sorted(f"wmi.{path.stem}" for path in folder.glob("*.py") if not path.stem.startswith("_"))


def scan_plugins(available: Iterable[str], full_image: bool) -> List[str]:
    """The scan's plugins that ``available`` (names like ``wmi.injection``) holds, in report order."""
    present = set(available)
    wanted = SCAN_PLUGINS + (IMAGE_ONLY_PLUGINS if full_image else ())
    return [name for name in wanted if name in present]
