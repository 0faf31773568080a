"""YARA scanning of process memory with every hit placed in its region, protection and module."""

from .rules import RuleInfo, RulePack, bundled_rules_dir
from .scanner import Hit, scan_process

__all__ = ["Hit", "RuleInfo", "RulePack", "bundled_rules_dir", "scan_process"]
