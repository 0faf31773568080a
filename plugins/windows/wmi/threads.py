"""wmi.threads: threads of a process minidump and where their code lies."""

from volatility3.framework import interfaces

from wmiforensics.vol import inspection
from wmiforensics.vol.plugin_base import MinidumpTable


class WmiThreads(MinidumpTable, interfaces.plugins.PluginInterface):
    """Lists threads of a process minidump: TEB, start address, IP and the region each lies in."""

    _required_framework_version = (2, 0, 0)
    _version = (1, 0, 0)
    columns = inspection.THREAD_COLUMNS

    def rows(self, dump):
        return inspection.thread_rows(dump)
