"""Modules that moved keep their old path for one release (the deprecation policy in
``CHANGELOG.md``): the old module is a stub whose attributes come from the new one, with a
``DeprecationWarning``."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any


def moved(old: str, new: str) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``old`` that forwards to ``new``."""

    def __getattr__(name: str) -> Any:
        warnings.warn(f"{old} is deprecated; use {new}", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(new), name)

    return __getattr__
