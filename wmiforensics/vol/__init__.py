"""Glue between the suite's readers and Volatility 3: layer lookup, error handling, row builders."""
