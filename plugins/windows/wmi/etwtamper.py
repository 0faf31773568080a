"""wmi.etwtamper: ETW sessions, slots and providers that show signs of tampering."""

from volatility3.framework import interfaces

from wmiforensics.etw.checks import check_all
from wmiforensics.vol import etw
from wmiforensics.vol.plugin_base import EtwTable


class WmiEtwTamper(EtwTable, interfaces.plugins.PluginInterface):
    """Flags overwritten logger slots, mismatched logger ids, hijacked clocks, bad MaxLoggers, missing
    sessions, a zeroed Threat-Intelligence provider and a disabled WMI-Activity provider."""

    _required_framework_version = (2, 0, 0)
    _version = (1, 0, 0)
    columns = etw.TAMPER_COLUMNS

    def rows(self, reader, silos):
        return etw.tamper_rows(check_all(reader, silos))
