"""The ``edgesleep`` command line: one entry point, one verb per job.

Heavy work lives in the modules each verb imports when it runs, so ``edgesleep --help``
imports neither torch nor onnx.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

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


@app.command("bench")
def bench(
    models: Annotated[list[Path], typer.Argument(help="Exported model folders.")],
    out: Annotated[Path, typer.Option(help="Folder for bench.json / bench.md.")] = Path(
        "bench/results"
    ),
    quick: Annotated[bool, typer.Option(help="40 epochs and 5 s at real time.")] = False,
    sfreq: Annotated[float, typer.Option(help="Device rate of the test signal, Hz.")] = 100.0,
    threads: Annotated[
        list[int] | None,
        typer.Option(help="onnxruntime threads to measure (repeat the option); default 1 "
                     "and all cores."),
    ] = None,
) -> None:  # fmt: skip
    """Latency, CPU per hour, wake-ups, memory, size and parity of exported models on this
    machine (fp32 and int8, 1 thread and all cores), beside the naive stream and torch."""

    def job() -> None:
        from edgesleep.bench.runtime import goals, run, write

        result = run(models, quick, sfreq, progress=lambda s: log.info("bench: %s", s),
                     thread_counts=threads)  # fmt: skip
        write(result, out, "bench-quick" if quick else "bench")
        rows = [
            [
                f"{r['model']} {r['precision']} {r['threads']}t",
                f"{r['model_ms_p50']:.3f}",
                f"{r['stream']['end_to_end_ms']['p50']:.3f}",
                f"{r['naive_stream']['end_to_end_ms']['p50']:.3f}",
                f"{r['stream']['cpu_s_per_hour']:.3f}",
                f"{r['offline_s']:.3f}",
                f"{r['bytes'] / 1024:.0f}",
            ]
            for r in result["rows"]
        ]
        columns = ["variant", "model ms", "end to end ms", "naive ms", "CPU-s/h", "offline s",
                   "KB"]  # fmt: skip
        _print_table("edgesleep bench (p50 per new epoch)", columns, rows)
        _print_table("goals", ["goal", "variant", "measured", "goal", "met"], goals(result))
        typer.echo(f"written: {out}/bench{'-quick' if quick else ''}.json and .md")

    _run(job)


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


def _train_extra(extra: str = "train") -> None:
    try:
        import torch  # noqa: F401

        if extra == "export":
            import onnx  # noqa: F401
    except ImportError:
        raise InputError(
            f"this verb needs the {extra} extra: pip install torch==2.13.0 'edgesleep[{extra}]'"
        ) from None


Crop = typer.Option(help="in-bed (lights-off to lights-on), sleep (±30 min), or none.")


def _train_options(
    passes: float,
    max_steps: int | None,
    stride: int | None,
    eval_every: int,
    patience: int,
    seed: int,
    **fields: Any,
) -> Any:
    """TrainOptions from the options `train` and `distill` share."""
    from edgesleep.train.training import DEFAULT_STRIDE, TrainOptions

    return TrainOptions(
        passes=passes,
        max_steps=max_steps,
        stride=stride or DEFAULT_STRIDE,
        eval_every=eval_every,
        patience=patience,
        seed=seed,
        **fields,
    )


@contextmanager
def _training_progress() -> Iterator[Callable[[int, int, float, float], None]]:
    """A progress bar with loss and best validation accuracy; yields the update callback."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
    )
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task("training", total=None, status="")

        def show(step: int, total: int, loss: float, val_acc: float) -> None:
            status = f"loss {loss:.3f}  val acc {max(val_acc, 0):.3f}"
            bar.update(task, completed=step, total=total, status=status)

        yield show


