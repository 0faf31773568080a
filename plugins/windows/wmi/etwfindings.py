"""wmi.etwfindings: what the events in ETW buffers show (a sibling of wmi.etwtamper)."""

from volatility3.framework import interfaces

from wmiforensics.etw.buffers import BufferRecovery
from wmiforensics.vol import etwbuffers
from wmiforensics.vol.plugin_base import EtwTable


class WmiEtwFindings(EtwTable, interfaces.plugins.PluginInterface):
    """Flags permanent WMI subscriptions registered (5861), WMI providers loaded from unusual paths
    (5857) and AMSI content matching the bundled YARA rules, from events still in kernel buffers."""

    _required_framework_version = (2, 0, 0)
    _version = (1, 0, 0)
    columns = etwbuffers.FINDING_COLUMNS

    def rows(self, reader, silos):
        return etwbuffers.finding_rows(etwbuffers.located_events(BufferRecovery(reader).loggers(silos)))
