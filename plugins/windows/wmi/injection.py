"""wmi.injection: memory of a WMI process that holds code the loader did not put there."""

import logging
from typing import List

from volatility3.framework import interfaces, renderers
from volatility3.framework.configuration import requirements

from wmiforensics.backends.minidump import facts_from_minidump
from wmiforensics.engine import AllowList, Severity, analyse
from wmiforensics.vol import common, injection

vollog = logging.getLogger(__name__)


class WmiInjection(interfaces.plugins.PluginInterface):
    """Finds injected PE images, shellcode, masquerading or unlisted modules, unbacked threads and
    patched ETW functions, each with its evidence, severity and confidence."""

    _required_framework_version = (2, 0, 0)
    _version = (1, 0, 0)

    @classmethod
    def get_requirements(cls) -> List[interfaces.configuration.RequirementInterface]:
        return [
            requirements.TranslationLayerRequirement(
                name="primary", description="Memory layer of the process minidump"
            ),
            requirements.ChoiceRequirement(
                name="min_severity",
                description="Hide findings below this severity",
                choices=[level.name.lower() for level in Severity],
                default="low",
                optional=True,
            ),
            requirements.StringRequirement(
                name="allow_list",
                description="File of known-good findings to hide (see wmiforensics/engine/allowlist.py)",
                optional=True,
            ),
            requirements.BooleanRequirement(
                name="dump",
                description="Write each flagged range (and a rebuilt PE where found) to the output folder",
                default=False,
                optional=True,
            ),
        ]

    def _generator(self):
        allow_list = AllowList.load(self.config["allow_list"]) if self.config.get("allow_list") else None
        dump = common.locate_minidump(self.context, self.config["primary"])
        common.report_warnings(dump)
        facts = facts_from_minidump(dump)
        analysis = analyse(
            facts,
            min_severity=Severity.parse(self.config.get("min_severity") or "low"),
            allow_list=allow_list,
        )
        for note in analysis.notes:
            vollog.warning(f"{dump.name}: {note}")
        if analysis.below_threshold or analysis.allowed:
            vollog.warning(
                f"{analysis.below_threshold} findings below --min-severity and {analysis.allowed} "
                "matched by the allow-list are not shown"
            )
        open_file = self.open if self.config.get("dump") else None
        yield from injection.rows(analysis.findings, facts, open_file)

    def run(self) -> renderers.TreeGrid:
        return renderers.TreeGrid(injection.INJECTION_COLUMNS, common.guarded(self._generator()))