def _trained_summary(out: Path, ckpt: Any) -> str:
    """One line about a freshly trained checkpoint, saying whether its data were synthetic."""
    training = ckpt.provenance["training"]
    label = "SYNTHETIC data" if ckpt.provenance["synthetic"] else "real data"
    n_params = sum(v.numel() for v in ckpt.state_dict.values())
    return (
        f"{out}: {ckpt.model} ({n_params} parameters), {ckpt.channel!r}, {ckpt.n_classes} "
        f"classes, {training['steps']} steps in {training['seconds']} s, best validation "
        f"accuracy {ckpt.provenance['metrics']['val_accuracy']:.3f} ({label})"
    )


@app.command("train")
def train(
    data: Annotated[Path, typer.Option(help="Dataset directory (see README: layout).")],
    channel: Annotated[str, typer.Option(help="Channel to train on (label or alias).")],
    out: Annotated[Path, typer.Option(help="Checkpoint to write.")] = Path("model.pt"),
    model: Annotated[str, typer.Option(help="Architecture.")] = "seqsleepnet",
    classes: Annotated[int, typer.Option(help="Class set: 5, 4 (W/Light/Deep/REM) or 3.")] = 5,
    input_kind: Annotated[
        str,
        typer.Option(
            "--input", help="stft, or beats (an ECG channel: R peaks -> beat-interval images)."
        ),
    ] = "stft",
    init_from: Annotated[
        Path | None, typer.Option(help="Pretrained checkpoint to finetune.")
    ] = None,
    finetune: Annotated[
        str, typer.Option(help="none, softmax, softmax+epoch, softmax+sequence or all.")
    ] = "all",
    passes: Annotated[float, typer.Option(help="Passes over the training windows.")] = 10.0,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many steps.")] = None,
    stride: Annotated[int | None, typer.Option(help="Epochs between training windows.")] = None,
    eval_every: Annotated[int, typer.Option(help="Validate every N steps.")] = 100,
    patience: Annotated[int, typer.Option(help="Stop after N validations without gain.")] = 5,
    subjects: Annotated[
        str | None, typer.Option(help="Comma-separated subject ids to use (default: all).")
    ] = None,
    val_subjects: Annotated[int, typer.Option(help="Subjects held out for validation.")] = 1,
    class_weighting: Annotated[bool, typer.Option(help="Inverse-frequency class weights.")] = False,
    crop: Annotated[str, Crop] = "in-bed",
    seed: Annotated[int, typer.Option(help="Seed for split, init and batches.")] = 0,
) -> None:
    """Train a model on one channel (or finetune one with --init-from)."""

    def job() -> None:
        _train_extra()
        from edgesleep.train.transfer import train_model

        opts = _train_options(
            passes,
            max_steps,
            stride,
            eval_every,
            patience,
            seed,
            class_weighting=class_weighting,
            finetune=finetune,
        )
        with _training_progress() as show:
            ckpt = train_model(
                data,
                channel,
                out,
                model,
                classes,
                init_from,
                val_subjects,
                subjects.split(",") if subjects else None,
                crop=crop,  # type: ignore[arg-type]
                opts=opts,
                progress=show,
                input_kind=input_kind,
            )
        typer.echo(_trained_summary(out, ckpt))

    _run(job)


