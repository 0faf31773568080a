"""``wmi-forensics``: the installed command (scan, triage, vol, plugins-path).

Exit status of ``scan`` and ``triage``: 0 when no finding is at or above ``--fail-on`` (default
high), 1 when one is, 2 when an input could not be read (or the command line is wrong).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from ..engine.findings import Severity
from ..suite import plugins_path

EXIT_CLEAN, EXIT_FINDINGS, EXIT_BAD_INPUT = 0, 1, 2
SEVERITY_NAMES = [level.name.lower() for level in Severity]


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fail-on",
        choices=SEVERITY_NAMES,
        default="high",
        help="exit 1 when a finding is at or above this severity (default: high)",
    )
    parser.add_argument(
        "-s",
        "--symbol-dirs",
        action="append",
        default=[],
        metavar="DIR",
        help="folder of Volatility symbol tables (ISF) for full images; repeatable. "
        "Read only: never written to or pruned",
    )
    parser.add_argument(
        "--online",
        action="store_true",
        help="let Volatility download missing kernel symbols (default: offline)",
    )
    parser.add_argument("--pid", type=int, nargs="+", help="processes to examine in a full image")
    parser.add_argument("--name", nargs="+", help="process names to examine in a full image")
    parser.add_argument(
        "--plugins",
        nargs="+",
        metavar="PLUGIN",
        help="plugins to run instead of the scan's list (e.g. wmi.injection)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wmi-forensics",
        description="Find attacks hiding in and around WMI in Windows memory (minidumps and full images).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    scan = commands.add_parser("scan", help="run the main plugins on one dump and print a summary")
    scan.add_argument("-f", "--file", required=True, help="process minidump or full memory image")
    scan.add_argument(
        "--out",
        type=Path,
        help="folder for the full rows and reports "
        "(default: wmi-forensics-<dump name> in the current folder)",
    )
    scan.add_argument("--top", type=int, default=10, help="findings listed in the summary (default: 10)")
    _common(scan)

    triage = commands.add_parser("triage", help="triage many dumps on a Dask cluster")
    triage.add_argument("inputs", nargs="+", metavar="PATH", help="dump files, folders or globs")
    triage.add_argument("--out", type=Path, required=True, help="output folder (resumed if it exists)")
    triage.add_argument("--workers", type=int, default=2, help="worker processes of the local cluster")
    triage.add_argument("--scheduler", help="address of an existing Dask scheduler (tcp://HOST:PORT)")
    triage.add_argument(
        "--connect-timeout",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="how long to wait for --scheduler to answer and show a worker (default: 20)",
    )
    triage.add_argument("--quiet", action="store_true", help="no progress bar")
    _common(triage)

    vol = commands.add_parser(
        "vol", help="run Volatility with the suite's plugins on its path", add_help=False, prefix_chars="\0"
    )
    vol.add_argument("args", nargs=argparse.REMAINDER)

    commands.add_parser("plugins-path", help="print the folder to pass to vol -p")
    return parser


def plugin_options(args: argparse.Namespace) -> dict:
    """Volatility options for every plugin that takes them (--pid/--name select processes)."""
    selection = {}
    if args.pid:
        selection["pid"] = args.pid
    if args.name:
        selection["name"] = args.name
    return {name: dict(selection) for name in ("wmi.injection", "wmi.yarascan", "wmi.activity")}


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "plugins-path":
        print(plugins_path())
        return EXIT_CLEAN
    if args.command == "vol":
        from .vol import run_vol

        return run_vol(args.args)
    if args.command == "scan":
        from .scan import run_scan

        return run_scan(args)
    from .triage import run_triage

    return run_triage(args)


def entry_point() -> None:
    sys.exit(main())
