"""Subject-wise cross-validation of transfer learning, shaped like seed 1's Tables I/II.

A recipe (TOML, see ``train/recipes/``) names a source dataset and channel to pretrain on,
a target dataset and channel, the folds, the strategies and the seeds. For each seed: pretrain
on every source subject (a few held out for validation), then for each fold of target
subjects train each strategy on the other target subjects (some held out for validation)
and score the fold's subjects. Test epochs are pooled over folds (as the paper does);
numbers are mean ± sd over seeds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from edgesleep.config import check_keys, from_mapping
from edgesleep.errors import InputError, UsageError
from edgesleep.io.dataset import Crop, read_dataset
from edgesleep.io.writers import write_report
from edgesleep.metrics import evaluate
from edgesleep.stages import CLASS_LABELS, class_labels
from edgesleep.train.data import NightFeatures, load_features
from edgesleep.train.evaluate import predict_nights
from edgesleep.train.models import STRATEGIES as FINETUNE
from edgesleep.train.training import TrainOptions, read_toml, resolve_device, split_subjects
from edgesleep.train.transfer import train_features

log = logging.getLogger("edgesleep")
STRATEGIES = ("scratch", *FINETUNE)


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
    train: TrainOptions = field(default_factory=TrainOptions)
    pretrain: TrainOptions = field(default_factory=TrainOptions)


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
    check_keys(raw, ["name", "train", "pretrain", *SECTIONS], str(path))
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


def make_synthetic(recipe: Recipe) -> None:
    """Write the recipe's synthetic source/target datasets if they are not there yet."""
    from edgesleep.synth.night import synthesize_dataset

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


def run(
    recipe: Recipe,
    out: Path,
    progress: Callable[[str], None] | None = None,
    cache: Path | None = None,
) -> dict[str, Any]:
    """Run every seed, fold and strategy; write ``cv.json`` and ``cv.md`` under ``out``."""
    say = progress or (lambda message: log.info("%s", message))
    for opts in (recipe.train, recipe.pretrain):  # before any data is written or read
        if resolve_device(opts.device).type != "cuda" and opts.amp is not None:
            raise UsageError(f"--amp {opts.amp} runs on CUDA only; this run is on {opts.device}")
    make_synthetic(recipe)
    started = time.perf_counter()
    target = read_dataset(recipe.target)
    target_nights = load_features(
        target, recipe.target_channel, recipe.n_classes, recipe.crop, cache=cache
    )
    by_subject: dict[str, list[NightFeatures]] = {}
    for night in target_nights:
        by_subject.setdefault(night.subject, []).append(night)
    source_nights: list[NightFeatures] = []
    synthetic = target.synthetic
    if recipe.source is not None and recipe.source_channel is not None:
        source_ds = read_dataset(recipe.source)
        synthetic = synthetic or source_ds.synthetic
        source_nights = load_features(
            source_ds, recipe.source_channel, recipe.n_classes, recipe.crop, cache=cache
        )
    needs_source = any(s not in ("scratch",) for s in recipe.strategies)
    if needs_source and not source_nights:
        raise InputError("strategies other than scratch need [data] source and source_channel")
    # predictions[strategy][delay][seed] -> list of per-night predictions (pooled over folds)
    preds: dict[str, dict[int, dict[int, list[np.ndarray]]]] = {
        s: {k: {} for k in recipe.delays} for s in recipe.strategies
    }
    truth: dict[int, list[np.ndarray]] = {}
    timing: dict[str, float] = {}
    # Source and target from the same cohort: pretrain per fold without the test subjects.
    same_cohort = recipe.source is not None and recipe.source.resolve() == recipe.target.resolve()

    def pretrain(seed: int, exclude: Sequence[str]) -> Any:
        ids = sorted({n.subject for n in source_nights} - set(exclude))
        train_ids, val_ids = split_subjects(ids, recipe.source_val_subjects, seed)
        t0 = time.perf_counter()
        ckpt = train_features(
            [n for n in source_nights if n.subject in train_ids],
            [n for n in source_nights if n.subject in val_ids],
            recipe.source_channel or "",
            n_classes=recipe.n_classes,
            opts=replace(recipe.pretrain, seed=seed),
        )
        timing["pretrain"] = timing.get("pretrain", 0.0) + time.perf_counter() - t0
        say(
            f"seed {seed}: pretrained on {recipe.source_channel} "
            f"(val acc {ckpt.provenance['metrics']['val_accuracy']:.3f})"
        )
        return ckpt

    for seed in recipe.seeds:
        source_ckpt = pretrain(seed, []) if needs_source and not same_cohort else None
        truth[seed] = []
        for fold, test_ids in enumerate(folds_of(list(by_subject), recipe.folds, seed)):
            if needs_source and same_cohort:
                source_ckpt = pretrain(seed, test_ids)
            rest = [s for s in by_subject if s not in test_ids]
            train_ids, val_ids = split_subjects(rest, recipe.n_val_subjects, seed)
            train_n = [n for s in train_ids for n in by_subject[s]]
            val_n = [n for s in val_ids for n in by_subject[s]]
            test_n = [n for s in test_ids for n in by_subject[s]]
            truth[seed] += [n.labels for n in test_n]
            for strategy in recipe.strategies:
                t0 = time.perf_counter()
                finetune = "all" if strategy == "scratch" else strategy
                ckpt = train_features(
                    train_n,
                    val_n,
                    recipe.target_channel,
                    n_classes=recipe.n_classes,
                    source=None if strategy == "scratch" else source_ckpt,
                    opts=replace(recipe.train, seed=seed, finetune=finetune),
                )
                scorer = ckpt.scorer(resolve_device(recipe.train.device))
                for k, p in predict_nights(scorer, test_n, recipe.delays).items():
                    preds[strategy][k].setdefault(seed, []).extend(p)
                timing[strategy] = timing.get(strategy, 0.0) + time.perf_counter() - t0
                say(
                    f"seed {seed} fold {fold} {strategy}: "
                    f"{ckpt.provenance['training']['steps']} steps"
                )
    result = summarise(recipe, preds, truth, synthetic)
    result["seconds"] = {k: round(v, 1) for k, v in timing.items()}
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    write_report(out, "cv", result, to_markdown(result))
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
        f"mean ± sd over seeds; readout: fusion over all windows (K = {k_paper}).",
        "",
        "| strategy | Acc % | κ | MF1 % | Sens % | Spec % |",
        "|---|---|---|---|---|---|",
    ]

    def cell(stats: dict[str, Any], metric: str, scale: float) -> str:
        m = stats[metric]
        digits = 1 if scale == 100 else 3
        return f"{m['mean'] * scale:.{digits}f} ± {m['sd'] * scale:.{digits}f}"

    names = {"scratch": "from scratch (target only)", "none": "direct transfer (none)"}
    for strategy, per_delay in result["results"].items():
        s = per_delay[k_paper]
        lines.append(
            f"| {names.get(strategy, 'finetune ' + strategy)} | {cell(s, 'accuracy', 100)} | "
            f"{cell(s, 'kappa', 1)} | {cell(s, 'macro_f1', 100)} | "
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
