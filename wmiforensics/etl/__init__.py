"""ETL (Event Trace Log) decoding without Volatility: buffers, trace records, TraceLogging, manifests.

The same ``_WMI_BUFFER_HEADER``-led buffers fill an ``.etl`` file and a logger context's memory, so one
decoder serves both. Everything read from a buffer is bounded by the buffer's own bytes.
"""
