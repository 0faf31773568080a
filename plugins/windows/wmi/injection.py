"""wmi.injection: memory of a WMI process that holds code the loader did not put there."""

import logging

from volatility3.framework import interfaces, renderers
from volatility3.framework.configuration import requirements

from wmiforensics.engine import AllowList, Severity, analyse
from wmiforensics.vol import common, dumps, grid, injection
from wmiforensics.vol.plugin_base import AnyInput, dump_requirement, min_severity_requirement

vollog = logging.getLogger(__name__)


class WmiInjection(AnyInput, interfaces.plugins.PluginInterface):
    """Finds injected PE images, shellcode, masquerading or unlisted modules, unbacked threads and
    patched ETW functions in a process minidump or a full memory image, with evidence for each."""

    _required_framework_version = (2, 0, 0)
    _version = (1, 2, 0)
    default_names = ["WmiPrvSE.exe"]

    @classmethod
    def get_requirements(cls):
        return [
            *cls.input_requirements(),
            min_severity_requirement("findings"),
            requirements.StringRequirement(
                name="allow_list",
                description="File of known-good findings to hide (see wmiforensics/engine/allowlist.py)",
                optional=True,
            ),
            dump_requirement("Write each flagged range (and a rebuilt PE where found) to the output folder"),
            dumps.dump_limit_requirement(),
        ]

    def _generator(self):
        allow_list = AllowList.load(self.config["allow_list"]) if self.config.get("allow_list") else None
        min_severity = Severity.parse(self.config.get("min_severity") or "low")
        for facts in self.process_facts():
            analysis = analyse(facts, min_severity=min_severity, allow_list=allow_list)
            for note in analysis.notes:
                vollog.warning(common.escape_control(f"{facts.name} ({facts.pid}): {note}"))
            if analysis.below_threshold or analysis.allowed:
                hidden = f"{analysis.below_threshold} findings below --min-severity"
                vollog.warning(
                    common.escape_control(
                        f"{facts.name} ({facts.pid}): {hidden} and {analysis.allowed} matched by the "
                        "allow-list are not shown"
                    )
                )
            yield from injection.rows(analysis.findings, facts, self.dumper())

    def run(self) -> renderers.TreeGrid:
        return grid.FittedTreeGrid(injection.INJECTION_COLUMNS, common.guarded(self._generator()))
