"""Mixins that give the thin plugin classes their shared behaviour.

They do not subclass ``PluginInterface`` themselves: Volatility lists every subclass of it as a
plugin, so each concrete plugin combines one of these with ``PluginInterface``.
"""

from __future__ import annotations

import logging
from typing import Callable, ClassVar, Iterator, List, Optional

from volatility3.framework import renderers
from volatility3.framework.configuration import requirements
from volatility3.framework.interfaces.configuration import path_join

from ..backends.kernel import hosts_winmgmt
from ..engine.facts import ProcessFacts
from ..engine.findings import Severity
from ..errors import InputError
from ..minidump.reader import Minidump
from . import common, dumps, grid, inputs


def min_severity_requirement(what: str) -> requirements.ChoiceRequirement:
    """``--min-severity``: rows (``what``) below it are hidden, ``low`` by default."""
    return requirements.ChoiceRequirement(
        name="min_severity",
        description=f"Hide {what} below this severity",
        choices=[level.name.lower() for level in Severity],
        default="low",
        optional=True,
    )


def dump_requirement(description: str) -> requirements.BooleanRequirement:
    return requirements.BooleanRequirement(name="dump", description=description, default=False, optional=True)


vollog = logging.getLogger(__name__)


class MinidumpTable:
    """A minidump-only listing: one layer requirement, ``columns`` and a ``rows(dump)`` method."""

    columns: ClassVar[list]

    @classmethod
    def options(cls) -> list:
        """Plugin-specific requirements, as data."""
        return []

    @classmethod
    def get_requirements(cls) -> list:
        layer = requirements.TranslationLayerRequirement(
            name="primary", description="Memory layer of the process minidump"
        )
        return [layer, *cls.options()]

    def rows(self, dump: Minidump) -> Iterator[tuple]:
        raise NotImplementedError

    @classmethod
    def unsatisfied(cls, context, config_path):
        """Let the run start without a layer (a directory, an unreadable file): :meth:`_generator`
        then says in one line what the input is, instead of Volatility's requirement dump."""
        missing = super().unsatisfied(context, config_path)
        primary = path_join(config_path, "primary")
        return {key: value for key, value in missing.items() if not key.startswith(primary)}

    def _generator(self):
        layer_name = self.config.get("primary")
        if not layer_name or layer_name not in self.context.layers:
            dump = inputs.diagnose_file(inputs.input_location(self.context, self.config_path))
        else:
            dump = common.locate_minidump(self.context, layer_name)
        common.report_warnings(dump)
        yield from self.rows(dump)

    def run(self) -> renderers.TreeGrid:
        return grid.StreamingTreeGrid(self.columns, common.guarded(self._generator()))


class AnyInput:
    """A plugin that reads a process minidump or the processes of a full memory image."""

    #: Processes examined on full images when neither --pid nor --name is given.
    default_names: ClassVar[List[str]] = []
    #: Extra default processes chosen by a predicate (e.g. the Winmgmt svchost).
    default_predicate: ClassVar[Optional[Callable]] = None
    select_all: ClassVar[bool] = False

    @classmethod
    def input_requirements(cls, described_defaults: Optional[List[str]] = None) -> list:
        return [
            inputs.kernel_requirement(),
            *inputs.selection_requirements(described_defaults or cls.default_names, with_all=cls.select_all),
        ]

    @classmethod
    def unsatisfied(cls, context, config_path):
        return inputs.accept_any_input(super().unsatisfied(context, config_path), config_path)

    def build_configuration(self):
        return inputs.build_configuration(self)

    def process_facts(self) -> Iterator[ProcessFacts]:
        source = inputs.resolve_input(self.context, self.config_path)
        if isinstance(source, Minidump):
            common.report_warnings(source)
        predicate = type(self).default_predicate
        yield from inputs.facts_for(
            self.context,
            source,
            pids=self.config.get("pid"),
            names=self.config.get("name"),
            default_names=self.default_names,
            every_process=bool(self.config.get("all")),
            extra=predicate,
        )

    def dumper(self) -> Optional[dumps.Dumper]:
        """The run's ``--dump`` writer (budgeted by ``--dump-limit``), or None without --dump."""
        return dumps.Dumper.from_config(self.open if self.config.get("dump") else None, self.config)


class WmiServiceInput(AnyInput):
    """Examines the processes that run WMI work: provider hosts, the script consumer host and the
    svchost.exe hosting Winmgmt (full images), or every process with --all."""

    default_names: ClassVar[List[str]] = ["WmiPrvSE.exe", "scrcons.exe"]
    default_predicate = staticmethod(hosts_winmgmt)
    select_all = True

    @classmethod
    def service_requirements(cls) -> list:
        return cls.input_requirements([*cls.default_names, "the Winmgmt svchost.exe"])


class KernelOnly:
    """A plugin that needs a full memory image's kernel (ETW state lives only there)."""

    @classmethod
    def input_requirements(cls) -> list:
        return [inputs.kernel_requirement()]

    @classmethod
    def unsatisfied(cls, context, config_path):
        return inputs.accept_any_input(super().unsatisfied(context, config_path), config_path)

    def build_configuration(self):
        return inputs.build_configuration(self)

    def kernel_module_name(self) -> str:
        source = inputs.resolve_input(self.context, self.config_path)
        if isinstance(source, Minidump):
            raise InputError(
                f"{source.name}: a process minidump holds no kernel memory; ETW sessions and providers "
                "are read from a full memory image"
            )
        return source.view.module_name


class EtwTable(KernelOnly):
    """An ETW listing: ``columns`` and ``rows(reader, silos)`` over the kernel's ETW state."""

    columns: ClassVar[list]

    @classmethod
    def get_requirements(cls) -> list:
        return cls.input_requirements()

    def rows(self, reader, silos) -> Iterator[tuple]:
        raise NotImplementedError

    def _generator(self):
        from ..etw.reader import EtwReader
        from .etw import attach_consumers

        module_name = self.kernel_module_name()
        reader = EtwReader(self.context, module_name)
        silos = reader.silos()
        attach_consumers(self.context, module_name, silos)
        for silo in silos:
            for note in silo.notes:  # on stderr whatever the renderer: a table of nothing needs a reason
                vollog.warning("%s", common.escape_control(f"{silo.label}: {note}"))
        yield from self.rows(reader, silos)

    def run(self) -> renderers.TreeGrid:
        return grid.FittedTreeGrid(self.columns, common.guarded(self._generator()))
