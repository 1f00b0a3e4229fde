"""The ``edgesleep`` command line: one entry point, one verb per job.

Heavy work lives in the modules each verb imports when it runs, so ``edgesleep --help``
imports neither torch nor onnx.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from edgesleep import __version__
from edgesleep.errors import InputError
from edgesleep.io.fetch import SLEEP_EDF_URL

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
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
    version: Annotated[bool, typer.Option(help="Print the version and exit.")] = False,
) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit(0)
    from rich.console import Console
    from rich.logging import RichHandler

    # rich's console looks up sys.stderr at each write (safe under test runners)
    handler = RichHandler(console=Console(stderr=True), show_time=False, show_path=False)
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


@data_app.command("synth")
def data_synth(
    out: Annotated[Path, typer.Option(help="Dataset directory to write.")],
    nights: Annotated[int, typer.Option(help="Number of nights (two per subject).")] = 4,
    seed: Annotated[int, typer.Option(help="Seed: same seed, same bytes.")] = 0,
    sfreq: Annotated[float, typer.Option(help="Sampling rate of every channel, Hz.")] = 100.0,
    hypnograms: Annotated[
        str, typer.Option(help="real (SC-20), markov (simulated) or mixed.")
    ] = "mixed",
    artefacts: Annotated[
        str, typer.Option(help="Comma-separated: movement,flat,clipping,pops (none if empty).")
    ] = "",
) -> None:
    """Write SYNTHETIC EDF+ nights (EEG Fpz-Cz, EEG C4-A1, EOG horizontal, ECG) + manifest."""

    def job() -> None:
        from rich.progress import track

        from edgesleep.synth.night import synthesize_dataset

        kinds = tuple(k.strip() for k in artefacts.split(",") if k.strip())
        entries = synthesize_dataset(out, nights, seed, sfreq, hypnograms, kinds, progress=track)
        typer.echo(f"{out}: {len(entries)} SYNTHETIC nights written (EDF+ with stage annotations)")

    _run(job)


@data_app.command("info")
def data_info(
    path: Annotated[Path, typer.Argument(help="EDF/EDF+ file or dataset directory.")],
) -> None:
    """Channels, rates, units, duration and annotations of an EDF file (or a dataset summary)."""
    from rich.console import Console
    from rich.table import Table

    def job() -> None:
        console = Console()
        if path.is_dir():
            from edgesleep.io.dataset import read_dataset

            ds = read_dataset(path)
            console.print(
                f"{path}: {len(ds.entries)} nights, {len(ds.subjects)} subjects, "
                f"{'SYNTHETIC' if ds.synthetic else 'real'} ({ds.info.get('name', '?')})"
            )
            return
        from edgesleep.io import edf

        head = edf.header(path)
        table = Table(title=f"{path.name}: start {head['start']}, {head['duration_s']:.0f} s")
        for col in ("#", "channel", "Hz", "unit", "samples"):
            table.add_column(col)
        for ch in edf.channels(path):
            table.add_row(str(ch.index), ch.label, f"{ch.sfreq:g}", ch.unit, str(ch.n_times))
        console.print(table)
        annotations = edf.read_annotations(path)
        counts = Counter(a.description for a in annotations)
        console.print(f"{len(annotations)} annotations" + (":" if counts else ""))
        for text, n in counts.most_common():
            console.print(f"  {n:6d}  {text}")

    _run(job)


@data_app.command("fetch")
def data_fetch(
    out: Annotated[Path, typer.Option(help="Dataset directory to write.")],
    dataset: Annotated[str, typer.Argument(help="Dataset to download: sleep-edf.")] = "sleep-edf",
    subjects: Annotated[str, typer.Option(help="SC subjects, e.g. 0-19 or 0,3,5-7.")] = "0-19",
    base_url: Annotated[str, typer.Option(help="Dataset root (or a mirror).")] = SLEEP_EDF_URL,
) -> None:
    """Download Sleep-EDF SC-20 nights, verify sha256, resume, write the dataset layout."""

    def job() -> None:
        if dataset != "sleep-edf":
            raise InputError(f"unknown dataset {dataset!r}; available: ['sleep-edf']")
        from edgesleep.io.fetch import fetch_sleep_edf, parse_subjects

        ds = fetch_sleep_edf(out, parse_subjects(subjects), base_url)
        typer.echo(f"{out}: {len(ds.entries)} nights of {len(ds.subjects)} subjects, verified")

    _run(job)
