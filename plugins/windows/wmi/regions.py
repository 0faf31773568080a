"""wmi.regions: the memory regions of a process minidump, like windows.vadinfo."""

from typing import List

from volatility3.framework import interfaces, renderers
from volatility3.framework.configuration import requirements

from wmiforensics.vol import common, inspection


class WmiRegions(interfaces.plugins.PluginInterface):
    """Lists memory regions of a process minidump: state, protection, type, captured bytes, module."""

    _required_framework_version = (2, 0, 0)
    _version = (1, 0, 0)

    @classmethod
    def get_requirements(cls) -> List[interfaces.configuration.RequirementInterface]:
        return [
            requirements.TranslationLayerRequirement(
                name="primary", description="Memory layer of the process minidump"
            ),
            requirements.BooleanRequirement(
                name="include_free",
                description="Also list free address ranges",
                default=False,
                optional=True,
            ),
        ]

    def _generator(self):
        dump = common.locate_minidump(self.context, self.config["primary"])
        common.report_warnings(dump)
        yield from inspection.region_rows(dump, include_free=self.config.get("include_free", False))

    def run(self) -> renderers.TreeGrid:
        return renderers.TreeGrid(inspection.REGION_COLUMNS, common.guarded(self._generator()))
