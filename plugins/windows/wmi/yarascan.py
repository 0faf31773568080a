"""wmi.yarascan: the bundled WMI-abuse YARA rules (or yours) over process memory, hits in context."""

from volatility3.framework import interfaces, renderers
from volatility3.framework.configuration import requirements

from wmiforensics.backends.bounds import is_region_budget_note
from wmiforensics.vol import common, dumps, grid, yarascan
from wmiforensics.vol.plugin_base import WmiServiceInput, dump_requirement
from wmiforensics.yarascan import RulePack, scan_process
from wmiforensics.yarascan.rules import parse_defines


class WmiYaraScan(WmiServiceInput, interfaces.plugins.PluginInterface):
    """Scans WMI process memory (minidump or full image) with YARA rules; every hit is placed in its
    region, protection and module."""

    _required_framework_version = (2, 0, 0)
    _version = (1, 2, 0)

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
            requirements.ListRequirement(
                name="yara_define",
                element_type=str,
                description="NAME=VALUE for an external variable the rules read (true/false, number or text)",
                optional=True,
            ),
            dump_requirement("Write each region with a hit to the output folder"),
            dumps.dump_limit_requirement(),
        ]

    def _rule_pack(self) -> RulePack:
        defines = parse_defines(self.config.get("yara_define"))
        if self.config.get("yara_rules"):
            return RulePack.from_source(self.config["yara_rules"], defines)
        if self.config.get("yara_file"):
            return RulePack.from_file(self.config["yara_file"], defines)
        return RulePack.from_directory(defines=defines)

    def _generator(self):
        pack = self._rule_pack()
        for facts in self.process_facts():
            for note in facts.notes:
                if is_region_budget_note(note):
                    common.vollog.warning(common.escape_control(f"{facts.name} ({facts.pid}): {note}"))
            hits = scan_process(facts, pack, self._progress_callback)
            yield from yarascan.rows(hits, facts, self.dumper())

    def run(self) -> renderers.TreeGrid:
        return grid.FittedTreeGrid(yarascan.YARASCAN_COLUMNS, common.guarded(self._generator()))
