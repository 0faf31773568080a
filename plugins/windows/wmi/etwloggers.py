"""wmi.etwloggers: ETW state read from a full memory image's kernel."""

from volatility3.framework import interfaces, renderers

from wmiforensics.etw.reader import EtwReader
from wmiforensics.vol import common, etw
from wmiforensics.vol.plugin_base import KernelOnly


class WmiEtwLoggers(KernelOnly, interfaces.plugins.PluginInterface):
    """Lists active ETW trace sessions (_WMI_LOGGER_CONTEXT) per silo: name, file, mode, buffers,
    events lost, clock."""

    _required_framework_version = (2, 0, 0)
    _version = (1, 0, 0)

    @classmethod
    def get_requirements(cls):
        return cls.input_requirements()

    def _generator(self):
        reader = EtwReader(self.context, self.kernel_module_name())
        yield from etw.logger_rows(reader.silos())

    def run(self) -> renderers.TreeGrid:
        return renderers.TreeGrid(etw.LOGGER_COLUMNS, common.guarded(self._generator()))
