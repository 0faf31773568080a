"""Running the suite's plugins in-process on many dumps: one-dump runner, batch on Dask, reports."""
