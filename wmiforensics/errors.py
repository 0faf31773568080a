"""Errors that end a run with one clear message instead of a traceback."""

from __future__ import annotations


class WmiForensicsError(Exception):
    """Base class: ``str(error)`` is the whole message shown to the user."""

    #: Process exit status used when this error ends a ``vol`` run.
    exit_code = 2


class InputError(WmiForensicsError):
    """The input file cannot be used for the requested job (wrong kind, unreadable, unsupported)."""


class MinidumpError(InputError):
    """A minidump is too damaged to read anything useful from it."""


class NotAMinidumpError(InputError):
    """The file does not start with the MDMP signature."""
