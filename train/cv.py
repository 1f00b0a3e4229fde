"""Subject-wise cross-validation of transfer learning and distillation, shaped like seed
1's Tables I/II and seed 2's weighted-F1 comparison.

A recipe (TOML, see ``train/recipes/``) names a source dataset and channel to pretrain on,
a target dataset and channel, the folds, the strategies and the seeds. For each seed: pretrain
on every source subject (a few held out for validation), then for each fold of target
subjects train each strategy on the other target subjects (some held out for validation)
and score the fold's subjects. Test epochs are pooled over folds (as the paper does);
numbers are mean ± sd over seeds.

Strategies: ``scratch`` (the target model on the target channel alone), the finetuning
strategies of the pretrained source, and for distillation (source and target one cohort,
paired by record): ``teacher`` (the pretrained source scored on the test subjects' source
channel) and ``distill`` (a fresh target model taught by the frozen pretrained source,
``[distill]`` options). ``model`` and ``input`` choose the target model and its input kind,
``source_model`` the pretrained one.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgesleep.config import check_keys, from_mapping
from edgesleep.dsp.inputs import kind_names
from edgesleep.errors import InputError, UsageError
from edgesleep.io.dataset import Crop, read_dataset
from edgesleep.io.writers import write_report
from edgesleep.metrics import evaluate
from edgesleep.stages import CLASS_LABELS, class_labels
from edgesleep.train import checkpoint as ckpt_io
from edgesleep.train.checkpoint import Checkpoint
from edgesleep.train.data import NightFeatures, load_features
from edgesleep.train.distill import DistillOptions, distill_features
from edgesleep.train.evaluate import predict_nights
from edgesleep.train.models import STRATEGIES as FINETUNE
from edgesleep.train.models import model_names
from edgesleep.train.training import (
    TrainOptions,
    read_toml,
    resolve_device,
    split_subjects,
    state_file,
)
from edgesleep.train.transfer import train_features

log = logging.getLogger("edgesleep")
STRATEGIES = ("scratch", *FINETUNE, "teacher", "distill")


@dataclass(frozen=True)
class Recipe:
    """A cross-validation recipe: the TOML sections ``[data]`` and ``[cv]`` are its fields,
    ``[train]`` and ``[pretrain]`` training options, ``[synthetic]`` the datasets to write
    on first use (``source_nights``, ``source_seed``, ``target_nights``, ``target_seed``)."""

    name: str
    target: Path
    target_channel: str
    source: Path | None = None
    source_channel: str | None = None
    synthetic: dict[str, int] = field(default_factory=dict)
    folds: str | int = "loso"
    n_val_subjects: int = 1
    source_val_subjects: int = 2
    seeds: tuple[int, ...] = (0, 1, 2)
    n_classes: int = 5
    crop: Crop = "in-bed"
    strategies: tuple[str, ...] = STRATEGIES
    delays: tuple[int, ...] = (0, 1, 2, 5, 19)
    model: str = "seqsleepnet"
    source_model: str = "seqsleepnet"
    input: str = "stft"
    train: TrainOptions = field(default_factory=TrainOptions)
    pretrain: TrainOptions = field(default_factory=TrainOptions)
    distill: DistillOptions = field(default_factory=DistillOptions)


SECTIONS = {
    "data": ("target", "target_channel", "source", "source_channel"),
    "cv": (
        "folds",
        "n_val_subjects",
        "source_val_subjects",
        "seeds",
        "n_classes",
        "crop",
        "strategies",
        "delays",
        "model",
        "source_model",
        "input",
    ),  # fmt: skip
    "synthetic": ("source_nights", "source_seed", "target_nights", "target_seed"),
}


def find_recipe(name: str) -> Path:
    """A recipe file: ``name`` as a path, or a bundled recipe (``train/recipes/NAME.toml``).

    Raises
    ------
    InputError
        If neither exists (the message lists the bundled recipes).
    """
    path = Path(name)
    if path.is_file():
        return path
    bundled = resources.files("edgesleep.train") / "recipes"
    names = sorted(
        p.name.removesuffix(".toml") for p in bundled.iterdir() if p.name.endswith(".toml")
    )
    stem = name.removesuffix(".toml")
    if stem not in names:
        raise InputError(f"{name}: no such recipe file or bundled recipe; bundled: {names}")
    return Path(str(bundled / f"{stem}.toml"))


def load_recipe(path: Path) -> Recipe:
    """Parse and check a recipe, strictly (unknown keys and bad values are refused before
    any data loads); relative data paths are taken from the current directory.

    Raises
    ------
    InputError
        No such file, or not TOML.
    UsageError
        An unknown section or key (the closest valid one is named), a bad value.
    """
    raw = read_toml(path, "recipe")
    check_keys(raw, ["name", "train", "pretrain", "distill", *SECTIONS], str(path))
    for section, keys in SECTIONS.items():
        check_keys(raw.get(section, {}), keys, f"{path} [{section}]")
    data, cv = raw.get("data", {}), raw.get("cv", {})
    if "target" not in data or "target_channel" not in data:
        raise UsageError(f"{path}: [data] needs target and target_channel")
    recipe = from_mapping(
        Recipe,
        {"name": raw.get("name", path.stem), **data, **cv, "synthetic": raw.get("synthetic", {})},
        str(path),
    )
    recipe = replace(
        recipe,
        train=from_mapping(TrainOptions, raw.get("train", {}), f"{path} [train]"),
        pretrain=from_mapping(TrainOptions, raw.get("pretrain", {}), f"{path} [pretrain]"),
        distill=from_mapping(DistillOptions, raw.get("distill", {}), f"{path} [distill]"),
    )
    check_recipe(recipe, str(path))
    return recipe


def check_recipe(recipe: Recipe, where: str) -> None:
    """Refuse values no run could use (:class:`UsageError` naming the valid ones)."""
    unknown = sorted(set(recipe.strategies) - set(STRATEGIES))
    if unknown:
        raise UsageError(f"{where}: unknown strategies {unknown}; choose from {STRATEGIES}")
    if recipe.n_classes not in CLASS_LABELS:
        raise UsageError(f"{where}: n_classes {recipe.n_classes}; choose 5, 4 or 3")
    if recipe.folds != "loso" and not (isinstance(recipe.folds, int) and recipe.folds >= 2):
        raise UsageError(f'{where}: folds {recipe.folds!r}; "loso" or a number >= 2')
    if any(not 0 <= k < 20 for k in recipe.delays):
        raise UsageError(f"{where}: delays {list(recipe.delays)}; each in 0..19 (L - 1)")
    for key in ("model", "source_model"):
        if getattr(recipe, key) not in model_names():
            raise UsageError(f"{where}: {key} {getattr(recipe, key)!r}; choose {model_names()}")
    if recipe.input not in kind_names():
        raise UsageError(f"{where}: input {recipe.input!r}; choose one of {kind_names()}")
    pairs = {"teacher", "distill"} & set(recipe.strategies)
    if pairs and recipe.source != recipe.target:
        raise UsageError(
            f"{where}: {sorted(pairs)} pair each night's source and target channels, so "
            "[data] source and target must be one dataset"
        )


def make_synthetic(recipe: Recipe) -> None:
    """Write the recipe's synthetic source/target datasets if they are not there yet."""
    from edgesleep.synth.psg import synthesize_dataset

    spec = recipe.synthetic
    for role, root in (("source", recipe.source), ("target", recipe.target)):
        if root is None or (root / "manifest.csv").is_file() or f"{role}_nights" not in spec:
            continue
        log.info("writing SYNTHETIC %s dataset %s", role, root)
        synthesize_dataset(root, spec[f"{role}_nights"], spec.get(f"{role}_seed", 0))


