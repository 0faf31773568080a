"""wmi.etwloggers: ETW state read from a full memory image's kernel."""

from volatility3.framework import interfaces

from wmiforensics.vol import etw
from wmiforensics.vol.plugin_base import EtwTable


class WmiEtwLoggers(EtwTable, interfaces.plugins.PluginInterface):
    """Lists active ETW trace sessions (_WMI_LOGGER_CONTEXT) per silo: name, file, mode, buffers,
    events lost, clock."""

    _required_framework_version = (2, 0, 0)
    _version = (1, 0, 0)
    columns = etw.LOGGER_COLUMNS

    def rows(self, reader, silos):
        return etw.logger_rows(silos)
