"""One plugin, two inputs: a process minidump or a full Windows memory image.

Plugins declare the kernel as a ``ModuleRequirement`` like upstream Windows plugins, so Volatility's
automagic finds the kernel, its layer and its symbols in a full image. On a minidump (or a file
Volatility cannot read at all) that requirement stays partly unsatisfied; :func:`accept_any_input`
lets the plugin run anyway and :func:`resolve_input` then says what the input is, or explains in one
message why it cannot be used.
"""

from __future__ import annotations

import contextlib
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Tuple, Union

from volatility3.framework import exceptions, interfaces
from volatility3.framework.configuration import requirements
from volatility3.framework.interfaces.configuration import (
    ConfigurableRequirementInterface,
    ConstructableRequirementInterface,
    HierarchicalDict,
    path_join,
)

from ..backends import kernel as kernel_backend
from ..backends.minidump import facts_from_minidump
from ..engine.facts import ProcessFacts
from ..errors import InputError
from ..minidump.layer import MinidumpLayer, not_a_process_dump
from ..minidump.reader import Minidump, identify_foreign_format
from ..minidump.source import FileSource
from . import common
from .common import check_input_file

KERNEL = "kernel"


def kernel_requirement() -> requirements.ModuleRequirement:
    return requirements.ModuleRequirement(
        name=KERNEL,
        description="Windows kernel of a full memory image (process minidumps need none)",
        architectures=["Intel32", "Intel64"],
    )


def selection_requirements(default_names: List[str], with_all: bool = False) -> list:
    listed = ", ".join(default_names)
    items = [
        requirements.ListRequirement(
            name="pid", element_type=int, description="Full images: process IDs to examine", optional=True
        ),
        requirements.ListRequirement(
            name="name",
            element_type=str,
            description=f"Full images: process image names to examine (default: {listed})",
            optional=True,
        ),
    ]
    if with_all:
        items.append(
            requirements.BooleanRequirement(
                name="all", description="Full images: examine every process", default=False, optional=True
            )
        )
    return items


def accept_any_input(unsatisfied: Dict[str, object], config_path: str) -> Dict[str, object]:
    """Drop the kernel's sub-requirements: :func:`resolve_input` handles their absence itself."""
    prefix = path_join(config_path, KERNEL)
    return {key: value for key, value in unsatisfied.items() if not key.startswith(prefix)}


def build_configuration(plugin) -> HierarchicalDict:
    """``--save-config`` for plugins whose kernel requirement may be unfilled (minidumps).

    Volatility's own version hands the kernel requirement's value to the module table and fails
    when there is no kernel; here the layer under the kernel's slot is saved instead, so the saved
    configuration reopens the same minidump.
    """
    result = HierarchicalDict()
    for requirement in plugin.get_requirements():
        value = plugin.config.get(requirement.name, None)
        if requirement.name == KERNEL and not (isinstance(value, str) and value in plugin.context.modules):
            layer_name = plugin.config.get(path_join(KERNEL, "layer_name"))
            if layer_name in plugin.context.layers:
                result[path_join(KERNEL, "layer_name")] = layer_name
                result.splice(
                    path_join(KERNEL, "layer_name"), plugin.context.layers[layer_name].build_configuration()
                )
            continue
        if value is not None and not isinstance(requirement, ConstructableRequirementInterface):
            result[requirement.name] = value
        if isinstance(requirement, ConfigurableRequirementInterface) and value is not None:
            result.splice(
                requirement.name, requirement.build_configuration(plugin.context, plugin.config_path, value)
            )
    return result


@dataclass
class KernelInput:
    view: kernel_backend.KernelView


Input = Union[Minidump, KernelInput]


def input_location(context, config_path: str) -> Optional[str]:
    """The input file: from -f, or from a configuration saved by --save-config."""
    location = (
        context.config.get("automagic.LayerStacker.single_location")
        or context.config.get(path_join(config_path, KERNEL, "layer_name", "base_layer", "location"))
        or context.config.get(path_join(config_path, "primary", "base_layer", "location"))
    )
    if not location:
        return None
    if str(location).startswith("file:"):
        return urllib.request.url2pathname(urllib.parse.urlparse(str(location)).path)
    return str(location)


def resolve_input(context: interfaces.context.ContextInterface, config_path: str) -> Input:
    """The minidump, or the kernel of a full image; otherwise an :class:`InputError` that says why."""
    kernel_path = path_join(config_path, KERNEL)
    layer_name = context.config.get(path_join(kernel_path, "layer_name"))
    layer = context.layers.get(layer_name, None) if layer_name else None
    if isinstance(layer, MinidumpLayer):
        dump = layer.minidump
        dump.require_windows()
        dump.require_usable()
        return dump
    if layer is not None:
        module_name = context.config.get(kernel_path)
        if isinstance(module_name, str) and module_name in context.modules:
            return KernelInput(kernel_backend.KernelView(context, module_name))
        raise InputError(_missing_symbols_message(context, layer))
    return diagnose_file(input_location(context, config_path))


