"""Deprecated (removed in the release after 0.2): the shipped heart models are built by
:mod:`edgesleep.workflows.heart_models` (it uses export, so it lives above it)."""

import importlib
import runpy
import sys
import warnings
from typing import Any

_NEW = "edgesleep.workflows.heart_models"


def __getattr__(name: str) -> Any:
    warnings.warn(f"edgesleep.train.heart_models is deprecated; use {_NEW}", DeprecationWarning,
                  stacklevel=2)  # fmt: skip
    return getattr(importlib.import_module(_NEW), name)


if __name__ == "__main__":
    print(f"edgesleep: `python -m edgesleep.train.heart_models` is deprecated; use "
          f"`python -m {_NEW}`", file=sys.stderr)  # fmt: skip
    runpy.run_module(_NEW, run_name="__main__", alter_sys=True)