def folds_of(subjects: Sequence[str], folds: str | int, seed: int) -> list[list[str]]:
    """Test subjects per fold: one each ("loso") or k groups of shuffled subjects."""
    if folds == "loso":
        return [[s] for s in sorted(subjects)]
    order = [str(s) for s in np.random.default_rng(seed).permutation(sorted(subjects))]
    return [sorted(part) for part in np.array_split(np.array(order), int(folds))]


def on_device(recipe: Recipe, device: str | None, amp: str | None) -> Recipe:
    """The recipe with its training and pretraining on ``device`` (and ``amp``), if given."""
    fields = {k: v for k, v in (("device", device), ("amp", amp)) if v is not None}
    if not fields:
        return recipe
    return replace(recipe, train=replace(recipe.train, **fields),
                   pretrain=replace(recipe.pretrain, **fields))  # fmt: skip


def quick(recipe: Recipe) -> Recipe:
    """A smoke run of a recipe on its real file layout: 2 folds, its first seed, one
    validation subject, one pass of at most 5 steps per training (seconds, not hours);
    says nothing about accuracy."""
    fast = {"passes": 1.0, "max_steps": 5, "eval_every": 5}
    return replace(
        recipe,
        name=f"{recipe.name} (quick smoke run)",
        folds=2,
        seeds=recipe.seeds[:1],
        n_val_subjects=1,
        source_val_subjects=1,
        train=replace(recipe.train, **fast),
        pretrain=replace(recipe.pretrain, **fast),
    )