def diagnose_file(location: Optional[str]) -> Minidump:
    if not location:
        raise InputError("no input: give a minidump or memory image with -f before the plugin name")
    check_input_file(location)
    try:
        source = FileSource(location)
    except OSError as error:
        raise InputError(f"{location}: cannot open: {error.strerror or error}") from None
    head = source.read(0, 64)
    if not head:
        source.close()
        raise InputError(f"{location}: the file is empty")
    if head.startswith(b"MDMP"):
        dump = Minidump(source, name=location)  # raises the precise MinidumpError when damaged
        dump.require_windows()
        dump.require_usable()
        if not_a_process_dump(dump):
            common.vollog.warning(
                f"{location}: no Windows kernel was found beyond its minidump header either; "
                "it is read as a process minidump"
            )
        return dump
    source.close()
    what = identify_foreign_format(head)
    if what.startswith("not a minidump"):
        what = (
            f"neither a process minidump nor a Windows memory image Volatility can read (no Windows kernel "
            f"page tables were found; it starts with {head[:8].hex(' ')})"
        )
    raise InputError(f"{location}: {what}")


def _missing_symbols_message(context, layer) -> str:
    from volatility3.framework.symbols.windows import pdbutil

    guid = age = name = None
    offset = layer.config.get("kernel_virtual_offset")
    if offset:
        with contextlib.suppress(exceptions.InvalidAddressException, ValueError):
            found = pdbutil.PDBUtility.pdbname_scan(
                context,
                layer.name,
                layer.page_size,
                [b"ntkrnlmp.pdb", b"ntoskrnl.pdb", b"ntkrnlpa.pdb", b"ntkrpamp.pdb"],
                start=offset,
                end=offset + (8 << 20),
            )
            for item in found:
                guid, age, name = item["GUID"], item["age"], item["pdb_name"]
                break
    if guid:
        return (
            f"Windows kernel symbols are missing: this image's kernel is {name} GUID {guid} age {age}. "
            f"Put {guid}-{age}.json.xz under DIR/windows/{name}/ and run vol with -s DIR --offline "
            "(or run without --offline so Volatility can download it)"
        )
    return (
        "Windows kernel symbols are missing and the kernel's PDB identity could not be read; supply an ISF "
        "with -s DIR --offline"
    )


def choose_processes(
    view,
    *,
    pids: Optional[List[int]],
    names: Optional[List[str]],
    default_names: List[str],
    every_process: bool = False,
    extra=None,
) -> Tuple[List, List]:
    """(every process, the selected ones) of a full image; an :class:`InputError` if none matches."""
    processes = kernel_backend.list_processes(view)
    if every_process:
        chosen = processes
    else:
        chosen = list(kernel_backend.select(processes, pids, names or ([] if pids else default_names)))
        if extra is not None and not pids and not names:
            chosen += [proc for proc in processes if extra(view, proc) and proc not in chosen]
    if not chosen:
        wanted = ", ".join([*(str(pid) for pid in pids or []), *(names or ([] if pids else default_names))])
        raise InputError(
            f"no process matches {wanted}; processes in this image: {kernel_backend.inventory(processes)}"
        )
    return processes, chosen


def _minidump_selected(facts: ProcessFacts, pids: Optional[List[int]], names: Optional[List[str]]) -> bool:
    """--pid/--name on a minidump: its one process is examined only if the selection names it."""
    wanted_names = {name.lower() for name in names or []}
    return bool(pids and facts.pid in pids) or facts.name.lower() in wanted_names


def facts_for(
    context: interfaces.context.ContextInterface,
    source: Input,
    *,
    pids: Optional[List[int]],
    names: Optional[List[str]],
    default_names: List[str],
    every_process: bool = False,
    extra=None,
) -> Iterator[ProcessFacts]:
    """Facts for the minidump's process, or for each selected process of a full image."""
    if isinstance(source, Minidump):
        facts = facts_from_minidump(source)
        if (pids or names) and not _minidump_selected(facts, pids, names):
            wanted = ", ".join(
                [*(f"--pid {pid}" for pid in pids or []), *(f"--name {n}" for n in names or [])]
            )
            raise InputError(
                f"{source.name}: a process minidump holds one process, {facts.name} (PID "
                f"{facts.pid if facts.pid is not None else 'unknown'}); {wanted} selects none of it"
            )
        yield facts
        return
    processes, chosen = choose_processes(
        source.view,
        pids=pids,
        names=names,
        default_names=default_names,
        every_process=every_process,
        extra=extra,
    )
    for proc in chosen:
        try:
            yield kernel_backend.facts_from_process(source.view, proc, processes)
        except exceptions.InvalidAddressException as error:
            kernel_backend.vollog.warning(
                f"PID {int(proc.UniqueProcessId)}: skipped, memory unreadable ({error})"
            )
