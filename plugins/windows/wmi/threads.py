"""wmi.threads: threads of a process minidump and where their code lies."""

from volatility3.framework import interfaces
from volatility3.framework.configuration import requirements

from wmiforensics.vol import inspection, stackview
from wmiforensics.vol.plugin_base import MinidumpTable


class WmiThreads(MinidumpTable, interfaces.plugins.PluginInterface):
    """Lists threads of a process minidump: TEB, start address, IP and the region each lies in."""

    _required_framework_version = (2, 0, 0)
    _version = (1, 1, 0)
    columns = inspection.THREAD_COLUMNS

    @classmethod
    def options(cls):
        return [
            requirements.IntRequirement(
                name="frames",
                description="Also show up to N unwound stack frames of each thread (0: none)",
                default=0,
                optional=True,
            )
        ]

    def run(self):
        if self.config.get("frames"):
            self.columns = stackview.THREAD_FRAME_COLUMNS
        return super().run()

    def rows(self, dump):
        if self.config.get("frames"):
            return stackview.thread_rows_with_frames(dump, max(1, min(self.config["frames"], 64)))
        return inspection.thread_rows(dump)
