"""wmi.yarascan: the bundled WMI-abuse YARA rules (or yours) over process memory, hits in context."""

import logging
from typing import List

from volatility3.framework import interfaces, renderers
from volatility3.framework.configuration import requirements

from wmiforensics.backends.kernel import hosts_winmgmt
from wmiforensics.vol import common, inputs, yarascan
from wmiforensics.yarascan import RulePack, scan_process

vollog = logging.getLogger(__name__)


class WmiYaraScan(interfaces.plugins.PluginInterface):
    """Scans WMI process memory (minidump or full image) with YARA rules; every hit is placed in its
    region, protection and module."""

    _required_framework_version = (2, 0, 0)
    _version = (1, 1, 0)
    default_names = ["WmiPrvSE.exe", "scrcons.exe"]

    @classmethod
    def get_requirements(cls) -> List[interfaces.configuration.RequirementInterface]:
        return [
            inputs.kernel_requirement(),
            *inputs.selection_requirements([*cls.default_names, "the Winmgmt svchost.exe"], with_all=True),
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

    @classmethod
    def unsatisfied(cls, context, config_path):
        return inputs.accept_any_input(super().unsatisfied(context, config_path), config_path)

    def _rule_pack(self) -> RulePack:
        if self.config.get("yara_rules"):
            return RulePack.from_source(self.config["yara_rules"])
        if self.config.get("yara_file"):
            return RulePack.from_file(self.config["yara_file"])
        return RulePack.from_directory()

    def _generator(self):
        pack = self._rule_pack()
        source = inputs.resolve_input(self.context, self.config_path)
        if hasattr(source, "warnings"):
            common.report_warnings(source)
        open_file = self.open if self.config.get("dump") else None
        for facts in inputs.facts_for(
            self.context,
            source,
            pids=self.config.get("pid"),
            names=self.config.get("name"),
            default_names=self.default_names,
            every_process=bool(self.config.get("all")),
            extra=hosts_winmgmt,
        ):
            yield from yarascan.rows(scan_process(facts, pack), facts, open_file)

    def run(self) -> renderers.TreeGrid:
        return renderers.TreeGrid(yarascan.YARASCAN_COLUMNS, common.guarded(self._generator()))
