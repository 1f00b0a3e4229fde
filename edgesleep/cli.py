"""The ``edgesleep`` command line: one entry point, one verb per job.

Heavy work lives in the modules each verb imports when it runs, so ``edgesleep --help``
imports neither torch nor onnx.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import NoReturn

import typer

from edgesleep import __version__
from edgesleep.errors import InputError

app = typer.Typer(
    name="edgesleep",
    help="Single-channel sleep staging for wearables: train, distil, export, stream, benchmark.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Datasets: synthesize, fetch, inspect.", no_args_is_help=True)
app.add_typer(data_app, name="data")

log = logging.getLogger("edgesleep")


def _fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(1)


def _run(job: Callable[[], None]) -> None:
    """Run a verb; user errors become one line on stderr and exit 1, no traceback."""
    try:
        job()
    except (InputError, FileNotFoundError) as err:
        _fail(str(err))


@app.callback()
def _main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit(0)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if verbose else logging.INFO)


_PLACEHOLDER = {"allow_extra_args": True, "ignore_unknown_options": True}


def _placeholder(verb: str, issue: str) -> Callable[[], None]:
    def command() -> None:
        typer.secho(
            f"`edgesleep {verb}` is not implemented yet: it arrives with {issue}.",
            err=True,
            fg=typer.colors.YELLOW,
        )
        raise typer.Exit(2)

    command.__doc__ = f"(not yet implemented: {issue})"
    return command


for _verb, _issue in {
    "train": "issue 5 (SeqSleepNet with transfer learning)",
    "evaluate": "issue 5 (SeqSleepNet with transfer learning)",
    "cv": "issue 5 (SeqSleepNet with transfer learning)",
    "adapt": "issue 5 (SeqSleepNet with transfer learning)",
    "distill": "issue 6 (compact student and EEG->ECG distillation)",
    "export": "issue 8 (export to ONNX and int8)",
    "stage": "issue 9 (stager, stage a night, the demo)",
    "demo": "issue 9 (stager, stage a night, the demo)",
    "stream": "issue 10 (serial feed)",
    "emulate": "issue 10 (serial feed)",
    "bench": "issue 11 (benchmarks)",
}.items():
    app.command(_verb, context_settings=_PLACEHOLDER)(_placeholder(_verb, _issue))

for _verb, _issue in {
    "synth": "issue 4 (synthetic PSG generator)",
    "fetch": "issue 3 (real-format I/O and data fetch)",
    "info": "issue 3 (real-format I/O and data fetch)",
}.items():
    data_app.command(_verb, context_settings=_PLACEHOLDER)(_placeholder(f"data {_verb}", _issue))
