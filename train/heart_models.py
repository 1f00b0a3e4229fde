"""Deprecated (removed in the release after 0.2): the shipped heart models are built by
:mod:`edgesleep.workflows.heart_models` (it uses export, so it lives above it)."""

import runpy
import sys

from edgesleep._moved import moved

_NEW = "edgesleep.workflows.heart_models"
__getattr__ = moved(__name__, _NEW)


if __name__ == "__main__":
    print(f"edgesleep: `python -m edgesleep.train.heart_models` is deprecated; use "
          f"`python -m {_NEW}`", file=sys.stderr)  # fmt: skip
    runpy.run_module(_NEW, run_name="__main__", alter_sys=True)
