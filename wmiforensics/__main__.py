"""``python3 -m wmiforensics`` is the ``wmi-forensics`` command."""

from .cli import entry_point

entry_point()
