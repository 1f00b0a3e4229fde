"""User-facing errors: the CLI prints their message on one line, without a traceback, and
exits 1 (:class:`InputError`: bad data, files, models) or 2 (:class:`UsageError`: a bad
option or configuration value)."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input from the user (a file, a channel, a rate, a unit), with the fix in the message."""


class UsageError(InputError):
    """A bad option, choice or configuration key, with the valid ones in the message."""
