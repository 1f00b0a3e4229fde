"""Nested selection of the heart model's training and readout (issue 21, item 5).

Run: ``python studies/heart_selection.py [--walch ../shared/data/walch] [--slpdb
../shared/data/slpdb] [--jobs 2] [--out studies/results]`` (writes ``heart_selection.json``
/ ``.md``).

Data (real): Walch et al. 2019 (21 subjects, Apple Watch heart rate) and slpdb (12 subjects,
14 records, ECG beat times), imported and merged by :mod:`edgesleep.workflows.heart_models`,
whose procedure (split, training, offsets) this study runs in every outer fold and the
shipped models are built with.

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
and the majority class (trained on all of the fold's training subjects), and on slpdb's
W / NREM / REM epochs sleepecg's pretrained model (``studies/sleepecg/``, run in its own
environment; no training, so no folds).
"""

from __future__ import annotations

import json
import multiprocessing
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from heart_pooled import (  # the floor's features, as in the sibling study
    cohort_parser,
    hr_statistics,
)

from edgesleep.io.writers import markdown_table, write_report
from edgesleep.metrics import evaluate
from edgesleep.stages import class_labels, collapse_labels
from edgesleep.train.baselines import floor_probabilities
from edgesleep.train.data import NightFeatures
from edgesleep.workflows.heart_models import (
    choose_offsets,
    heart_nights,
    inner_split,
    kappa,
    log_probs,
    train_student,
    with_classes,
)

SEEDS = (0, 1, 2)
FOUR = ("single", "single + prior offset", "ensemble of 3", "ensemble of 3 + prior offset")
SHIPPABLE = FOUR[:2]


def candidates(val: Sequence[NightFeatures], test_logp: dict[str, list[np.ndarray]],
               val_logp: dict[str, list[np.ndarray]], n_classes: int, names: Sequence[str],
               ) -> dict[str, Any]:  # fmt: skip
    """Per candidate: the inner κ that decides (cross-fitted for offsets), the offsets and
    the test predictions."""
    out: dict[str, Any] = {"inner_kappa": {}, "offsets": {}, "test": {}}
    for base in dict.fromkeys(n.removesuffix(" + prior offset") for n in names):
        choice = choose_offsets(val, val_logp[base], n_classes)
        out["inner_kappa"][base] = choice.plain_kappa
        out["offsets"][base] = [0.0] * n_classes
        out["test"][base] = [lp.argmax(1) for lp in test_logp[base]]
        name = f"{base} + prior offset"
        if name in names:
            out["inner_kappa"][name] = choice.offset_kappa
            out["offsets"][name] = choice.offsets.round(2).tolist()
            out["test"][name] = [(lp + choice.offsets).argmax(1) for lp in test_logp[base]]
    return out


def mean_log_probs(runs: list[list[np.ndarray]]) -> list[np.ndarray]:
    """Per night, the log of the seeds' mean probabilities."""
    return [np.log(np.mean([np.exp(r[i]) for r in runs], axis=0)) for i in range(len(runs[0]))]


def outer_fold(args: tuple[list[NightFeatures], str, int]) -> dict[str, Any]:
    """One held-out subject: every candidate's and baseline's test predictions."""
    import torch

    torch.set_num_threads(1)
    nights, held_out, fold = args
    test = [n for n in nights if n.subject == held_out]
    train = [n for n in nights if n.subject != held_out]
    fit, val = inner_split(train, fold)
    ckpts = [train_student(fit, val, 4, seed) for seed in SEEDS]
    val_runs = [log_probs(c, val) for c in ckpts]
    test_runs = [log_probs(c, test) for c in ckpts]
    tests = {"single": test_runs[0], "ensemble of 3": mean_log_probs(test_runs)}
    vals = {"single": val_runs[0], "ensemble of 3": mean_log_probs(val_runs)}
    four = candidates(val, tests, vals, 4, FOUR)
    fit3, val3 = with_classes(fit, 3), with_classes(val, 3)
    ckpt3 = train_student(fit3, val3, 3, 0)
    three = candidates(val3, {"single": log_probs(ckpt3, test)}, {"single": log_probs(ckpt3, val3)},
                       3, SHIPPABLE)  # fmt: skip
    for chosen, names, key in ((four, SHIPPABLE, "nested: shippable"),
                               (four, FOUR, "nested: any"),
                               (three, SHIPPABLE, "nested: shippable")):  # fmt: skip
        # ties keep the plain candidate (max keeps the first), as the shipped build does
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
        "val_subjects": sorted({n.subject for n in val}),
        "four": four,
        "three": three,
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
        nights, _ = heart_nights(sources, Path(tmp))  # arrays, not memory maps
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


def add_sleepecg(result: dict[str, Any], sources: dict[str, Path], path: Path) -> None:
    """sleepecg's pretrained ``wrn-gru-mesa`` (``studies/sleepecg/``, own environment; it
    needs no training, so every fold is the same) in the W / NREM / REM table of slpdb, on
    exactly these epochs; an epoch it leaves without a prediction counts as wake (an
    error)."""
    data = json.loads(path.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        nights, _ = heart_nights(sources, Path(tmp))
    slpdb = [n for n in nights if n.subject.startswith("slpdb:")]
    pred = {}
    for n in slpdb:
        p = np.asarray(data["predictions"][n.record.removeprefix("slpdb-")], dtype=np.int64)
        if p.shape[0] != n.n_epochs:
            raise ValueError(f"{path}: {n.record} has {p.shape[0]} epochs, not {n.n_epochs}")
        pred[n.record] = np.where(p < 0, 0, p)
    row = f"sleepecg {data['versions'].get('sleepecg', '')} (pretrained {data['model']})"
    result["tables"]["3-class, tested on slpdb"][row] = metrics(slpdb, pred, 3)


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
    parser = cohort_parser(__doc__)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--sleepecg", type=Path,
                        default=Path("studies/results/sleepecg_slpdb.json"))  # fmt: skip
    parser.add_argument("--from-json", type=Path, help="render an earlier run's JSON again")
    args = parser.parse_args()
    sources = {"walch": args.walch, "slpdb": args.slpdb}
    if args.from_json is not None:
        result = json.loads(args.from_json.read_text())
    else:
        result = run(sources, args.jobs)
    if args.sleepecg.is_file():
        add_sleepecg(result, sources, args.sleepecg)
    text = markdown(result)
    write_report(args.out, "heart_selection", result, text)
    print(text)


if __name__ == "__main__":
    main()
