"""wmi.etwtamper: ETW sessions, slots and providers that show signs of tampering."""

from volatility3.framework import interfaces, renderers

from wmiforensics.etw.checks import check_all
from wmiforensics.etw.reader import EtwReader
from wmiforensics.vol import common, etw
from wmiforensics.vol.plugin_base import KernelOnly


class WmiEtwTamper(KernelOnly, interfaces.plugins.PluginInterface):
    """Flags overwritten logger slots, mismatched logger ids, hijacked clocks, bad MaxLoggers, missing
    sessions, a zeroed Threat-Intelligence provider and a disabled WMI-Activity provider."""

    _required_framework_version = (2, 0, 0)
    _version = (1, 0, 0)

    @classmethod
    def get_requirements(cls):
        return cls.input_requirements()

    def _generator(self):
        reader = EtwReader(self.context, self.kernel_module_name())
        yield from etw.tamper_rows(check_all(reader, reader.silos()))

    def run(self) -> renderers.TreeGrid:
        return renderers.TreeGrid(etw.TAMPER_COLUMNS, common.guarded(self._generator()))
