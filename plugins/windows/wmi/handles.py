"""wmi.handles: open handles recorded in a process minidump."""

from volatility3.framework import interfaces
from volatility3.framework.configuration import requirements

from wmiforensics.vol import inspection
from wmiforensics.vol.plugin_base import MinidumpTable


class WmiHandles(MinidumpTable, interfaces.plugins.PluginInterface):
    """Lists handles of a process minidump: type, object name and granted access."""

    _required_framework_version = (2, 0, 0)
    _version = (1, 0, 0)
    columns = inspection.HANDLE_COLUMNS

    @classmethod
    def options(cls):
        return [
            requirements.StringRequirement(
                name="type",
                description="Only handles of this object type (e.g. File, Key, Event)",
                optional=True,
            )
        ]

    def rows(self, dump):
        return inspection.handle_rows(dump, type_filter=self.config.get("type"))