@app.command("evaluate")
def evaluate(
    model: Annotated[Path, typer.Argument(help="Checkpoint (.pt).")],
    data: Annotated[Path, typer.Option(help="Labelled dataset directory.")],
    delay: Annotated[
        list[int] | None, typer.Option(help="Delay K in epochs (repeat); default L-1.")
    ] = None,
    subjects: Annotated[str | None, typer.Option(help="Comma-separated subject ids.")] = None,
    channel: Annotated[str | None, typer.Option(help="Channel (default: the model's).")] = None,
    crop: Annotated[str, Crop] = "in-bed",
    json_out: Annotated[Path | None, typer.Option("--json", help="Write metrics here.")] = None,
) -> None:
    """Score a labelled dataset: accuracy, kappa, macro F1, per-class metrics, per delay."""

    def job() -> None:
        _train_extra()
        import json

        from rich.console import Console
        from rich.table import Table

        from edgesleep.train.checkpoint import load
        from edgesleep.train.transfer import evaluate_model

        ckpt = load(model)
        delays = delay or [ckpt.seq_len - 1]
        chosen = subjects.split(",") if subjects else None
        results = evaluate_model(model, data, delays, chosen, crop, channel)  # type: ignore[arg-type]
        label = "SYNTHETIC" if results and ckpt.provenance.get("synthetic") else ""
        table = Table(title=f"{model.name} on {data} {label}".strip())
        per_class = Table(title="F1 per class")
        for col in ("K", "epochs", "acc", "kappa", "MF1", "sens", "spec"):
            table.add_column(col, justify="right")
        per_class.add_column("K", justify="right")
        for name in ckpt.class_labels:
            per_class.add_column(name, justify="right")
        for k, m in results.items():
            table.add_row(
                str(k),
                str(m["n_epochs"]),
                *(
                    f"{m[c]:.3f}"
                    for c in ("accuracy", "kappa", "macro_f1", "sensitivity", "specificity")
                ),
            )
            f1 = m["per_class"]["f1"]  # type: ignore[index]
            per_class.add_row(str(k), *(f"{v:.3f}" for v in f1))
        Console().print(table)
        Console().print(per_class)
        if json_out is not None:
            json_out.write_text(json.dumps({str(k): v for k, v in results.items()}, indent=2))

    _run(job)


@app.command("adapt")
def adapt(
    model: Annotated[Path, typer.Argument(help="Checkpoint (.pt).")],
    data: Annotated[Path, typer.Option(help="Dataset of unlabelled nights from the new device.")],
    out: Annotated[Path, typer.Option(help="Adapted checkpoint to write.")],
    channel: Annotated[str | None, typer.Option(help="Channel (default: the model's).")] = None,
) -> None:
    """Re-estimate the normalisation statistics on unlabelled nights (domain adaptation)."""

    def job() -> None:
        _train_extra()
        from edgesleep.train.transfer import adapt_model

        ckpt = adapt_model(model, data, out, channel)
        nights = ckpt.provenance["adapted"]["nights"]
        typer.echo(f"{out}: normalisation re-estimated on {len(nights)} nights")

    _run(job)


@app.command("cv")
def cv(
    recipe: Annotated[
        str, typer.Option(help="Recipe TOML: a path or a bundled name (train/recipes/).")
    ],
    out: Annotated[Path | None, typer.Option(help="Results directory.")] = None,
) -> None:
    """Subject-wise cross-validation of transfer learning: a table like seed 1's Tables I/II."""

    def job() -> None:
        _train_extra()
        from importlib import resources

        from edgesleep.train.cv import load_recipe, run

        path = Path(recipe)
        if not path.is_file():
            bundled = (
                resources.files("edgesleep.train")
                / "recipes"
                / f"{recipe.removesuffix('.toml')}.toml"
            )
            path = Path(str(bundled))
        parsed = load_recipe(path)
        result_dir = out or Path("runs") / "cv" / path.stem
        run(parsed, result_dir, progress=lambda message: typer.echo(message))
        typer.echo((result_dir / "cv.md").read_text())

    _run(job)


