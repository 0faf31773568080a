"""wmi.etwevents: the events still in ETW buffers in kernel memory, decoded."""

from volatility3.framework import interfaces

from wmiforensics.etw.buffers import BufferRecovery
from wmiforensics.vol import etwbuffers
from wmiforensics.vol.plugin_base import EtwTable


class WmiEtwEvents(EtwTable, interfaces.plugins.PluginInterface):
    """Decodes every record of every valid ETW buffer: TraceLogging from its own metadata, WMI-Activity,
    AMSI and Kernel-Process from their manifest layouts, raw user data for the rest."""

    _required_framework_version = (2, 0, 0)
    _version = (1, 0, 0)
    columns = etwbuffers.EVENT_COLUMNS

    def rows(self, reader, silos):
        return etwbuffers.event_rows(etwbuffers.located_events(BufferRecovery(reader).loggers(silos)))
