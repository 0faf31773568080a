"""wmi-forensics: find attacks hiding in and around WMI in Windows memory.

The package holds everything the thin Volatility plugins in ``plugins/`` share: the minidump
format reader and layer, detection logic and rendering helpers.
"""

__version__ = "0.1.0"
