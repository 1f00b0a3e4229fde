"""``edgesleep data``: synthesize, fetch, inspect datasets."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeAlias

import typer

from edgesleep.cli.app import app
from edgesleep.cli.common import CACHE_HELP, CROP_HELP, Crop, InputKind, choices, need, print_table
from edgesleep.io.fetch import DATASETS, SLEEP_EDF_URL, SLPDB_URL, WALCH_URL
from edgesleep.io.imports import IMPORTERS
from edgesleep.synth.psg import HYPNOGRAM_SOURCES

data_app = typer.Typer(
    help="Datasets: synthesize, fetch, import, inspect, compute features.", no_args_is_help=True
)
app.add_typer(data_app, name="data")
if TYPE_CHECKING:
    Hypnograms: TypeAlias = str
    Dataset: TypeAlias = str
    Importer: TypeAlias = str
else:
    Hypnograms, Dataset = choices(HYPNOGRAM_SOURCES), choices(DATASETS)
    Importer = choices(IMPORTERS)


@data_app.command("synth")
def data_synth(
    out: Annotated[Path, typer.Option(help="Dataset directory to write.")],
    nights: Annotated[int, typer.Option(help="Number of nights (two per subject).")] = 4,
    seed: Annotated[int, typer.Option(help="Seed: same seed, same bytes.")] = 0,
    sfreq: Annotated[float, typer.Option(help="Sampling rate of every channel, Hz.")] = 100.0,
    hypnograms: Annotated[
        Hypnograms, typer.Option(help="real (SC-20), markov (simulated) or mixed.")
    ] = "mixed",
    artefacts: Annotated[
        str, typer.Option(help="Comma-separated: movement,flat,clipping,pops (none if empty).")
    ] = "",
) -> None:
    """Write SYNTHETIC EDF+ nights (EEG Fpz-Cz, EEG C4-A1, EOG horizontal, ECG) + manifest."""
    from rich.progress import track

    from edgesleep.synth.psg import synthesize_dataset

    kinds = tuple(k.strip() for k in artefacts.split(",") if k.strip())
    entries = synthesize_dataset(out, nights, seed, sfreq, hypnograms, kinds, progress=track)
    typer.echo(f"{out}: {len(entries)} SYNTHETIC nights written (EDF+ with stage annotations)")


@data_app.command("info")
def data_info(
    path: Annotated[Path, typer.Argument(help="EDF/EDF+ file or dataset directory.")],
) -> None:
    """Channels, rates, units, duration and annotations of an EDF file (or a dataset summary)."""
    from edgesleep.io.dataset import describe

    title, columns, rows, lines = describe(path)
    if rows:
        print_table(title, columns, rows)
    else:
        typer.echo(title)
    for line in lines:
        typer.echo(line)


@data_app.command("fetch")
def data_fetch(
    out: Annotated[Path, typer.Option(help="Dataset directory to write.")],
    dataset: Annotated[Dataset, typer.Argument(help="Dataset to download.")] = "sleep-edf",
    subjects: Annotated[
        str | None,
        typer.Option(
            help="sleep-edf: SC subjects, e.g. 0-19 or 0,3,5-7 (default 0-19); "
            "walch: comma-separated ids; slpdb: comma-separated records (default all)."
        ),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            help=f"Dataset root or a mirror (default {SLEEP_EDF_URL}, {WALCH_URL}, {SLPDB_URL})."
        ),
    ] = None,
    signals: Annotated[
        bool, typer.Option(help="slpdb: also the 250-Hz signals (.dat, ~600 MB in all).")
    ] = False,
) -> None:
    """Download a dataset (Sleep-EDF SC-20 nights; Walch et al.'s watch heart rate and
    stages; slpdb's beat and stage annotations), verify sha256, resume, write the dataset
    layout."""
    from edgesleep.io.fetch import fetch_sleep_edf, fetch_slpdb, fetch_walch, parse_subjects

    ids = [s.strip() for s in subjects.split(",") if s.strip()] if subjects else None
    if dataset == "walch":
        ds = fetch_walch(out, ids, base_url or WALCH_URL)
    elif dataset == "slpdb":
        ds = fetch_slpdb(out, ids, base_url or SLPDB_URL, signals)
    else:
        ds = fetch_sleep_edf(out, parse_subjects(subjects or "0-19"), base_url or SLEEP_EDF_URL)
    typer.echo(f"{out}: {len(ds.entries)} nights of {len(ds.subjects)} subjects, verified")


@data_app.command("features")
def data_features(
    data: Annotated[Path, typer.Argument(help="Dataset directory.")],
    channel: Annotated[str, typer.Option(help="Channel (label or alias).")],
    input_kind: Annotated[InputKind, typer.Option("--input", help="Input kind.")] = "stft",
    crop: Annotated[Crop, typer.Option(help=CROP_HELP)] = "in-bed",
    jobs: Annotated[int, typer.Option(min=1, help="Processes computing nights at once.")] = 1,
    shard: Annotated[
        str | None,
        typer.Option(help="I/N: only the I-th of N parts of the nights (a cluster array job)."),
    ] = None,
    cache: Annotated[Path | None, typer.Option(help=CACHE_HELP)] = None,
) -> None:
    """Compute each night's model input once into the feature cache (memory-mappable
    arrays) that train, cv, distill, evaluate and adapt read."""
    need("train")
    from rich.progress import Progress

    from edgesleep.io.dataset import read_dataset
    from edgesleep.train.cache import Request, cache_root, ensure, parse_shard
    from edgesleep.train.cache import shard as shard_of

    dataset = read_dataset(data)
    entries = list(dataset.entries)
    if shard is not None:
        entries = shard_of(entries, parse_shard(shard))
    with Progress(transient=True) as bar:
        task = bar.add_task("features", total=None)
        found = ensure(
            dataset, entries, Request(channel, input_kind, crop), cache, jobs,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )  # fmt: skip
    n_epochs = sum(index["n_epochs"] for _, index in found)
    root = cache_root(dataset, cache)
    typer.echo(f"{root}: {len(found)} nights, {n_epochs} epochs of {channel!r} ({input_kind})")


@data_app.command("merge")
def data_merge(
    sources: Annotated[
        list[str], typer.Argument(help="NAME=DIR for each dataset, e.g. walch=data/walch.")
    ],
    out: Annotated[Path, typer.Option(help="Dataset directory to write (a manifest only).")],
) -> None:
    """One dataset over several, e.g. two heart cohorts to train one model on (train with
    --channel heart: any heart series). Records and subjects get their dataset's name as
    a prefix; no file is copied."""
    from edgesleep.errors import UsageError
    from edgesleep.io.dataset import merge_datasets

    parts = dict(s.split("=", 1) for s in sources if "=" in s)
    if len(parts) != len(sources):
        raise UsageError(f"give each dataset as NAME=DIR, got {sources}")
    ds = merge_datasets({name: Path(root) for name, root in parts.items()}, out)
    typer.echo(f"{out}: {len(ds.entries)} nights of {len(ds.subjects)} subjects from "
               f"{', '.join(parts)}")  # fmt: skip


@data_app.command("import")
def data_import(
    dataset: Annotated[Importer, typer.Argument(help="What SRC holds.")],
    src: Annotated[Path, typer.Argument(help="The dataset's files (its original layout).")],
    out: Annotated[Path, typer.Option(help="Dataset directory to write.")],
) -> None:
    """Read a real dataset in its own layout into the dataset layout that train, cv and
    distill read: walch (heart_rate/ + labels/), slpdb (WFDB records or CSV export), mass
    ('<id> PSG.edf' + '<id> Base.edf'), nsrr (EDFs + NSRR XML). MASS and NSRR are not
    copied: the manifest points at their files."""
    ds = IMPORTERS[dataset](src, out)
    kinds = {Path(e.psg).suffix for e in ds.entries}
    typer.echo(f"{out}: {len(ds.entries)} nights of {len(ds.subjects)} subjects "
               f"({dataset}, real data; records {sorted(kinds)})")  # fmt: skip
