"""wmi.yarascan: the bundled WMI-abuse YARA rules (or yours) over process memory, hits in context."""

import logging
from typing import List

from volatility3.framework import interfaces, renderers
from volatility3.framework.configuration import requirements

from wmiforensics.backends.minidump import facts_from_minidump
from wmiforensics.vol import common, yarascan
from wmiforensics.yarascan import RulePack, scan_process

vollog = logging.getLogger(__name__)


class WmiYaraScan(interfaces.plugins.PluginInterface):
    """Scans process memory with YARA rules and places every hit in its region, protection and module."""

    _required_framework_version = (2, 0, 0)
    _version = (1, 0, 0)

    @classmethod
    def get_requirements(cls) -> List[interfaces.configuration.RequirementInterface]:
        return [
            requirements.TranslationLayerRequirement(
                name="primary", description="Memory layer of the process minidump"
            ),
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
        dump = common.locate_minidump(self.context, self.config["primary"])
        common.report_warnings(dump)
        facts = facts_from_minidump(dump)
        open_file = self.open if self.config.get("dump") else None
        yield from yarascan.rows(scan_process(facts, pack), facts, open_file)

    def run(self) -> renderers.TreeGrid:
        return renderers.TreeGrid(yarascan.YARASCAN_COLUMNS, common.guarded(self._generator()))
