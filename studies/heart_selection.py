"""Nested selection of the heart model's training and readout (issue 21, item 5).

Run: ``python studies/heart_selection.py [--walch ../shared/data/walch] [--slpdb
../shared/data/slpdb] [--jobs 2] [--out studies/results]`` (writes ``heart_selection.json``
/ ``.md``).

Data (real): Walch et al. 2019 (21 subjects, Apple Watch heart rate) and slpdb (12 subjects,
14 records, ECG beat times), read as in ``studies/heart_pooled.py``.

Outer protocol: leave one of the 33 subjects out (pooled). In each outer fold, 4 subjects
of the training set (2 per cohort, drawn per fold) are the *inner validation* subjects:
they stop the training early and make every choice below; the held-out subject is never
seen before its predictions are final. Candidates (the student, dilations 1, 2, 4, 8,
class-weighted cross-entropy, lr 1e-3, 20 passes at stride 5, patience 4, look-ahead 0):

- ``single``: seed 0;
- ``single + prior offset``: seed 0 with per-class log-probability offsets (class balance
  at the readout: lifts the recall of the classes the weighted loss still under-calls)
  fitted to maximise κ on the inner validation subjects (coordinate ascent on a grid,
  Light fixed at 0). Whether the offsets are used is decided by *cross-fitted* inner κ
  (each validation subject scored with offsets fitted on the other three), so fitting
  and choosing never share data;
- ``ensemble of 3`` (seeds 0, 1, 2, probabilities averaged), with and without offsets.

``nested: shippable`` picks, per outer fold, between the two single-model candidates by
inner κ (an ensemble triples size and time and cannot ship within 100 KB); ``nested: any``
picks among all four, to show what an ensemble would buy. W / NREM / REM: a student
trained on 3 classes (seed 0, offsets chosen the same way) beside the 4-class selection
collapsed. Beside them on the same folds: the HR-statistics logistic regression floor
and the majority class (trained on all of the fold's training subjects).
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from heart_pooled import cohort, hr_statistics  # the sibling study reads the cohorts

from edgesleep.io.writers import markdown_table, write_report
from edgesleep.metrics import evaluate
from edgesleep.readout import probabilities
from edgesleep.stages import class_labels, collapse_labels
from edgesleep.train.baselines import floor_probabilities
from edgesleep.train.data import NightFeatures
from edgesleep.train.training import per_pass_options
from edgesleep.train.transfer import train_features

SEEDS = (0, 1, 2)
MODEL = {"dilations": (1, 2, 4, 8)}
OFFSET_GRID = np.arange(-2.0, 2.01, 0.25)
VAL_PER_COHORT = 2
PASSES = 20
FOUR = ("single", "single + prior offset", "ensemble of 3", "ensemble of 3 + prior offset")
SHIPPABLE = FOUR[:2]


def kappa(truth: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    return float(evaluate(truth, pred, n_classes)["kappa"])  # type: ignore[arg-type]


def fit_offsets(logp: np.ndarray, truth: np.ndarray, n_classes: int, fixed: int) -> np.ndarray:
    """Per-class offsets added to log-probabilities that maximise κ on (logp, truth);
    class ``fixed`` stays at 0. Two sweeps of coordinate ascent over ``OFFSET_GRID``."""
    offsets = np.zeros(n_classes)
    scored = truth >= 0
    logp, truth = logp[scored], truth[scored]
    for _ in range(2):
        for c in range(n_classes):
            if c == fixed:
                continue
            best, best_k = offsets[c], -np.inf
            for value in OFFSET_GRID:
                offsets[c] = value
                k = kappa(truth, (logp + offsets).argmax(1), n_classes)
                if k > best_k + 1e-9:
                    best, best_k = value, k
            offsets[c] = best
    return offsets


def cross_fitted_kappa(val: dict[str, tuple[np.ndarray, np.ndarray]], n_classes: int,
                       fixed: int) -> float:  # fmt: skip
    """κ over the validation subjects, each scored with offsets fitted on the others."""
    truth, pred = [], []
    for subject, (logp, labels) in val.items():
        others = [v for s, v in val.items() if s != subject]
        offsets = fit_offsets(np.concatenate([o[0] for o in others]),
                              np.concatenate([o[1] for o in others]), n_classes, fixed)  # fmt: skip
        truth.append(labels)
        pred.append((logp + offsets).argmax(1))
    return kappa(np.concatenate(truth), np.concatenate(pred), n_classes)


def train_probs(fit: Sequence[NightFeatures], val: Sequence[NightFeatures],
                test: Sequence[NightFeatures], n_classes: int, seed: int,
                ) -> tuple[list[np.ndarray], list[np.ndarray]]:  # fmt: skip
    """Train one student; its delay-0 probabilities on each validation and test night."""
    ckpt = train_features(
        fit, val, "heart-rate", "student", n_classes,
        opts=per_pass_options(sum(n.n_epochs for n in fit), seed, 1e-3, passes=PASSES, patience=4),
        model_fields=MODEL, input_kind="beats",
    )  # fmt: skip
    scorer = ckpt.scorer()
    return ([probabilities(scorer, n.images, [0])[0] for n in val],
            [probabilities(scorer, n.images, [0])[0] for n in test])  # fmt: skip


def with_classes(nights: Sequence[NightFeatures], n_classes: int) -> list[NightFeatures]:
    return [NightFeatures(n.record, n.subject, n.images, collapse_labels(n.labels, 4, n_classes))
            for n in nights]  # fmt: skip


Probs = tuple[list[np.ndarray], list[np.ndarray]]  # per validation night, per test night


def choose(candidates: dict[str, Probs], val: Sequence[NightFeatures], n_classes: int,
           names: Sequence[str]) -> dict[str, Any]:  # fmt: skip
    """Offsets of each "+ prior offset" candidate (fitted on all validation subjects), the
    inner κ that decides (cross-fitted for offsets) and the test predictions per candidate."""
    light = 1  # W / Light / Deep / REM and W / NREM / REM: index 1 is Light / NREM
    labels = [n.labels for n in val]
    truth = np.concatenate(labels)
    out: dict[str, Any] = {"inner_kappa": {}, "offsets": {}, "test": {}}
    for name in names:
        base = name.removesuffix(" + prior offset")
        val_p, test_p = candidates[base]
        val_logp = [np.log(np.maximum(p, 1e-12)) for p in val_p]
        offsets = np.zeros(n_classes)
        if name != base:
            offsets = fit_offsets(np.concatenate(val_logp), truth, n_classes, light)
            per_subject: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}
            for night, lp, lab in zip(val, val_logp, labels, strict=True):
                per_subject.setdefault(night.subject, ([], []))
                per_subject[night.subject][0].append(lp)
                per_subject[night.subject][1].append(lab)
            inner = cross_fitted_kappa(
                {s: (np.concatenate(v[0]), np.concatenate(v[1])) for s, v in per_subject.items()},
                n_classes, light)  # fmt: skip
        else:
            inner = kappa(truth, np.concatenate(val_logp).argmax(1), n_classes)
        out["inner_kappa"][name] = inner
        out["offsets"][name] = offsets.round(2).tolist()
        out["test"][name] = [(np.log(np.maximum(p, 1e-12)) + offsets).argmax(1) for p in test_p]
    return out


def outer_fold(args: tuple[list[NightFeatures], str, int]) -> dict[str, Any]:
    """One held-out subject: every candidate's and baseline's test predictions."""
    import torch

    torch.set_num_threads(1)
    nights, held_out, fold = args
    test = [n for n in nights if n.subject == held_out]
    train = [n for n in nights if n.subject != held_out]
    rng = np.random.default_rng(fold)
    val_ids: set[str] = set()
    for prefix in ("walch:", "slpdb:"):
        pool = sorted({n.subject for n in train if n.subject.startswith(prefix)})
        val_ids |= set(rng.choice(pool, VAL_PER_COHORT, replace=False).tolist())
    fit = [n for n in train if n.subject not in val_ids]
    val = [n for n in train if n.subject in val_ids]
    runs = [train_probs(fit, val, test, 4, seed) for seed in SEEDS]
    four = {
        "single": runs[0],
        "ensemble of 3": ([np.mean([r[0][i] for r in runs], axis=0) for i in range(len(val))],
                          [np.mean([r[1][i] for r in runs], axis=0) for i in range(len(test))]),
    }  # fmt: skip
    chosen4 = choose(four, val, 4, FOUR)
    three = {"single": train_probs(with_classes(fit, 3), with_classes(val, 3), test, 3, 0)}
    chosen3 = choose(three, with_classes(val, 3), 3, SHIPPABLE)
    for chosen, names, key in ((chosen4, SHIPPABLE, "nested: shippable"),
                               (chosen4, FOUR, "nested: any"),
                               (chosen3, SHIPPABLE, "nested: shippable")):  # fmt: skip
        pick = max(names, key=lambda name: chosen["inner_kappa"][name])
        chosen["test"][key] = chosen["test"][pick]
        chosen.setdefault("picked", {})[key] = pick
    features = [hr_statistics(n.images) for n in train]
    floor = [floor_probabilities(features, [n.labels for n in train], hr_statistics(n.images),
                                 4).argmax(1) for n in test]  # fmt: skip
    labels = np.concatenate([n.labels for n in train])
    majority = int(np.bincount(labels[labels >= 0], minlength=4).argmax())
    return {
        "subject": held_out,
        "records": [n.record for n in test],
        "val_subjects": sorted(val_ids),
        "four": chosen4,
        "three": chosen3,
        "baselines": {"HR-statistics LR floor": floor,
                      "majority class": [np.full(n.n_epochs, majority) for n in test]},
    }  # fmt: skip


def metrics(nights: Sequence[NightFeatures], pred: dict[str, np.ndarray], n_classes: int,
            ) -> dict[str, Any]:  # fmt: skip
    """Pooled κ, accuracy, MF1, recall; per-subject κ mean, sd, median, IQR."""
    truth = np.concatenate([collapse_labels(n.labels, 4, n_classes) for n in nights])
    guess = np.concatenate([pred[n.record] for n in nights])
    pooled = evaluate(truth, guess, n_classes)
    per_subject = []
    for subject in sorted({n.subject for n in nights}):
        mine = [n for n in nights if n.subject == subject]
        t = np.concatenate([collapse_labels(n.labels, 4, n_classes) for n in mine])
        per_subject.append(kappa(t, np.concatenate([pred[n.record] for n in mine]), n_classes))
    recall = pooled["per_class"]["sensitivity"]  # type: ignore[index]
    return {
        "kappa": pooled["kappa"], "accuracy": pooled["accuracy"],
        "macro_f1": pooled["macro_f1"],
        "recall": dict(zip(class_labels(n_classes), recall, strict=True)),
        "subject_kappa": {"mean": float(np.mean(per_subject)), "sd": float(np.std(per_subject)),
                          "median": float(np.median(per_subject)),
                          "q25": float(np.percentile(per_subject, 25)),
                          "q75": float(np.percentile(per_subject, 75))},
        "n_epochs": pooled["n_epochs"],
    }  # fmt: skip


def tables(nights: list[NightFeatures], folds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per class set and test group (walch, slpdb, both), per row, the metrics."""
    rows4: dict[str, dict[str, np.ndarray]] = {}
    rows3: dict[str, dict[str, np.ndarray]] = {}
    for fold in folds:
        for name, preds in fold["four"]["test"].items():
            rows4.setdefault(name, {}).update(zip(fold["records"], preds, strict=True))
            collapsed = [collapse_labels(p, 4, 3) for p in preds]
            if name == "nested: shippable":
                rows3.setdefault("4-class nested: shippable, collapsed", {}).update(
                    zip(fold["records"], collapsed, strict=True))  # fmt: skip
        for name, preds in fold["three"]["test"].items():
            rows3.setdefault(f"3-class student: {name}", {}).update(
                zip(fold["records"], preds, strict=True))  # fmt: skip
        for name, preds in fold["baselines"].items():
            rows4.setdefault(name, {}).update(zip(fold["records"], preds, strict=True))
            collapsed = [collapse_labels(p, 4, 3) for p in preds]
            rows3.setdefault(name, {}).update(zip(fold["records"], collapsed, strict=True))
    groups = {
        "walch": [n for n in nights if n.subject.startswith("walch:")],
        "slpdb": [n for n in nights if n.subject.startswith("slpdb:")],
        "both": nights,
    }
    return {
        f"{n_classes}-class, tested on {group}": {
            row: metrics(members, pred, n_classes) for row, pred in rows.items()
        }
        for n_classes, rows in ((4, rows4), (3, rows3))
        for group, members in groups.items()
    }


