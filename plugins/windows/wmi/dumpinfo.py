"""wmi.dumpinfo: the first look at a process minidump."""

from volatility3.framework import interfaces

from wmiforensics.vol import inspection
from wmiforensics.vol.plugin_base import MinidumpTable


class WmiDumpInfo(MinidumpTable, interfaces.plugins.PluginInterface):
    """Summarises a process minidump: process, system, captured vs committed memory, streams, warnings."""

    _required_framework_version = (2, 0, 0)
    _version = (1, 0, 0)
    columns = inspection.SUMMARY_COLUMNS

    def rows(self, dump):
        return inspection.summary_rows(dump, dump.file_size)
