"""``wmi-forensics vol ARGS...``: Volatility's own command line with the suite's plugins on its path.

The run gets a private run directory (see :mod:`wmiforensics.runtime`): its own cache path unless
the user gives ``--cache-path``, and a private symbol folder before the user's ``-s`` folders, so
Volatility's failed-download clean-up can never remove a file from them.
"""

from __future__ import annotations

import sys
from typing import List, Optional, Tuple

from ..runtime import RunDirectory
from ..suite import plugins_path

_VALUE_OPTIONS = {
    "-s": "symbol_dirs",
    "--symbol-dirs": "symbol_dirs",
    "-p": "plugin_dirs",
    "--plugin-dirs": "plugin_dirs",
    "--cache-path": "cache_path",
}


def split_options(args: List[str]) -> Tuple[dict, List[str]]:
    """Pull ``-s``, ``-p`` and ``--cache-path`` (any spelling) out of Volatility's arguments."""
    found: dict = {"symbol_dirs": [], "plugin_dirs": [], "cache_path": None}
    rest: List[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        name, value = arg, None
        if arg.startswith("--") and "=" in arg:
            name, value = arg.split("=", 1)
        elif arg[:2] in ("-s", "-p") and len(arg) > 2 and not arg.startswith("--"):
            name, value = arg[:2], arg[2:]
        key = _VALUE_OPTIONS.get(name)
        if key is None:
            rest.append(arg)
            index += 1
            continue
        if value is None:
            if index + 1 >= len(args):
                rest.append(arg)  # let Volatility report the missing value
                break
            value = args[index + 1]
            index += 1
        index += 1
        if key == "cache_path":
            found[key] = value
        else:
            found[key] += [part for part in value.split(";") if part]
    return found, rest


def volatility_arguments(args: List[str], run: RunDirectory) -> List[str]:
    """The argument list for Volatility: ours (plugins, private cache and symbol folder) first."""
    found, rest = split_options(args)
    plugin_dirs = [str(plugins_path()), *found["plugin_dirs"]]
    return [
        "-p",
        ";".join(plugin_dirs),
        "-s",
        ";".join(run.symbol_dirs(found["symbol_dirs"])),
        "--cache-path",
        found["cache_path"] or str(run.cache_path),
        *rest,
    ]


_FILE_OPTIONS = ("-f", "--file", "--single-location")


def input_files(args: List[str]) -> List[str]:
    """Local paths named by ``-f``/``--file`` (any spelling) in Volatility's arguments."""
    found = []
    for index, arg in enumerate(args):
        if arg in _FILE_OPTIONS and index + 1 < len(args):
            found.append(args[index + 1])
        elif arg.startswith("--") and arg.split("=", 1)[0] in _FILE_OPTIONS and "=" in arg:
            found.append(arg.split("=", 1)[1])
        elif arg.startswith("-f") and len(arg) > 2 and not arg.startswith("--"):
            found.append(arg[2:])
    return [path for path in found if "://" not in path]


def run_vol(args: List[str], program: str = "vol") -> Optional[int]:
    from volatility3 import cli

    from ..errors import InputError
    from ..vol.common import check_input_file, escape_control

    # Volatility opens -f before any plugin runs and waits forever on a FIFO: refuse such input first.
    for path in input_files(args):
        try:
            check_input_file(path)
        except InputError as error:
            sys.stderr.write(f"wmi-forensics: error: {escape_control(str(error))}\n")
            return 2
    with RunDirectory.create() as run:
        saved = sys.argv
        sys.argv = [program, *volatility_arguments(args, run)]
        try:
            cli.main()
            return 0
        except SystemExit as done:
            code = done.code
            if code is None or isinstance(code, int):
                return code or 0
            sys.stderr.write(f"{code}\n")
            return 1
        finally:
            sys.argv = saved
