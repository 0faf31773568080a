"""wmi.handles: open handles recorded in a process minidump."""

from typing import List

from volatility3.framework import interfaces, renderers
from volatility3.framework.configuration import requirements

from wmiforensics.vol import common, inspection


class WmiHandles(interfaces.plugins.PluginInterface):
    """Lists handles of a process minidump: type, object name and granted access."""

    _required_framework_version = (2, 0, 0)
    _version = (1, 0, 0)

    @classmethod
    def get_requirements(cls) -> List[interfaces.configuration.RequirementInterface]:
        return [
            requirements.TranslationLayerRequirement(
                name="primary", description="Memory layer of the process minidump"
            ),
            requirements.StringRequirement(
                name="type",
                description="Only handles of this object type (e.g. File, Key, Event)",
                optional=True,
            ),
        ]

    def _generator(self):
        dump = common.locate_minidump(self.context, self.config["primary"])
        common.report_warnings(dump)
        yield from inspection.handle_rows(dump, type_filter=self.config.get("type"))

    def run(self) -> renderers.TreeGrid:
        return renderers.TreeGrid(inspection.HANDLE_COLUMNS, common.guarded(self._generator()))