@app.command("distill")
def distill(
    teacher: Annotated[Path, typer.Option(help="Teacher checkpoint (kept frozen).")],
    data: Annotated[Path, typer.Option(help="Dataset with both channels in every night.")],
    student_channel: Annotated[str, typer.Option(help="The student's channel, e.g. ECG.")],
    out: Annotated[Path, typer.Option(help="Student checkpoint to write.")] = Path("student.pt"),
    teacher_channel: Annotated[
        str | None, typer.Option(help="The teacher's channel (default: its own).")
    ] = None,
    classes: Annotated[int, typer.Option(help="Student class set: 5, 4 or 3.")] = 4,
    model: Annotated[str, typer.Option(help="Student architecture.")] = "student",
    soft_targets: Annotated[bool, typer.Option(help="KL to the teacher's soft targets.")] = True,
    feature_transfer: Annotated[
        bool, typer.Option(help="Match the teacher's epoch vectors.")
    ] = True,
    class_weighting: Annotated[bool, typer.Option(help="Class-weighted cross-entropy.")] = True,
    temperature: Annotated[float, typer.Option(help="Softmax temperature T.")] = 1.0,
    alpha: Annotated[float, typer.Option(help="Weight of the soft targets.")] = 0.5,
    subjects: Annotated[
        str | None, typer.Option(help="Comma-separated subject ids to use (default: all).")
    ] = None,
    val_subjects: Annotated[int, typer.Option(help="Subjects held out for validation.")] = 1,
    passes: Annotated[float, typer.Option(help="Passes over the training windows.")] = 10.0,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many steps.")] = None,
    stride: Annotated[int | None, typer.Option(help="Epochs between training windows.")] = None,
    eval_every: Annotated[int, typer.Option(help="Validate every N steps.")] = 100,
    patience: Annotated[int, typer.Option(help="Stop after N validations without gain.")] = 5,
    crop: Annotated[str, Crop] = "in-bed",
    seed: Annotated[int, typer.Option(help="Seed for split, init and batches.")] = 0,
) -> None:
    """Distil a frozen teacher (e.g. EEG SeqSleepNet) into a compact student on another
    channel (e.g. ECG) of the same nights."""

    def job() -> None:
        _train_extra()
        from edgesleep.train.distill import DistillOptions, distill_model

        opts = _train_options(
            passes, max_steps, stride, eval_every, patience, seed, class_weighting=class_weighting
        )
        dopts = DistillOptions(
            soft_targets=soft_targets,
            feature_transfer=feature_transfer,
            temperature=temperature,
            alpha=alpha,
        )
        with _training_progress() as show:
            ckpt = distill_model(
                teacher,
                data,
                student_channel,
                out,
                teacher_channel,
                classes,
                model,
                subjects.split(",") if subjects else None,
                val_subjects,
                crop,  # type: ignore[arg-type]
                opts,
                dopts,
                progress=show,
            )
        typer.echo(_trained_summary(out, ckpt))

    _run(job)


@app.command("export")
def export(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint (.pt) to export.")],
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("exported"),
    quantize: Annotated[bool, typer.Option(help="Also write int8 graphs.")] = False,
    target: Annotated[
        str, typer.Option(help="int8 scheme: portable (safe everywhere), x86 or arm64.")
    ] = "portable",
    calibration: Annotated[
        Path | None, typer.Option(help="Dataset of real-shaped nights for int8 calibration.")
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="Labelled dataset for parity (default: --calibration).")
    ] = None,
) -> None:
    """Export a checkpoint to ONNX (encoder, sequence model, whole model), optionally int8,
    with a parity report against torch."""

    def job() -> None:
        _train_extra("export")
        from edgesleep.export.pipeline import ExportOptions, export_model

        opts = ExportOptions(quantize, target, calibration, data)
        report = export_model(checkpoint, out, opts)
        typer.echo((out / "report.md").read_text())
        if "parity" not in report["variants"]["fp32"]:
            typer.echo("no parity measured: pass --data or --calibration (a labelled dataset)")

    _run(job)


def _night_row(name: str, hyp: Any) -> list[str]:
    summary = hyp.summary()
    counts = Counter(hyp.labels[s] if s >= 0 else "ART" for s in hyp.stages)
    shares = " ".join(f"{k} {100 * v / max(hyp.n_epochs, 1):.0f}%" for k, v in counts.items())
    return [
        name,
        str(hyp.n_epochs),
        f"{summary['TST']:.0f}",
        f"{summary['SE']:.1f}",
        str(hyp.flagged),
        shares,
    ]


def _print_table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console().print(table)


