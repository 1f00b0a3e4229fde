"""``edgesleep data``: synthesize, fetch, inspect datasets."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeAlias

import typer

from edgesleep.cli.app import app
from edgesleep.cli.common import CACHE_HELP, CROP_HELP, Crop, InputKind, choices, need, print_table
from edgesleep.io.fetch import (
    CINC2018_URL,
    COHORT_URLS,
    DATASETS,
    HMC_URL,
    SLEEP_EDF_URL,
    SLPDB_URL,
    WALCH_URL,
)
from edgesleep.io.imports import COHORT_IMPORTERS, IMPORTERS, WITH_REQUIRE
from edgesleep.synth.psg import HYPNOGRAM_SOURCES

data_app = typer.Typer(
    help="Datasets: synthesize, fetch, import, inspect, compute features.", no_args_is_help=True
)
app.add_typer(data_app, name="data")
if TYPE_CHECKING:
    from edgesleep.io.dataset import Dataset as DatasetDir

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


REQUIRE_HELP = (
    "cinc2018, hmc: channels every record must hold, comma-separated (e.g. ECG); "
    "a record without one is left out and listed in dataset.json."
)


def _required(require: str | None, dataset: str) -> tuple[str, ...]:
    from edgesleep.errors import UsageError

    names = tuple(n.strip() for n in (require or "").split(",") if n.strip())
    if names and dataset not in WITH_REQUIRE:
        raise UsageError(f"--require is for {', '.join(WITH_REQUIRE)}, not {dataset}")
    return names


@data_app.command("fetch")
def data_fetch(
    out: Annotated[Path, typer.Option(help="Dataset directory to write.")],
    dataset: Annotated[Dataset, typer.Argument(help="Dataset to download.")] = "sleep-edf",
    subjects: Annotated[
        str | None,
        typer.Option(
            help="sleep-edf: SC subjects, e.g. 0-19 or 0,3,5-7 (default 0-19); "
            "walch: comma-separated ids; slpdb, cinc2018, hmc: comma-separated records "
            "(default all)."
        ),
    ] = None,
    count: Annotated[
        int | None,
        typer.Option(help="cinc2018, hmc: only the first N records (sorted by name)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="cinc2018, hmc: say how many files and bytes, download nothing.")
    ] = False,
    require: Annotated[str | None, typer.Option(help=REQUIRE_HELP)] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            help=f"Dataset root or a mirror (default {SLEEP_EDF_URL}, {WALCH_URL}, {SLPDB_URL}, "
            f"{CINC2018_URL}, {HMC_URL})."
        ),
    ] = None,
    signals: Annotated[
        bool, typer.Option(help="slpdb: also the 250-Hz signals (.dat, ~600 MB in all).")
    ] = False,
) -> None:
    """Download a dataset (Sleep-EDF SC-20 nights; Walch et al.'s watch heart rate and
    stages; slpdb's beat and stage annotations; the CinC 2018 training set's or HMC's
    PSGs), verify sha256, resume, write the dataset layout. For CinC 2018 and HMC the
    files and bytes are counted (HEAD requests) and said before anything is downloaded."""
    from edgesleep.errors import UsageError
    from edgesleep.io.fetch import (
        fetch_cohort,
        fetch_sleep_edf,
        fetch_slpdb,
        fetch_walch,
        parse_subjects,
        plan_cohort,
    )

    ids = [s.strip() for s in subjects.split(",") if s.strip()] if subjects else None
    required = _required(require, dataset)
    if (count is not None or dry_run) and dataset not in WITH_REQUIRE:
        raise UsageError(f"--count and --dry-run are for {', '.join(WITH_REQUIRE)}")
    if dataset in WITH_REQUIRE:
        plan = plan_cohort(dataset, base_url or COHORT_URLS[dataset], ids, count)
        typer.echo(plan.describe())
        if dry_run:
            return
        ds = fetch_cohort(plan, out, required)
        _say_imported(out, ds, dataset)
        return
    if dataset == "walch":
        ds = fetch_walch(out, ids, base_url or WALCH_URL)
    elif dataset == "slpdb":
        ds = fetch_slpdb(out, ids, base_url or SLPDB_URL, signals)
    else:
        ds = fetch_sleep_edf(out, parse_subjects(subjects or "0-19"), base_url or SLEEP_EDF_URL)
    typer.echo(f"{out}: {len(ds.entries)} nights of {len(ds.subjects)} subjects, verified")


def _say_imported(out: Path, ds: DatasetDir, dataset: str) -> None:
    """The import's summary, and every record left out with its reason."""
    kinds = sorted({Path(e.psg).suffix for e in ds.entries})
    typer.echo(f"{out}: {len(ds.entries)} nights of {len(ds.subjects)} subjects "
               f"({dataset}, real data; records {kinds})")  # fmt: skip
    failures = ds.info.get("failures") or {}
    if isinstance(failures, dict) and failures:
        typer.echo(f"{len(failures)} records left out (listed in {out}/dataset.json):")
        for record, reason in failures.items():
            typer.echo(f"  {record}: {reason}")


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
    require: Annotated[str | None, typer.Option(help=REQUIRE_HELP)] = None,
) -> None:
    """Read a real dataset in its own layout into the dataset layout that train, cv and
    distill read: walch (heart_rate/ + labels/), slpdb (WFDB records or CSV export), mass
    ('<id> PSG.edf' + '<id> Base.edf'), nsrr (EDFs + NSRR XML), cinc2018
    (training/<record>/<record>.hea, .mat, .arousal), hmc (SN001.edf +
    SN001_sleepscoring.edf). MASS, NSRR, CinC 2018 and HMC are not copied: the manifest
    points at their files. A CinC or HMC record that cannot be read is left out, with its
    reason."""
    required = _required(require, dataset)
    if dataset in COHORT_IMPORTERS:
        ds = COHORT_IMPORTERS[dataset](src, out, require=required)
    else:
        ds = IMPORTERS[dataset](src, out)
    _say_imported(out, ds, dataset)
