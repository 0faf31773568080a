#!/usr/bin/env bash
# The one test command: installs what the tests need on a fresh machine, then lints and tests.
# README and .ci/run both call exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check -e ".[test]"

# LLVM's minidump reader and writer (lldb-22, obj2yaml-22, yaml2obj-22) check the suite against
# code it did not write. Debian packages: llvm-22, lldb-22, python3-lldb-22.
if ! command -v yaml2obj-22 >/dev/null 2>&1 || ! /usr/bin/python3 -c "import lldb" >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        llvm-22 lldb-22 python3-lldb-22 >/dev/null
fi

# MemProcFS (pip memprocfs, test extra) cross-checks the synthetic full images; its vmm.so links
# libusb-1.0. Debian package: libusb-1.0-0.
if ! python3 -c "import memprocfs" >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        libusb-1.0-0 >/dev/null
fi

python3 -m ruff check .
# pytest also tests the suite as users install it: tests/test_install.py builds the wheel (offline,
# with the setuptools and wheel of the test extra), installs it into a fresh venv outside the
# checkout and runs the installed wmi-forensics command and every plugin from there.
status=0
python3 -m pytest -q "$@" || status=$?
if [ "$status" = 5 ]; then
    echo "pytest collected no tests" >&2
fi
exit "$status"
