"""wmi.modules: loaded and unloaded modules of a process minidump."""

from volatility3.framework import interfaces

from wmiforensics.vol import inspection
from wmiforensics.vol.plugin_base import MinidumpTable


class WmiModules(MinidumpTable, interfaces.plugins.PluginInterface):
    """Lists the modules a process minidump's loader list reports, then its unloaded modules."""

    _required_framework_version = (2, 0, 0)
    _version = (1, 0, 0)
    columns = inspection.MODULE_COLUMNS

    def rows(self, dump):
        return inspection.module_rows(dump)