@app.command("stage")
def stage(
    nights: Annotated[list[Path], typer.Argument(help="EDF/EDF+ recordings to score.")],
    model: Annotated[Path, typer.Option(help="Exported model folder or .onnx file.")],
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("staged"),
    channel: Annotated[
        str | None, typer.Option(help="Channel to score (default: the model's).")
    ] = None,
    delay: Annotated[
        int | None, typer.Option(help="Readout delay K in epochs (default: L - 1).")
    ] = None,
    precision: Annotated[
        str | None, typer.Option(help="int8 or fp32 (default: int8 when exported).")
    ] = None,
    plot: Annotated[bool, typer.Option(help="Also write a hypnogram PNG.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Score nights already scored.")] = False,
) -> None:
    """Score whole nights: hypnogram CSV, EDF+ annotations, summary JSON (and PNG)."""

    def job() -> None:
        import json

        from rich.progress import track

        from edgesleep.api import score_file
        from edgesleep.ort import ExportedModel

        exported = ExportedModel(model, precision)
        rows = []
        for night in track(nights, description="staging", disable=len(nights) < 2):
            stem = out / night.stem
            done = stem.with_suffix(".json")
            if done.is_file() and not overwrite:
                typer.echo(f"{night}: already staged ({done}); --overwrite to score again")
                continue
            hyp = score_file(night, exported, channel, delay)
            out.mkdir(parents=True, exist_ok=True)
            hyp.to_csv(stem.with_suffix(".csv"))
            hyp.to_edf(stem.parent / f"{night.stem}-hypnogram.edf")
            if plot:
                hyp.plot(stem.with_suffix(".png"), title=night.name)
            summary = {
                "night": str(night),
                "model": str(exported.folder),
                "synthetic_model": exported.info.synthetic,
                "n_epochs": hyp.n_epochs,
                "flagged_epochs": hyp.flagged,
                "statistics": hyp.summary(),
            }
            done.write_text(json.dumps(summary, indent=2) + "\n")  # written last: "done"
            rows.append(_night_row(night.name, hyp))
        if rows:
            columns = ["night", "epochs", "TST min", "SE %", "flagged", "stages"]
            _print_table(f"staged with {exported.folder} -> {out}", columns, rows)

    _run(job)


def _stream_source(
    port: str | None,
    replay: Path | None,
    synthetic: bool,
    sfreq: float | None,
    channel: str,
    baud: int,
    speed: float,
    seed: int,
    epochs: int | None,
) -> Any:
    """The one source that the stream options name."""
    import sys

    from edgesleep import sources

    if sum([port is not None, replay is not None, synthetic]) != 1:
        raise InputError(
            "name one source: --port PORT (or - for CSV on stdin), --replay EDF or --synthetic"
        )
    if port == "-":
        if sfreq is None:
            raise InputError("CSV on stdin carries no rate: pass --sfreq (Hz)")
        return sources.CsvSource(sys.stdin, sfreq)
    if port is not None:
        return sources.SerialSource(port, baud)
    if replay is not None:
        return sources.edf_source(replay, channel, speed or None)
    return sources.synthetic_source(channel, seed, epochs, speed or None)


