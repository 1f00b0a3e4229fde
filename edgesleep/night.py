"""Deprecated (removed in the release after 0.2):
``edgesleep.night`` is :mod:`edgesleep.night_file`."""

import importlib
import warnings
from typing import Any


def __getattr__(name: str) -> Any:
    warnings.warn(
        "edgesleep.night is deprecated; use edgesleep.night_file", DeprecationWarning, stacklevel=2
    )
    return getattr(importlib.import_module("edgesleep.night_file"), name)
