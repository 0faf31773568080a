"""wmi.dumpinfo: the first look at a process minidump."""

from typing import List

from volatility3.framework import interfaces, renderers
from volatility3.framework.configuration import requirements

from wmiforensics.vol import common, inspection


class WmiDumpInfo(interfaces.plugins.PluginInterface):
    """Summarises a process minidump: process, system, captured vs committed memory, streams, warnings."""

    _required_framework_version = (2, 0, 0)
    _version = (1, 0, 0)

    @classmethod
    def get_requirements(cls) -> List[interfaces.configuration.RequirementInterface]:
        return [
            requirements.TranslationLayerRequirement(
                name="primary", description="Memory layer of the process minidump"
            ),
        ]

    def _generator(self):
        dump = common.locate_minidump(self.context, self.config["primary"])
        common.report_warnings(dump)
        yield from inspection.summary_rows(dump, dump.file_size)

    def run(self) -> renderers.TreeGrid:
        return renderers.TreeGrid(inspection.SUMMARY_COLUMNS, common.guarded(self._generator()))
