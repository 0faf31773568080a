"""wmi.etwbuffers: ETW buffers held by every logger context, validated; --dump writes one .etl each."""

from volatility3.framework import interfaces

from wmiforensics.etw.buffers import BufferRecovery
from wmiforensics.vol import dumps, etwbuffers
from wmiforensics.vol.plugin_base import EtwTable, dump_requirement


class WmiEtwBuffers(EtwTable, interfaces.plugins.PluginInterface):
    """Lists the buffers (GlobalList, flush and overflow queues, current buffer) of every ETW logger in
    every silo: state, events, first/last timestamp, and why a buffer was not used."""

    _required_framework_version = (2, 0, 0)
    _version = (1, 0, 0)
    columns = etwbuffers.BUFFER_COLUMNS

    @classmethod
    def get_requirements(cls):
        return [
            *cls.input_requirements(),
            dump_requirement("Write one .etl file per logger (logfile header, then its valid buffers)"),
            dumps.dump_limit_requirement(),
        ]

    def rows(self, reader, silos):
        dumper = dumps.Dumper.from_config(self.open if self.config.get("dump") else None, self.config)
        return etwbuffers.buffer_rows(BufferRecovery(reader).loggers(silos), dumper)
