"""Deprecated (removed in the release after 0.2): ``python -m edgesleep.train`` is
``python -m edgesleep.cli.launch``, the torchrun entry point, which lives with the CLI so
that training never imports it."""

import runpy
import sys

if __name__ == "__main__":
    print("edgesleep: `python -m edgesleep.train` is deprecated; use "
          "`python -m edgesleep.cli.launch`", file=sys.stderr)  # fmt: skip
    runpy.run_module("edgesleep.cli.launch", run_name="__main__", alter_sys=True)
