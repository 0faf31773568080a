"""wmi.activity: what was run through WMI, recovered from memory as WMI objects and calls."""

import logging

from volatility3.framework import interfaces, renderers

from wmiforensics.engine import Severity
from wmiforensics.vol import activity, common, dumps, grid
from wmiforensics.vol.plugin_base import WmiServiceInput, dump_requirement, min_severity_requirement

vollog = logging.getLogger(__name__)


class WmiActivity(WmiServiceInput, interfaces.plugins.PluginInterface):
    """Recovers WMI objects (MS-WMIO classes and instances) and IWbemServices request bodies from WMI
    process memory and says what each one did: process creation, event subscriptions, provider
    registration, registry changes, staging, log clearing, queries."""

    _required_framework_version = (2, 0, 0)
    _version = (1, 0, 0)

    @classmethod
    def get_requirements(cls):
        return [
            *cls.service_requirements(),
            min_severity_requirement("rows"),
            dump_requirement("Write whole scripts, command lines, queries and staged values to files"),
            dumps.dump_limit_requirement(),
        ]

    def _generator(self):
        min_severity = Severity.parse(self.config.get("min_severity") or "low")
        for facts in self.process_facts():
            found = activity.analyse(facts)
            hidden = sum(1 for item in found if item.severity < min_severity)
            if hidden:
                vollog.warning(
                    common.escape_control(
                        f"{facts.name} ({facts.pid}): {hidden} rows below --min-severity are not shown"
                    )
                )
            yield from activity.rows(found, facts, self.dumper(), min_severity)

    def run(self) -> renderers.TreeGrid:
        return grid.FittedTreeGrid(activity.ACTIVITY_COLUMNS, common.guarded(self._generator()))
