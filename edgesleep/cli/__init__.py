"""The ``edgesleep`` command line: one entry point (``app``), one verb per job, a module per
verb group. Verbs parse options and call library functions; the one error handler is in
:mod:`edgesleep.cli.app`. Heavy work lives in the modules each verb imports when it runs, so
``edgesleep --help`` imports neither torch nor onnx."""

from edgesleep.cli import data, export, stage, tools, train
from edgesleep.cli.app import app

__all__ = ["app", "data", "export", "stage", "tools", "train"]
