"""wmi.threads: threads of a process minidump and where their code lies."""

from typing import List

from volatility3.framework import interfaces, renderers
from volatility3.framework.configuration import requirements

from wmiforensics.vol import common, inspection


class WmiThreads(interfaces.plugins.PluginInterface):
    """Lists threads of a process minidump: TEB, start address, IP and the region each lies in."""

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
        yield from inspection.thread_rows(dump)

    def run(self) -> renderers.TreeGrid:
        return renderers.TreeGrid(inspection.THREAD_COLUMNS, common.guarded(self._generator()))