@dataclass(frozen=True)
class Cell:
    """One (seed, fold, strategy) of a study: train, then score the fold's test subjects."""

    seed: int
    fold: int
    strategy: str

    @property
    def name(self) -> str:
        return f"seed{self.seed}-fold{self.fold}-{self.strategy}"


def grid(recipe: Recipe, subjects: Sequence[str]) -> list[Cell]:
    """Every cell of the study, in the order a single run trains them."""
    return [
        Cell(seed, fold, strategy)
        for seed in recipe.seeds
        for fold in range(len(folds_of(subjects, recipe.folds, seed)))
        for strategy in recipe.strategies
    ]


def fingerprint(recipe: Recipe) -> dict[str, Any]:
    """What makes a study's cells what they are (not where they train: a study may go on
    on another device)."""
    ignore = ("device", "amp", "workers")
    run = {k: v for k, v in asdict(recipe).items() if k not in ("train", "pretrain")}
    for part in ("train", "pretrain"):
        run[part] = {k: v for k, v in asdict(getattr(recipe, part)).items() if k not in ignore}
    return json.loads(json.dumps(run, default=str))


class Study:
    """A recipe's data and results directory: cells run here (in any process, in any
    order) and write ``OUT/cells/CELL.json``; pretrained sources are kept in
    ``OUT/pretrain/``; cells already written are kept (a rerun continues a study)."""

    def __init__(self, recipe: Recipe, out: Path, cache: Path | None = None) -> None:
        self.recipe, self.out = recipe, out
        target = read_dataset(recipe.target)
        self.synthetic = target.synthetic
        nights = load_features(target, recipe.target_channel, recipe.n_classes, recipe.crop,
                               kind=recipe.input, cache=cache)  # fmt: skip
        self.by_subject: dict[str, list[NightFeatures]] = {}
        for night in nights:
            self.by_subject.setdefault(night.subject, []).append(night)
        self.source_nights: list[NightFeatures] = []
        if recipe.source is not None and recipe.source_channel is not None:
            source = read_dataset(recipe.source)
            self.synthetic = self.synthetic or source.synthetic
            self.source_nights = load_features(
                source, recipe.source_channel, recipe.n_classes, recipe.crop, cache=cache
            )
        if any(s != "scratch" for s in recipe.strategies) and not self.source_nights:
            raise InputError("strategies other than scratch need [data] source and source_channel")
        # source and target from one cohort: pretrain per fold without the test subjects
        self.same_cohort = (
            recipe.source is not None and recipe.source.resolve() == recipe.target.resolve()
        )

    def cells(self) -> list[Cell]:
        return grid(self.recipe, list(self.by_subject))

    def cell_path(self, cell: Cell) -> Path:
        return self.out / "cells" / f"{cell.name}.json"

    def check_out(self) -> None:
        """Refuse a results directory that holds another recipe's cells; else mark it."""
        mark = self.out / "cells" / "recipe.json"
        mine = fingerprint(self.recipe)
        if mark.is_file() and json.loads(mark.read_text()) != mine:
            raise UsageError(
                f"{self.out}: holds the cells of another recipe (or other options); use "
                "another --out, or --fresh to discard them"
            )
        mark.parent.mkdir(parents=True, exist_ok=True)
        mark.write_text(json.dumps(mine, indent=1) + "\n")

    def test_subjects(self, cell: Cell) -> list[str]:
        return folds_of(list(self.by_subject), self.recipe.folds, cell.seed)[cell.fold]

    def pretrain_path(self, cell: Cell) -> Path | None:
        """Where the cell's pretrained source is kept; None for training from scratch."""
        if cell.strategy == "scratch":
            return None
        name = f"seed{cell.seed}-fold{cell.fold}" if self.same_cohort else f"seed{cell.seed}"
        return self.out / "pretrain" / f"{name}.pt"

    def pretrained(self, cell: Cell) -> Checkpoint | None:
        """The cell's pretrained source: read if kept, else trained (on every source
        subject but the fold's test subjects when source and target are one cohort)."""
        path = self.pretrain_path(cell)
        if path is None:
            return None
        if path.is_file():
            return ckpt_io.load(path)
        recipe = self.recipe
        exclude = self.test_subjects(cell) if self.same_cohort else []
        ids = sorted({n.subject for n in self.source_nights} - set(exclude))
        train_ids, val_ids = split_subjects(ids, recipe.source_val_subjects, cell.seed)
        ckpt = train_features(
            [n for n in self.source_nights if n.subject in train_ids],
            [n for n in self.source_nights if n.subject in val_ids],
            recipe.source_channel or "",
            model_name=recipe.source_model,
            n_classes=recipe.n_classes,
            opts=replace(recipe.pretrain, seed=cell.seed),
            state_path=state_file(path, resume=True),
        )
        ckpt.save(path)
        return ckpt

    def paired(self, subjects: Sequence[str]) -> list[NightFeatures]:
        """The source-channel nights of ``subjects``, in the order of their target nights
        (one cohort: the same records through the other channel)."""
        by_record = {n.record: n for n in self.source_nights}
        return [by_record[n.record] for s in subjects for n in self.by_subject[s]]

    def train_cell(self, cell: Cell, train_ids: Sequence[str], val_ids: Sequence[str],
                   path: Path) -> Checkpoint:  # fmt: skip
        """The cell's model: its strategy on the target channel of the training subjects."""
        recipe = self.recipe
        train_n = [n for s in train_ids for n in self.by_subject[s]]
        val_n = [n for s in val_ids for n in self.by_subject[s]]
        source = self.pretrained(cell)
        opts = replace(recipe.train, seed=cell.seed)
        state = state_file(path, resume=True)
        if cell.strategy == "distill":
            assert source is not None
            return distill_features(
                source, train_n, val_n, self.paired(train_ids), recipe.target_channel,
                recipe.source_channel, recipe.n_classes, recipe.model, opts, recipe.distill,
                input_kind=recipe.input, state_path=state,
            )  # fmt: skip
        scratch = cell.strategy == "scratch"
        return train_features(
            train_n, val_n, recipe.target_channel,
            model_name=recipe.model if scratch else recipe.source_model,
            n_classes=recipe.n_classes, source=source,
            opts=replace(opts, finetune="all" if scratch else cell.strategy),
            input_kind=recipe.input, state_path=state,
        )  # fmt: skip

    def run_cell(self, cell: Cell) -> dict[str, Any]:
        """Train and score one cell; write and return its result."""
        recipe, t0 = self.recipe, time.perf_counter()
        test_ids = self.test_subjects(cell)
        rest = [s for s in self.by_subject if s not in test_ids]
        train_ids, val_ids = split_subjects(rest, recipe.n_val_subjects, cell.seed)
        test_n = [n for s in test_ids for n in self.by_subject[s]]
        path = self.cell_path(cell)
        if cell.strategy == "teacher":  # the pretrained source on its own channel
            ckpt, scored = self.pretrained(cell), self.paired(test_ids)
            assert ckpt is not None
        else:
            ckpt, scored = self.train_cell(cell, train_ids, val_ids, path), test_n
        scorer = ckpt.scorer(resolve_device(recipe.train.device))
        preds = predict_nights(scorer, scored, recipe.delays)
        result = {
            "cell": cell.name,
            "test_records": [n.record for n in test_n],
            "truth": [n.labels.tolist() for n in test_n],
            "preds": {str(k): [p.tolist() for p in per] for k, per in preds.items()},
            "steps": ckpt.provenance["training"]["steps"],
            "seconds": round(time.perf_counter() - t0, 2),
        }
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(result) + "\n")
        os.replace(tmp, path)
        return result


