"""wmi.regions: the memory regions of a process minidump, like windows.vadinfo."""

from volatility3.framework import interfaces
from volatility3.framework.configuration import requirements

from wmiforensics.vol import inspection
from wmiforensics.vol.plugin_base import MinidumpTable


class WmiRegions(MinidumpTable, interfaces.plugins.PluginInterface):
    """Lists memory regions of a process minidump: state, protection, type, captured bytes, module."""

    _required_framework_version = (2, 0, 0)
    _version = (1, 0, 0)
    columns = inspection.REGION_COLUMNS

    @classmethod
    def options(cls):
        return [
            requirements.BooleanRequirement(
                name="include_free", description="Also list free address ranges", default=False, optional=True
            )
        ]

    def rows(self, dump):
        return inspection.region_rows(dump, include_free=self.config.get("include_free", False))
