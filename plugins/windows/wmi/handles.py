"""wmi.handles: open handles of a process minidump, or of the processes of a full memory image."""

from volatility3.framework import interfaces
from volatility3.framework.configuration import requirements

from wmiforensics.backends import handles as handle_backend
from wmiforensics.backends import kernel as kernel_backend
from wmiforensics.minidump.reader import Minidump
from wmiforensics.vol import common, grid, inputs, inspection
from wmiforensics.vol.plugin_base import AnyInput


class WmiHandles(AnyInput, interfaces.plugins.PluginInterface):
    """Lists handles: type, object name (\\Device\\NamedPipe\\..., \\BaseNamedObjects\\..., registry
    keys, the logger an EtwConsumer reads) and granted access. Full images: every process unless
    --pid/--name."""

    _required_framework_version = (2, 0, 0)
    _version = (2, 0, 0)
    select_all = True

    @classmethod
    def get_requirements(cls):
        return [
            *cls.input_requirements(["every process"]),
            requirements.StringRequirement(
                name="type",
                description="Only handles of this object type (e.g. File, Key, Event, EtwConsumer)",
                optional=True,
            ),
        ]

    def _generator(self):
        source = inputs.resolve_input(self.context, self.config_path)
        type_filter = self.config.get("type")
        if isinstance(source, Minidump):
            common.report_warnings(source)
            yield from inspection.handle_rows(source, type_filter=type_filter)
            return
        pids, names = self.config.get("pid"), self.config.get("name")
        _, chosen = inputs.choose_processes(
            source.view, pids=pids, names=names, default_names=[], every_process=not (pids or names)
        )

        def per_process():
            for proc in chosen:
                notes = []
                found = handle_backend.process_handles(self.context, source.view.module_name, proc, notes)
                for note in notes:
                    kernel_backend.vollog.warning(f"PID {int(proc.UniqueProcessId)}: {note}")
                yield int(proc.UniqueProcessId), kernel_backend.process_name(proc), found

        yield from inspection.image_handle_rows(per_process(), type_filter=type_filter)

    def run(self):
        return grid.FittedTreeGrid(inspection.HANDLE_COLUMNS, common.guarded(self._generator()))
