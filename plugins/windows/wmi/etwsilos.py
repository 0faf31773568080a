"""wmi.etwsilos: ETW state read from a full memory image's kernel."""

from volatility3.framework import interfaces

from wmiforensics.vol import etw
from wmiforensics.vol.plugin_base import EtwTable


class WmiEtwSilos(EtwTable, interfaces.plugins.PluginInterface):
    """Lists every ETW silo driver state (host and server silos) field by field, as
    dt _ETW_SILODRIVERSTATE would."""

    _required_framework_version = (2, 0, 0)
    _version = (1, 0, 0)
    columns = etw.SILO_COLUMNS

    def rows(self, reader, silos):
        return etw.silo_rows(silos)
