"""Build script: everything else lives in setup.cfg.

The top-level ``plugins/`` folder stays what users pass to ``vol -p`` in a checkout. A wheel has no
checkout, so that folder is mapped into the package as ``wmiforensics/volatility_plugins`` and its
plugin files ride along as package data; ``wmi-forensics plugins-path`` finds whichever copy exists.
setup.cfg cannot express a package whose folder lies outside the package tree, hence this file.
"""

from setuptools import find_packages, setup

PLUGIN_PACKAGE = "wmiforensics.volatility_plugins"

setup(
    packages=[*find_packages(include=["wmiforensics", "wmiforensics.*"]), PLUGIN_PACKAGE],
    package_dir={PLUGIN_PACKAGE: "plugins"},
    package_data={PLUGIN_PACKAGE: ["**/*.py"]},
)