@app.command("stream")
def stream(
    model: Annotated[Path, typer.Option(help="Exported model folder or .onnx file.")],
    port: Annotated[
        str | None, typer.Option(help="Serial port of the wearable, or - for CSV on stdin.")
    ] = None,
    replay: Annotated[Path | None, typer.Option(help="Replay an EDF file instead.")] = None,
    synthetic: Annotated[
        bool, typer.Option(help="Stream a SYNTHETIC night from the generator instead.")
    ] = False,
    out: Annotated[Path, typer.Option(help="Hypnogram CSV, one row per epoch.")] = Path(
        "stages.csv"
    ),
    channel: Annotated[
        str | None, typer.Option(help="Channel to stage (default: the model's kind).")
    ] = None,
    sfreq: Annotated[float | None, typer.Option(help="Rate of CSV on stdin, Hz.")] = None,
    baud: Annotated[int, typer.Option(help="Serial baud rate.")] = 115200,
    speed: Annotated[
        float, typer.Option(help="Replay/synthetic speed: 1 real time, 0 as fast as possible.")
    ] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic night.")] = 0,
    epochs: Annotated[
        int | None, typer.Option(help="Length of the synthetic night in epochs.")
    ] = None,
    delay: Annotated[
        int | None, typer.Option(help="Readout delay K in epochs (default: L - 1).")
    ] = None,
    revisions: Annotated[
        bool, typer.Option(help="Emit each epoch at once and re-emit it when it changes.")
    ] = False,
    precision: Annotated[
        str | None, typer.Option(help="int8 or fp32 (default: int8 when exported).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out.")] = False,
    quiet: Annotated[bool, typer.Option(help="No live status line.")] = False,
) -> None:
    """Stage a live stream: one row per 30-s epoch, written and flushed as it is scored."""

    def job() -> None:
        from rich.console import Console
        from rich.live import Live

        from edgesleep.io.writers import CsvSink, label_of
        from edgesleep.ort import ExportedModel
        from edgesleep.sources import pick_channel
        from edgesleep.stager import Stager
        from edgesleep.stream import StreamReport, run_stream

        if out.exists() and out.stat().st_size > 0 and not overwrite:
            raise InputError(f"{out} exists; pass --overwrite or another --out")
        if overwrite:
            out.unlink(missing_ok=True)
        exported = ExportedModel(model, precision)
        source = _stream_source(
            port,
            replay,
            synthetic,
            sfreq,
            channel or exported.info.channel,
            baud,
            speed,
            seed,
            epochs,
        )
        info = source.info()
        index = pick_channel(info, exported.info.channel, channel)
        if exported.info.synthetic and not info.synthetic:
            log.warning(
                "%s was trained on SYNTHETIC data: its stages say nothing about real sleep",
                exported.folder,
            )
        stager = Stager(
            exported, info.sfreq, delay, revisions, info.full_scale_uv, info.channels[index]
        )
        report = StreamReport()
        n_classes = exported.info.n_classes
        console = Console(stderr=True)
        typer.echo(
            f"streaming {info.channels[index]!r} at {info.sfreq:g} Hz from "
            f"{info.device_id or port} -> {out}"
        )

        def line(r: Any) -> str:
            stage = label_of(r.stage, n_classes) if r.stage >= 0 else "ART"
            hours, rest = divmod(int(r.onset_s), 3600)
            return (
                f"epoch {r.index} {hours:02d}:{rest // 60:02d}:{rest % 60:02d} | {stage} "
                f"{r.probabilities.max():.2f} | flagged {report.flagged} | gaps {report.gaps} "
                f"({report.gap_samples / info.sfreq:.1f} s) | drops "
                f"{int(source.stats.get('queue_drops', 0))} | reconnects "
                f"{int(source.stats.get('reconnects', 0))}"
            )

        with (
            CsvSink(out, n_classes) as sink,
            Live(console=console, auto_refresh=False, transient=True) as live,
        ):

            def emit(r: Any) -> None:
                sink.write(r.index, r.stage, r.probabilities, r.model_stage, r.flags, r.revision)
                if not quiet:
                    live.update(line(r), refresh=True)

            try:
                run_stream(source, stager, index, emit, report)
            except KeyboardInterrupt:
                typer.echo("interrupted: the epochs so far are in the output")
        parser_stats = getattr(getattr(source, "parser", None), "stats", {})
        rows = [
            ["epochs", str(report.epochs)],
            ["flagged epochs", str(report.flagged)],
            ["gaps", f"{report.gaps} ({report.gap_samples / info.sfreq:.1f} s)"],
            *[
                [k.replace("_", " "), f"{v:g}"]
                for k, v in {**report.source, **parser_stats}.items()
            ],
        ]
        if hasattr(source, "wakeups_per_s"):
            rows.append(["reader wake-ups per s", f"{source.wakeups_per_s:.1f}"])
        _print_table(f"stream -> {out}", ["what", "value"], rows)

    _run(job)


