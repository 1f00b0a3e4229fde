"""Deprecated (removed in the release after 0.2):
``edgesleep.synth.night`` is :mod:`edgesleep.synth.psg`."""

import importlib
import warnings
from typing import Any


def __getattr__(name: str) -> Any:
    warnings.warn(
        "edgesleep.synth.night is deprecated; use edgesleep.synth.psg",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module("edgesleep.synth.psg"), name)
