"""Deprecated (removed in the release after 0.2):
``edgesleep.train.staging`` is :mod:`edgesleep.train.sequence_model`."""

import importlib
import warnings
from typing import Any


def __getattr__(name: str) -> Any:
    warnings.warn(
        "edgesleep.train.staging is deprecated; use edgesleep.train.sequence_model",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module("edgesleep.train.sequence_model"), name)
