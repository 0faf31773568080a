"""wmi.yarascan: the bundled WMI-abuse YARA rules (or yours) over process memory, hits in context."""

from volatility3.framework import interfaces, renderers
from volatility3.framework.configuration import requirements

from wmiforensics.vol import common, yarascan
from wmiforensics.vol.plugin_base import WmiServiceInput
from wmiforensics.yarascan import RulePack, scan_process


class WmiYaraScan(WmiServiceInput, interfaces.plugins.PluginInterface):
    """Scans WMI process memory (minidump or full image) with YARA rules; every hit is placed in its
    region, protection and module."""

    _required_framework_version = (2, 0, 0)
    _version = (1, 1, 0)

    @classmethod
    def get_requirements(cls):
        return [
            *cls.service_requirements(),
            requirements.StringRequirement(
                name="yara_file",
                description="YARA rule file to use instead of the bundled rules",
                optional=True,
            ),
            requirements.StringRequirement(
                name="yara_rules",
                description="YARA rule source text to use instead of the bundled rules",
                optional=True,
            ),
            requirements.BooleanRequirement(
                name="dump",
                description="Write each region with a hit to the output folder",
                default=False,
                optional=True,
            ),
        ]

    def _rule_pack(self) -> RulePack:
        if self.config.get("yara_rules"):
            return RulePack.from_source(self.config["yara_rules"])
        if self.config.get("yara_file"):
            return RulePack.from_file(self.config["yara_file"])
        return RulePack.from_directory()

    def _generator(self):
        pack = self._rule_pack()
        for facts in self.process_facts():
            yield from yarascan.rows(scan_process(facts, pack), facts, self.file_opener())

    def run(self) -> renderers.TreeGrid:
        return renderers.TreeGrid(yarascan.YARASCAN_COLUMNS, common.guarded(self._generator()))
