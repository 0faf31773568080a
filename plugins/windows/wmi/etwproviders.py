"""wmi.etwproviders: ETW state read from a full memory image's kernel."""

from volatility3.framework import interfaces

from wmiforensics.vol import etw
from wmiforensics.vol.plugin_base import EtwTable


class WmiEtwProviders(EtwTable, interfaces.plugins.PluginInterface):
    """Lists ETW providers from the kernel GUID hash table: registrations, enable state and the
    sessions enabling each."""

    _required_framework_version = (2, 0, 0)
    _version = (1, 0, 0)
    columns = etw.PROVIDER_COLUMNS

    def rows(self, reader, silos):
        return etw.provider_rows(silos)