@app.command("emulate")
def emulate(
    recording: Annotated[Path, typer.Option("--from", help="EDF/EDF+ recording to play.")],
    port: Annotated[
        str, typer.Option(help="Serial port to write to, or pty for a pseudo-terminal.")
    ] = "pty",
    link: Annotated[
        Path, typer.Option(help="With --port pty: a stable path that points at it.")
    ] = Path("/tmp/edgesleep-wearable"),
    channel: Annotated[
        list[str] | None, typer.Option(help="Channels to send (default: all at the first rate).")
    ] = None,
    speed: Annotated[
        float, typer.Option(help="1 real time, 0 as fast as the port takes it.")
    ] = 1.0,
    faults: Annotated[
        str, typer.Option(help="Comma-separated: garbage,drops,disconnect (none if empty).")
    ] = "",
    seed: Annotated[int, typer.Option(help="Seed of the faults.")] = 0,
    baud: Annotated[int, typer.Option(help="Baud rate of a real port.")] = 115200,
    linger: Annotated[
        float, typer.Option(help="Seconds to keep the port open after the end frame.")
    ] = 3.0,
) -> None:
    """Play a recording as a wearable speaking the edgesleep protocol (for demos and tests)."""

    def job() -> None:
        import time

        import numpy as np

        from edgesleep import emulate as emu
        from edgesleep.io.edf import channels as edf_channels
        from edgesleep.io.edf import read_signal

        try:
            fault_set = emu.Faults.parse(faults, seed)
        except ValueError as err:
            raise InputError(f"--faults: {err}") from None
        present = edf_channels(recording)
        labels = channel or [c.label for c in present if c.sfreq == present[0].sfreq]
        signals = [read_signal(recording, label, sfreq=None) for label in labels]
        rates = {s.sfreq for s in signals}
        if len(rates) != 1:
            raise InputError(
                f"channels {labels} have different rates {sorted(rates)}; the "
                "protocol sends one rate: pick channels with --channel"
            )
        data = np.stack([s.data for s in signals], axis=1)
        sink = emu.PtyPort(link) if port == "pty" else emu.SerialPort(port, baud)
        where = f"{link} -> {sink.link.resolve()}" if isinstance(sink, emu.PtyPort) else port
        typer.echo(
            f"emulated wearable on {where}: {len(labels)} channel(s) at "
            f"{rates.pop():g} Hz, speed {speed or 'max'}, faults {faults or 'none'}"
        )
        try:
            sent = emu.play(
                sink,
                data,
                signals[0].sfreq,
                tuple(s.channel for s in signals),
                speed or None,
                fault_set,
            )
            time.sleep(linger)
        except KeyboardInterrupt:
            sent = {}
        finally:
            sink.close()
        typer.echo(" ".join(f"{k}={v}" for k, v in sent.items()))

    _run(job)


@app.command("demo")
def demo(
    workdir: Annotated[Path, typer.Option(help="Where the demo writes.")] = Path("runs/demo"),
    retrain: Annotated[bool, typer.Option(help="Train again even if a model exists.")] = False,
    channel: Annotated[str, typer.Option(help="Channel of the demo model.")] = "EOG horizontal",
) -> None:
    """SYNTHETIC end to end: synthesize nights, train a compact student (about a minute),
    export it (fp32 + int8), stream a held-out night through the stager in 1-s packets, and
    report agreement with the generator's truth and the per-epoch latency."""

    def job() -> None:
        _train_extra("export")
        from edgesleep.train.demo import run_demo

        report = run_demo(workdir, channel, retrain, echo=typer.echo)
        _print_table(
            "demo (SYNTHETIC data: these numbers say nothing about sleep)",
            ["what", "value"],
            [[k, v] for k, v in report.items()],
        )

    _run(job)


if __name__ == "__main__":
    app()
