"""The ``edgesleep`` application: one Typer app, the global options, and the one error
handler every verb runs under.

Expected failures end in one line on stderr and a non-zero exit, without a traceback
(``--debug`` shows it): exit 2 for usage errors (a bad option, choice or configuration key,
:class:`edgesleep.errors.UsageError`), exit 1 for data errors (a missing or bad file, a
missing channel, too few subjects: :class:`edgesleep.errors.InputError`, ``OSError``), 130
for Ctrl-C. Anything else is a bug: one line naming it, exit 1.
"""

from __future__ import annotations

import logging
import os
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from edgesleep import __version__
from edgesleep.errors import InputError, UsageError

log = logging.getLogger("edgesleep")


def fail(message: str, code: int) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


ORDER = ("data", "train", "evaluate", "cv", "distill", "adapt", "export", "stage", "stream",
         "emulate", "bench", "demo", "models")  # fmt: skip


class Verbs(TyperGroup):
    """The top-level group: runs every verb under the error handler; lists them in the
    order of the work (data -> training -> export -> device -> measurement)."""

    def list_commands(self, ctx: Any) -> list[str]:
        names = super().list_commands(ctx)
        return sorted(names, key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER))

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort):
            raise
        except TyperException as err:  # a bad option or choice, parsed inside invoke
            at = getattr(err, "ctx", None)
            where = at.command_path if at is not None else "edgesleep"
            fail(f"{err.format_message()} (see `{where} --help`)", err.exit_code)
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except Exception as err:
            if ctx.params.get("debug"):
                raise
            if isinstance(err, UsageError):
                fail(str(err), 2)
            if isinstance(err, InputError):
                fail(str(err), 1)
            if isinstance(err, OSError):
                where = f"{err.filename}: " if err.filename else ""
                fail(f"{where}{err.strerror or err}", 1)
            fail(
                f"internal error {type(err).__name__}: {err} (rerun with --debug and report it)", 1
            )


app = typer.Typer(
    name="edgesleep",
    cls=Verbs,
    help="Single-channel sleep staging for wearables: train, distil, export, stream, benchmark.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: paragraphs rewrapped to the terminal, [brackets] kept
)


def _version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit(0)


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
    debug: Annotated[bool, typer.Option(help="Show the traceback of a failure.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    import warnings

    from rich.console import Console
    from rich.logging import RichHandler

    # a deprecated name or option of ours says so on stderr (Python hides them by default)
    warnings.filterwarnings("default", category=DeprecationWarning, module=r"edgesleep(\.|$)")

    # rich's console looks up sys.stderr at each write (safe under test runners)
    handler = RichHandler(console=Console(stderr=True), show_time=False, show_path=False)
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if verbose or debug else logging.INFO)
    if int(os.environ.get("RANK", "0")) != 0:  # a torchrun rank other than 0: warnings only
        log.setLevel(logging.WARNING)
