"""``edgesleep train | evaluate | adapt | cv | distill``: the host-side training verbs
(the ``train`` extra: torch)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from edgesleep.cli.app import app
from edgesleep.cli.common import (
    AMP_HELP,
    CACHE_HELP,
    CLASSES_HELP,
    CROP_HELP,
    DEVICE_HELP,
    Amp,
    Classes,
    Crop,
    Finetune,
    InputKind,
    Model,
    need,
    print_table,
    subjects_list,
    training_progress,
)

Passes = Annotated[float, typer.Option(help="Passes over the training windows.")]
MaxSteps = Annotated[int | None, typer.Option(help="Stop after this many steps.")]
Stride = Annotated[int | None, typer.Option(help="Epochs between training windows (default 5).")]
EvalEvery = Annotated[int, typer.Option(help="Validate every N steps.")]
Patience = Annotated[int, typer.Option(help="Stop after N validations without gain.")]
Subjects = Annotated[
    str | None, typer.Option(help="Comma-separated subject ids to use (default: all).")
]
ValSubjects = Annotated[int, typer.Option(help="Subjects held out for validation.")]
Seed = Annotated[int, typer.Option(help="Seed for split, init and batches.")]
Device = Annotated[str, typer.Option(help=DEVICE_HELP)]
Lr = Annotated[float, typer.Option(help="Adam's learning rate.")]
Resume = Annotated[
    bool, typer.Option(help="Continue a killed run from OUT.state (the same options).")
]
BatchSize = Annotated[int, typer.Option(help="Windows per batch.")]
Workers = Annotated[
    int, typer.Option(min=0, help="DataLoader processes reading windows (0: in this one).")
]
Config = Annotated[
    Path | None,
    typer.Option(help="TOML with [model] (any config field of the architecture, e.g. "
                 "dilations, dropout, weight_decay) and [train] (any training option); "
                 "options given on the command line win."),
]  # fmt: skip
AmpOption = Annotated[Amp | None, typer.Option(help=AMP_HELP)]
Cache = Annotated[Path | None, typer.Option(help=CACHE_HELP)]
Nproc = Annotated[
    int,
    typer.Option(min=1, help="Processes training together (torchrun: gloo on CPU, NCCL on CUDA)."),
]


def _launch(verb: str, nproc: int) -> bool:
    """Run this command again as ``nproc`` torchrun ranks (``python -m edgesleep.cli.launch``);
    False if one process trains (or this already is a rank)."""
    import os
    import subprocess
    import sys

    if nproc == 1 or "WORLD_SIZE" in os.environ:
        return False
    args = sys.argv[sys.argv.index(verb) + 1 :]
    for i, arg in enumerate(args):
        if arg == "--nproc":
            del args[i : i + 2]
            break
        if arg.startswith("--nproc="):
            del args[i]
            break
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc-per-node={nproc}", "-m", "edgesleep.cli.launch", verb, *args]  # fmt: skip
    code = subprocess.run(command, check=False).returncode
    if code:
        raise typer.Exit(code)
    return True


RENAMED_PARAMS = {"input_kind": "input"}  # the CLI's name -> the spec's


def _parsed(ctx: typer.Context, drop: tuple[str, ...]) -> tuple[dict[str, Any], set[str]]:
    """The verb's options as a spec's fields (``--subjects`` parsed, ``--classes`` an
    integer) and the names the user gave on the command line (they win over --config; the
    precedence is decided in :func:`edgesleep.config.layered`, not here)."""
    values, given = {}, set()
    for name, value in ctx.params.items():
        if name in drop:
            continue
        key = RENAMED_PARAMS.get(name, name)
        values[key] = value
        source = ctx.get_parameter_source(name)
        if source is not None and source.name == "COMMANDLINE":
            given.add(key)
    values["subjects"] = subjects_list(values.get("subjects"))
    values["classes"] = int(values["classes"])
    return values, given


def _summary(out: Path, ckpt: Any) -> str:
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
    ctx: typer.Context,
    data: Annotated[
        Path, typer.Option(help="Dataset directory (the layout: docs/guides/data.md).")
    ],
    channel: Annotated[str, typer.Option(help="Channel to train on (label or alias).")],
    out: Annotated[Path, typer.Option(help="Checkpoint to write.")] = Path("model.pt"),
    model: Annotated[Model, typer.Option(help="Architecture.")] = "seqsleepnet",
    classes: Annotated[Classes, typer.Option(help=CLASSES_HELP)] = "5",
    input_kind: Annotated[
        InputKind, typer.Option("--input", help="Input kind (beats: an ECG channel).")
    ] = "stft",
    init_from: Annotated[
        Path | None, typer.Option(help="Pretrained checkpoint to finetune.")
    ] = None,
    finetune: Annotated[Finetune, typer.Option(help="Parts to train with --init-from.")] = "all",
    passes: Passes = 10.0,
    max_steps: MaxSteps = None,
    stride: Stride = None,
    shared_windows: Annotated[
        int, typer.Option(min=0, help="Windows per chunk sharing epoch encodings (stride < L).")
    ] = 0,
    eval_every: EvalEvery = 100,
    patience: Patience = 5,
    subjects: Subjects = None,
    val_subjects: ValSubjects = 1,
    class_weighting: Annotated[bool, typer.Option(help="Inverse-frequency class weights.")] = False,
    crop: Annotated[Crop, typer.Option(help=CROP_HELP)] = "in-bed",
    seed: Seed = 0,
    lr: Lr = 1e-4,
    batch_size: BatchSize = 32,
    workers: Workers = 0,
    device: Device = "auto",
    amp: AmpOption = None,
    config: Config = None,
    resume: Resume = False,
    cache: Cache = None,
    nproc: Nproc = 1,
) -> None:
    """Train a model on one channel (or finetune one with --init-from)."""
    need("train")
    if _launch("train", nproc):
        return
    from edgesleep.train.specs import train_spec
    from edgesleep.train.transfer import train_model

    spec = train_spec(*_parsed(ctx, drop=("config", "nproc")), config=config)
    with training_progress() as show:
        ckpt = train_model(spec, progress=show)
    typer.echo(_summary(out, ckpt))


@app.command("evaluate")
def evaluate(
    model: Annotated[Path, typer.Argument(help="Checkpoint (.pt).")],
    data: Annotated[Path, typer.Option(help="Labelled dataset directory.")],
    delay: Annotated[
        list[int] | None, typer.Option(help="Delay K in epochs (repeat); default L-1.")
    ] = None,
    subjects: Annotated[str | None, typer.Option(help="Comma-separated subject ids.")] = None,
    channel: Annotated[str | None, typer.Option(help="Channel (default: the model's).")] = None,
    crop: Annotated[Crop, typer.Option(help=CROP_HELP)] = "in-bed",
    json_out: Annotated[Path | None, typer.Option("--json", help="Write metrics here.")] = None,
    device: Device = "auto",
    cache: Cache = None,
) -> None:
    """Score a labelled dataset: accuracy, kappa, macro F1, per-class metrics, per delay."""
    need("train")
    import json

    from edgesleep.train.transfer import evaluate_model

    ckpt, results = evaluate_model(
        model, data, delay, subjects_list(subjects), crop, channel, device, cache
    )
    label = " SYNTHETIC" if ckpt.provenance.get("synthetic") else ""
    metrics = ("accuracy", "kappa", "macro_f1", "sensitivity", "specificity")
    rows = [
        [str(k), str(m["n_epochs"]), *(f"{m[c]:.3f}" for c in metrics)] for k, m in results.items()
    ]
    columns = ["K", "epochs", "acc", "kappa", "MF1", "sens", "spec"]
    print_table(f"{model.name} on {data}{label}", columns, rows)
    f1 = [[str(k), *(f"{v:.3f}" for v in m["per_class"]["f1"])] for k, m in results.items()]
    print_table("F1 per class", ["K", *ckpt.class_labels], f1)
    if json_out is not None:
        json_out.write_text(json.dumps({str(k): v for k, v in results.items()}, indent=2))


@app.command("adapt")
def adapt(
    model: Annotated[Path, typer.Argument(help="Checkpoint (.pt).")],
    data: Annotated[Path, typer.Option(help="Dataset of unlabelled nights from the new device.")],
    out: Annotated[Path, typer.Option(help="Adapted checkpoint to write.")],
    channel: Annotated[str | None, typer.Option(help="Channel (default: the model's).")] = None,
    cache: Cache = None,
) -> None:
    """Re-estimate the normalisation statistics on unlabelled nights (domain adaptation)."""
    need("train")
    from edgesleep.train.transfer import adapt_model

    ckpt = adapt_model(model, data, out, channel, cache)
    nights = ckpt.provenance["adapted"]["nights"]
    typer.echo(f"{out}: normalisation re-estimated on {len(nights)} nights")


@app.command("cv")
def cv(
    recipe: Annotated[
        str, typer.Option(help="Recipe TOML: a path or a bundled name (train/recipes/).")
    ],
    out: Annotated[Path | None, typer.Option(help="Results directory.")] = None,
    device: Annotated[
        str | None, typer.Option(help=f"{DEVICE_HELP} Default: the recipe's (auto).")
    ] = None,
    amp: AmpOption = None,
    cache: Cache = None,
    jobs: Annotated[
        int, typer.Option(min=1, help="Cells (seed, fold, strategy) trained at once.")
    ] = 1,
    part: Annotated[
        str | None,
        typer.Option(help="I/N: only the I-th of N runs of cells (a cluster array job)."),
    ] = None,
    collect: Annotated[
        bool, typer.Option("--collect", help="Merge the finished parts into cv.json/cv.md.")
    ] = False,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Discard the cells already done in --out.")
    ] = False,
    quick: Annotated[
        bool,
        typer.Option("--quick", help="Smoke run: 2 folds, 1 seed, at most 5 steps per model."),
    ] = False,
) -> None:
    """Subject-wise cross-validation of transfer learning: a table like seed 1's Tables I/II.
    Cells already done in --out are kept: a rerun continues a killed study. The heart_open
    recipe runs the open-data heart model's selection, test and bundle
    (edgesleep.workflows.heart_open)."""
    need("train")
    import shutil

    from edgesleep.train.cache import parse_shard
    from edgesleep.train.cv import Study, find_recipe, load_recipe, on_device, run
    from edgesleep.train.cv import collect as collect_cells
    from edgesleep.train.cv import quick as quick_recipe
    from edgesleep.train.training import read_toml

    path = find_recipe(recipe)
    if "selection" in read_toml(path, "recipe"):  # a heart_open recipe, not a cv study
        need("export")
        from edgesleep.workflows import heart_open

        opened = heart_open.load_recipe(path)
        folder = out or Path("runs") / (path.stem + ("-quick" if quick else ""))
        heart_open.run(heart_open.quick(opened) if quick else opened, folder)
        typer.echo((folder / "heart_open.md").read_text())
        typer.echo(f"bundles in {folder}: install one with `edgesleep models add {folder}/NAME`")
        return
    parsed = on_device(load_recipe(path), device, amp)
    if quick:
        parsed = quick_recipe(parsed)
    result_dir = out or Path("runs") / "cv" / (path.stem + ("-quick" if quick else ""))
    shard = parse_shard(part) if part is not None else None
    if fresh:
        for folder in ("cells", "pretrain"):
            shutil.rmtree(result_dir / folder, ignore_errors=True)
    if collect:
        study = Study(parsed, result_dir, cache)
        study.check_out()
        collect_cells(study)
    elif run(parsed, result_dir, typer.echo, cache, jobs, shard) is None:
        return
    typer.echo((result_dir / "cv.md").read_text())


@app.command("distill")
def distill(
    ctx: typer.Context,
    teacher: Annotated[Path, typer.Option(help="Teacher checkpoint (kept frozen).")],
    data: Annotated[Path, typer.Option(help="Dataset with both channels in every night.")],
    student_channel: Annotated[str, typer.Option(help="The student's channel, e.g. ECG.")],
    out: Annotated[Path, typer.Option(help="Student checkpoint to write.")] = Path("student.pt"),
    teacher_channel: Annotated[
        str | None, typer.Option(help="The teacher's channel (default: its own).")
    ] = None,
    classes: Annotated[Classes, typer.Option(help=CLASSES_HELP)] = "4",
    model: Annotated[Model, typer.Option(help="Student architecture.")] = "student",
    soft_targets: Annotated[bool, typer.Option(help="KL to the teacher's soft targets.")] = True,
    feature_transfer: Annotated[
        bool, typer.Option(help="Match the teacher's epoch vectors.")
    ] = True,
    class_weighting: Annotated[bool, typer.Option(help="Class-weighted cross-entropy.")] = True,
    temperature: Annotated[float, typer.Option(help="Softmax temperature T.")] = 1.0,
    alpha: Annotated[float, typer.Option(help="Weight of the soft targets.")] = 0.5,
    subjects: Subjects = None,
    val_subjects: ValSubjects = 1,
    passes: Passes = 10.0,
    max_steps: MaxSteps = None,
    stride: Stride = None,
    eval_every: EvalEvery = 100,
    patience: Patience = 5,
    crop: Annotated[Crop, typer.Option(help=CROP_HELP)] = "in-bed",
    seed: Seed = 0,
    lr: Lr = 1e-4,
    batch_size: BatchSize = 32,
    workers: Workers = 0,
    device: Device = "auto",
    amp: AmpOption = None,
    config: Config = None,
    resume: Resume = False,
    cache: Cache = None,
    nproc: Nproc = 1,
) -> None:
    """Distil a frozen teacher (an EEG SeqSleepNet, say) into a compact student on another
    channel (e.g. ECG) of the same nights."""
    need("train")
    if _launch("distill", nproc):
        return
    from edgesleep.train.distill import distill_model
    from edgesleep.train.specs import distill_spec

    spec = distill_spec(*_parsed(ctx, drop=("config", "nproc")), config=config)
    with training_progress() as show:
        ckpt = distill_model(spec, progress=show)
    typer.echo(_summary(out, ckpt))
