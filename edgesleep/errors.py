"""User-facing errors: the CLI prints their message on one line and exits 1."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input from the user (a file, a channel, a rate, a unit), with the fix in the message."""