_STUDY: Study | None = None  # the study of a --jobs worker process


def _start_worker(recipe: Recipe, out: Path, cache: Path | None, threads: int) -> None:
    global _STUDY
    torch.set_num_threads(threads)
    _STUDY = Study(recipe, out, cache)


def _worker_cell(cell: Cell) -> tuple[Cell, int]:
    assert _STUDY is not None
    return cell, _STUDY.run_cell(cell)["steps"]


def _worker_pretrain(cell: Cell) -> None:
    assert _STUDY is not None
    _STUDY.pretrained(cell)


def parts(cells: Sequence[Cell], n: int) -> list[list[Cell]]:
    """The cells cut into ``n`` runs of consecutive cells (sizes differ by at most one):
    disjoint, covering them all, and each part mostly whole folds, so few parts need the
    same pretrained source."""
    bounds = np.linspace(0, len(cells), n + 1).round().astype(int)
    return [list(cells[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def run(
    recipe: Recipe,
    out: Path,
    progress: Callable[[str], None] | None = None,
    cache: Path | None = None,
    jobs: int = 1,
    part: tuple[int, int] | None = None,
) -> dict[str, Any] | None:
    """Run the study's cells that are not done yet (``part`` (I, N): only the I-th of
    :func:`parts`), over ``jobs`` processes; then, unless a part was asked for, merge every cell
    into ``cv.json`` and ``cv.md`` under ``out`` (:func:`collect`) and return the result."""
    say = progress or (lambda message: log.info("%s", message))
    for opts in (recipe.train, recipe.pretrain):  # before any data is written or read
        if resolve_device(opts.device).type != "cuda" and opts.amp is not None:
            raise UsageError(f"--amp {opts.amp} runs on CUDA only; this run is on {opts.device}")
    make_synthetic(recipe)
    study = Study(recipe, out, cache)  # computes missing features before workers start
    study.check_out()
    cells = study.cells()
    mine = cells if part is None else parts(cells, part[1])[part[0] - 1]
    todo = [c for c in mine if not study.cell_path(c).is_file()]
    if len(todo) < len(mine):
        say(f"{len(mine) - len(todo)} of {len(mine)} cells already done in {out}")

    def done(cell: Cell, steps: int, count: int) -> None:
        say(f"seed {cell.seed} fold {cell.fold} {cell.strategy}: {steps} steps "
            f"({count}/{len(todo)})")  # fmt: skip

    if jobs > 1 and len(todo) > 1:
        threads = max(1, (os.cpu_count() or 1) // jobs)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(jobs, context, _start_worker,
                                 (recipe, out, cache, threads)) as pool:  # fmt: skip
            sources: dict[Path, Cell] = {}
            for c in todo:
                path = study.pretrain_path(c)
                if path is not None and not path.is_file():
                    sources.setdefault(path, c)
            list(pool.map(_worker_pretrain, sources.values()))  # each source once
            for count, (cell, steps) in enumerate(pool.map(_worker_cell, todo), 1):
                done(cell, steps, count)
    else:
        for count, cell in enumerate(todo, 1):
            done(cell, study.run_cell(cell)["steps"], count)
    if part is not None:
        say(f"part {part[0]}/{part[1]}: {len(mine)} cells in {out / 'cells'}; "
            "merge the parts with --collect when every part is done")  # fmt: skip
        return None
    return collect(study)


def collect(study: Study) -> dict[str, Any]:
    """Merge every cell of the study into ``cv.json`` and ``cv.md``: the same tables as a
    single run.

    Raises
    ------
    InputError
        Cells are missing (the message says how many, and how to run them).
    """
    recipe, cells = study.recipe, study.cells()
    missing = [c.name for c in cells if not study.cell_path(c).is_file()]
    if missing:
        raise InputError(
            f"{study.out}: {len(missing)} of {len(cells)} cells not done yet (e.g. "
            f"{missing[:3]}); run the remaining parts (or the study without --part) first"
        )
    # predictions[strategy][delay][seed] -> per-night predictions, pooled over folds
    preds: dict[str, dict[int, dict[int, list[np.ndarray]]]] = {
        s: {k: {} for k in recipe.delays} for s in recipe.strategies
    }
    truth: dict[int, list[np.ndarray]] = {}
    timing: dict[str, float] = {}
    for cell in cells:
        result = json.loads(study.cell_path(cell).read_text())
        if cell.strategy == recipe.strategies[0]:
            truth.setdefault(cell.seed, []).extend(np.asarray(t) for t in result["truth"])
        for k in recipe.delays:
            per_seed = preds[cell.strategy][k].setdefault(cell.seed, [])
            per_seed.extend(np.asarray(p) for p in result["preds"][str(k)])
        timing[cell.strategy] = timing.get(cell.strategy, 0.0) + result["seconds"]
    for path in sorted((study.out / "pretrain").glob("*.pt")):
        seconds = ckpt_io.load(path).provenance["training"]["seconds"]
        timing["pretrain"] = timing.get("pretrain", 0.0) + seconds
    result = summarise(recipe, preds, truth, study.synthetic)
    result["seconds"] = {k: round(v, 1) for k, v in timing.items()}
    result["total_seconds"] = round(sum(timing.values()), 1)
    write_report(study.out, "cv", result, to_markdown(result))
    return result


def summarise(
    recipe: Recipe,
    preds: dict[str, dict[int, dict[int, list[np.ndarray]]]],
    truth: dict[int, list[np.ndarray]],
    synthetic: bool,
) -> dict[str, Any]:
    """Pooled metrics per strategy, delay and seed; mean and sd over seeds."""
    rows: dict[str, Any] = {}
    for strategy, per_delay in preds.items():
        rows[strategy] = {}
        for k, per_seed in per_delay.items():
            runs = [
                evaluate(np.concatenate(truth[seed]), np.concatenate(p), recipe.n_classes)
                for seed, p in per_seed.items()
            ]
            stats = {}
            for metric in (
                "accuracy",
                "kappa",
                "macro_f1",
                "sensitivity",
                "specificity",
                "weighted_f1",
            ):
                values = np.array([r[metric] for r in runs], dtype=float)
                stats[metric] = {
                    "mean": float(values.mean()),
                    "sd": float(values.std(ddof=1)) if values.size > 1 else 0.0,
                    "runs": values.tolist(),
                }
            rows[strategy][str(k)] = stats
    return {
        "recipe": recipe.name,
        "synthetic": synthetic,
        "target_channel": recipe.target_channel,
        "source_channel": recipe.source_channel,
        "classes": list(class_labels(recipe.n_classes)),
        "seeds": list(recipe.seeds),
        "folds": recipe.folds,
        "train": asdict(recipe.train),
        "pretrain": asdict(recipe.pretrain),
        "paper_delay": max(recipe.delays),
        "results": rows,
    }


def to_markdown(result: dict[str, Any]) -> str:
    k_paper = str(result["paper_delay"])
    label = "SYNTHETIC data — says nothing about sleep" if result["synthetic"] else "real data"
    lines = [
        f"# {result['recipe']} ({label})",
        "",
        f"Source {result['source_channel']} → target {result['target_channel']}; "
        f"folds {result['folds']}, seeds {result['seeds']}; test epochs pooled over folds; "
        f"mean ± sd over seeds; readout at K = {k_paper} epochs of look-ahead (fusion over "
        "the windows for models that look both ways).",
        "",
        "| strategy | Acc % | κ | MF1 % | weighted F1 % | Sens % | Spec % |",
        "|---|---|---|---|---|---|---|",
    ]

    def cell(stats: dict[str, Any], metric: str, scale: float) -> str:
        m = stats[metric]
        digits = 1 if scale == 100 else 3
        return f"{m['mean'] * scale:.{digits}f} ± {m['sd'] * scale:.{digits}f}"

    names = {
        "scratch": "from scratch (target only)",
        "none": "direct transfer (none)",
        "teacher": "teacher (source channel)",
        "distill": "distilled from the teacher",
    }
    for strategy, per_delay in result["results"].items():
        s = per_delay[k_paper]
        lines.append(
            f"| {names.get(strategy, 'finetune ' + strategy)} | {cell(s, 'accuracy', 100)} | "
            f"{cell(s, 'kappa', 1)} | {cell(s, 'macro_f1', 100)} | "
            f"{cell(s, 'weighted_f1', 100)} | "
            f"{cell(s, 'sensitivity', 100)} | {cell(s, 'specificity', 100)} |"
        )
    delays = list(next(iter(result["results"].values())))
    lines += [
        "",
        "## Accuracy % by delay K (epochs of look-ahead)",
        "",
        "| strategy | " + " | ".join(f"K={k}" for k in delays) + " |",
        "|---" * (len(delays) + 1) + "|",
    ]
    for strategy, per_delay in result["results"].items():
        lines.append(
            f"| {strategy} | "
            + " | ".join(f"{per_delay[k]['accuracy']['mean'] * 100:.1f}" for k in delays)
            + " |"
        )
    lines += [
        "",
        f"Time (s): {result.get('seconds', {})}; total {result.get('total_seconds')} s.",
        "",
    ]
    return "\n".join(lines)