def run(sources: dict[str, Path], jobs: int) -> dict[str, Any]:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        nights = [n for name, src in sources.items() for n in cohort(name, src, Path(tmp))]
        # the images leave the memory maps before the workers get them
        nights = [NightFeatures(n.record, n.subject, np.array(n.images), n.labels)
                  for n in nights]  # fmt: skip
    subjects = sorted({n.subject for n in nights})
    work = [(nights, s, i) for i, s in enumerate(subjects)]
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        folds = pool.map(outer_fold, work, chunksize=1)
    picked: dict[str, dict[str, int]] = {}
    for fold in folds:
        for part in ("four", "three"):
            for key, pick in fold[part]["picked"].items():
                name = f"{part}-class {key}".replace("four", "4").replace("three", "3")
                picked.setdefault(name, {}).setdefault(pick, 0)
                picked[name][pick] += 1
    return {
        "synthetic": False,
        "subjects": len(subjects),
        "nights": len(nights),
        "tables": tables(nights, folds),
        "picked": picked,
        "folds": [
            {
                "subject": f["subject"],
                "val_subjects": f["val_subjects"],
                "inner_kappa_4": f["four"]["inner_kappa"],
                "offsets_4": f["four"]["offsets"],
                "picked_4": f["four"]["picked"],
                "inner_kappa_3": f["three"]["inner_kappa"],
                "offsets_3": f["three"]["offsets"],
                "picked_3": f["three"]["picked"],
            }
            for f in folds
        ],  # fmt: skip
        "seconds": round(time.perf_counter() - started, 1),
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Nested selection of the heart model (REAL data)",
        "",
        f"{result['subjects']} subjects / {result['nights']} nights (Walch Apple Watch heart "
        "rate, slpdb ECG beats), leave one subject out; every choice made on 4 inner "
        "validation subjects of each outer fold (see the study's docstring). Reproduce: "
        f"`python studies/heart_selection.py` ({result['seconds'] / 60:.0f} min, 2 processes "
        "on 2 cores).",
        "",
        "Picked per outer fold: "
        + "; ".join(
            f"{k}: " + ", ".join(f"{p} {n}×" for p, n in v.items())
            for k, v in result["picked"].items()
        ),  # fmt: skip
    ]
    for title, rows in result["tables"].items():
        labels = " / ".join(next(iter(rows.values()))["recall"])
        lines += ["", f"## {title}", ""]
        lines += markdown_table(
            ["model", "κ", "accuracy", "MF1", f"recall {labels} %",
             "subject κ mean ± sd", "median [IQR]"],
            [[row, f"{m['kappa']:.3f}", f"{m['accuracy']:.3f}", f"{m['macro_f1']:.3f}",
              " / ".join(f"{100 * v:.0f}" for v in m["recall"].values()),
              f"{m['subject_kappa']['mean']:.2f} ± {m['subject_kappa']['sd']:.2f}",
              f"{m['subject_kappa']['median']:.2f} [{m['subject_kappa']['q25']:.2f}, "
              f"{m['subject_kappa']['q75']:.2f}]"]
             for row, m in rows.items()],
        )  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--walch", type=Path, default=Path("../shared/data/walch"))
    parser.add_argument("--slpdb", type=Path, default=Path("../shared/data/slpdb"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("studies/results"))
    args = parser.parse_args()
    result = run({"walch": args.walch, "slpdb": args.slpdb}, args.jobs)
    text = markdown(result)
    write_report(args.out, "heart_selection", result, text)
    print(text)


if __name__ == "__main__":
    main()
