"""Nested selection of the heart model's training and readout (issues 21 and 31).

Run: ``python studies/heart_selection.py [--walch ../shared/data/walch] [--slpdb
../shared/data/slpdb] [--jobs 2] [--out studies/results] [--probs
runs/heart_selection/probs.npz]`` (writes ``heart_selection.json`` / ``.md``; keeps every
outer fold's validation and test log-probabilities in ``--probs``, from which
``--from-probs`` evaluates the readouts again without training; ``--from-json`` renders the
report and its verdict again from the JSON).

Data (real): Walch et al. 2019 (21 subjects, Apple Watch heart rate) and slpdb (12 subjects,
14 records, ECG beat times), imported and merged by :mod:`edgesleep.workflows.heart_models`,
whose procedure (split, training, readout) this study runs in every outer fold and the
shipped models are built with.

Outer protocol: leave one of the 33 subjects out (pooled). In each outer fold, 4 subjects
of the training set (2 per cohort, drawn per fold) are the *inner validation* subjects:
they stop the training early and fit every readout below; the held-out subject is never
seen before its predictions are final. Trainings (the student, dilations 1, 2, 4, 8, lr
1e-3, 20 passes at stride 5, patience 4, delay 0, seed 0), each for W / Light / Deep / REM
and for W / NREM / REM:

- ``weighted``: cross-entropy with inverse-frequency class weights (until issue 31, the
  only training);
- ``unweighted``: plain cross-entropy.

Readouts of a training's log-probabilities (issue 31, item 2):

- ``argmax``: none;
- ``κ offsets``: per-class offsets fitted for κ on the inner validation subjects, used
  when they raise κ *cross-fitted* (each validation subject scored with offsets fitted on
  the others). ``weighted · κ offsets`` is the shipped procedure before issue 31
  ("nested: shippable" in earlier reports);
- ``undo weights``: ``-log w`` added (the class weights of the fold's training set), which
  gives back the unweighted posterior; nothing fitted;
- ``fraction offsets``: offsets fitted on the inner validation subjects so that the
  staged stage fractions match the expert's (for the night summary, not κ).

Every row is scored as a wearable validation study reports it (:mod:`edgesleep.agreement`):
κ, accuracy, macro F1 and per-stage sensitivity over the held-out epochs pooled; the
per-subject κ spread; per stage, the mean staged − expert fraction over the nights
(percentage points) with a subject-bootstrap 95 % CI; TST bias with 95 % limits of
agreement. Beside them on the same folds: the HR-statistics logistic regression floor and
the majority class (trained on all of the fold's training subjects), and on slpdb's
W / NREM / REM epochs sleepecg's pretrained model (``studies/sleepecg/``, run in its own
environment; no training, so no folds). The ensemble of 3 seeds measured before issue 31
(``git show 64b5d49:studies/results/heart_selection.md``) is not repeated: it cannot ship
within 100 KB.
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
from heart_pooled import (  # the floor's features and the cells, as in the sibling study
    bias_cell,
    cohort_parser,
    hr_statistics,
    loa_cell,
)

from edgesleep.io.writers import markdown_table, write_report
from edgesleep.stages import collapse_labels
from edgesleep.train.baselines import floor_probabilities
from edgesleep.train.data import NightFeatures, class_weights
from edgesleep.workflows.heart_models import (
    heart_nights,
    inner_split,
    log_probs,
    metrics,
    readout_offsets,
    train_student,
    with_classes,
)

TRAININGS = {"weighted": True, "unweighted": False}
READOUTS = {"weighted": ("argmax", "κ offsets", "undo weights", "fraction offsets"),
            "unweighted": ("argmax", "κ offsets", "fraction offsets")}  # fmt: skip
TODAY = "weighted · κ offsets"  # the shipped procedure before issue 31
CLASS_SETS = (4, 3)
BIAS_GOAL, COHORT_BIAS_GOAL, TST_GOAL_MIN, KAPPA_SLACK = 3.0, 5.0, 15.0, 0.01
N_BOOT = 1000
GROUPS = ("both", "walch", "slpdb")


def train_fold(args: tuple[list[NightFeatures], str, int]) -> dict[str, Any]:
    """One held-out subject: each training's validation and test log-probabilities, the
    class weights of its training set, and the baselines' test predictions."""
    import torch

    torch.set_num_threads(1)
    nights, held_out, fold = args
    test = [n for n in nights if n.subject == held_out]
    train = [n for n in nights if n.subject != held_out]
    fit, val = inner_split(train, fold)
    logp: dict[str, dict[str, list[np.ndarray]]] = {}
    weights: dict[str, np.ndarray] = {}
    for n_classes in CLASS_SETS:
        fit_c, val_c = with_classes(fit, n_classes), with_classes(val, n_classes)
        for training, weighted in TRAININGS.items():
            ckpt = train_student(fit_c, val_c, n_classes, 0, weighted=weighted)
            key = f"{n_classes}|{training}"
            logp[key] = {"val": log_probs(ckpt, val_c), "test": log_probs(ckpt, test)}
            weights[key] = class_weights(fit_c, n_classes)
    features = [hr_statistics(n.images) for n in train]
    floor = [floor_probabilities(features, [n.labels for n in train], hr_statistics(n.images),
                                 4).argmax(1) for n in test]  # fmt: skip
    labels = np.concatenate([n.labels for n in train])
    majority = int(np.bincount(labels[labels >= 0], minlength=4).argmax())
    return {
        "subject": held_out,
        "records": [n.record for n in test],
        "val_records": [n.record for n in val],
        "logp": logp,
        "weights": weights,
        "baselines": {"HR-statistics LR floor": floor,
                      "majority class": [np.full(n.n_epochs, majority) for n in test]},
    }  # fmt: skip


def save_probs(path: Path, folds: Sequence[dict[str, Any]]) -> None:
    """Every fold's log-probabilities, class weights and baseline predictions as one npz
    (no pickles): keys ``subject|n_classes|training|val|test|record`` and the like."""
    arrays: dict[str, np.ndarray] = {}
    for f in folds:
        s = f["subject"]
        arrays[f"{s}|records"] = np.array(f["records"])
        arrays[f"{s}|val_records"] = np.array(f["val_records"])
        for key, parts in f["logp"].items():
            arrays[f"{s}|{key}|weights"] = f["weights"][key]
            for part, records in (("val", f["val_records"]), ("test", f["records"])):
                for record, lp in zip(records, parts[part], strict=True):
                    arrays[f"{s}|{key}|{part}|{record}"] = lp.astype(np.float32)
        for name, preds in f["baselines"].items():
            for record, p in zip(f["records"], preds, strict=True):
                arrays[f"{s}|baseline|{name}|{record}"] = np.asarray(p, dtype=np.int8)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)  # type: ignore[arg-type]


def load_probs(path: Path) -> list[dict[str, Any]]:
    """The folds written by :func:`save_probs`."""
    with np.load(path, allow_pickle=False) as data:
        keys = list(data.keys())
        subjects = [k.removesuffix("|records") for k in keys if k.endswith("|records")
                    and not k.endswith("|val_records")]  # fmt: skip
        folds = []
        for s in subjects:
            records = data[f"{s}|records"].tolist()
            val_records = data[f"{s}|val_records"].tolist()
            logp, weights = {}, {}
            for n_classes in CLASS_SETS:
                for training in TRAININGS:
                    key = f"{n_classes}|{training}"
                    weights[key] = data[f"{s}|{key}|weights"]
                    parts = (("val", val_records), ("test", records))
                    logp[key] = {p: [data[f"{s}|{key}|{p}|{r}"] for r in rs] for p, rs in parts}
            names = dict.fromkeys(k.split("|")[2] for k in keys if k.startswith(f"{s}|baseline|"))
            baselines = {name: [data[f"{s}|baseline|{name}|{r}"].astype(np.int64) for r in records]
                         for name in names}  # fmt: skip
            folds.append({"subject": s, "records": records, "val_records": val_records,
                          "logp": logp, "weights": weights, "baselines": baselines})  # fmt: skip
    return folds


def read_fold(args: tuple[dict[str, Any], dict[str, NightFeatures]]) -> dict[str, Any]:
    """Every readout of one fold: per class set, per row, the test predictions and what
    was fitted on the inner validation subjects."""
    fold, by_record = args
    val = [by_record[r] for r in fold["val_records"]]
    preds: dict[int, dict[str, list[np.ndarray]]] = {}
    fitted: dict[str, Any] = {}
    for n_classes in CLASS_SETS:
        val_c = with_classes(val, n_classes)
        rows: dict[str, list[np.ndarray]] = {}
        for training in TRAININGS:
            key = f"{n_classes}|{training}"
            val_lp, test_lp = fold["logp"][key]["val"], fold["logp"][key]["test"]
            for readout in READOUTS[training]:
                weights = fold["weights"][key]
                offsets = readout_offsets(readout, val_c, val_lp, weights, n_classes)
                name = f"{training} · {readout}"
                rows[name] = [(lp + offsets).argmax(1) for lp in test_lp]
                fitted[f"{n_classes}-class {name}"] = np.round(offsets, 2).tolist()
        preds[n_classes] = rows
    return {"subject": fold["subject"], "records": fold["records"], "preds": preds,
            "baselines": fold["baselines"], "fitted": fitted}  # fmt: skip


def tables(nights: list[NightFeatures], read: list[dict[str, Any]]) -> dict[str, Any]:
    """Per class set and test group (both, walch, slpdb), per row, the metrics."""
    rows: dict[int, dict[str, dict[str, np.ndarray]]] = {4: {}, 3: {}}
    for fold in read:
        for name, preds in fold["preds"][4].items():
            rows[4].setdefault(name, {}).update(zip(fold["records"], preds, strict=True))
        for name, preds in fold["preds"][4].items():
            rows[3].setdefault(f"4-class {name}, collapsed", {}).update(
                zip(fold["records"], [collapse_labels(p, 4, 3) for p in preds], strict=True)
            )
        for name, preds in fold["preds"][3].items():
            rows[3].setdefault(f"3-class {name}", {}).update(
                zip(fold["records"], preds, strict=True))  # fmt: skip
        for name, preds in fold["baselines"].items():
            rows[4].setdefault(name, {}).update(zip(fold["records"], preds, strict=True))
            collapsed = [collapse_labels(p, 4, 3) for p in preds]
            rows[3].setdefault(name, {}).update(zip(fold["records"], collapsed, strict=True))
    groups = {
        "both": nights,
        "walch": [n for n in nights if n.subject.startswith("walch:")],
        "slpdb": [n for n in nights if n.subject.startswith("slpdb:")],
    }
    return {
        f"{n_classes}-class, tested on {group}": {
            row: metrics(groups[group], pred, n_classes) for row, pred in rows[n_classes].items()
        }
        for n_classes in CLASS_SETS
        for group in GROUPS
    }


def verdict(result: dict[str, Any], n_classes: int) -> dict[str, Any]:
    """The readout kept for ``n_classes`` (item 2's rule): among the student's rows whose
    pooled fraction bias is within ``BIAS_GOAL`` points for every stage and whose κ is at
    least today's − ``KAPPA_SLACK``, the highest κ; when none meets the bias goal, the
    smallest largest bias among those within the κ slack. Each goal met or missed."""
    prefix = "" if n_classes == 4 else "3-class "
    tables_ = result["tables"]
    both = tables_[f"{n_classes}-class, tested on both"]
    names = [f"{prefix}{t} · {r}" for t in TRAININGS for r in READOUTS[t]]
    today = both[f"{prefix}{TODAY}"]["kappa"]

    def worst(name: str) -> float:
        return max(abs(b["mean"]) for b in both[name]["fraction_bias"].values())

    near = [n for n in names if both[n]["kappa"] >= today - KAPPA_SLACK]
    meets = [n for n in near if worst(n) <= BIAS_GOAL]
    kept = max(meets, key=lambda n: both[n]["kappa"]) if meets else min(near, key=worst)
    cohorts = {}
    for g in GROUPS[1:]:
        biases = tables_[f"{n_classes}-class, tested on {g}"][kept]["fraction_bias"].values()
        cohorts[g] = round(max(abs(b["mean"]) for b in biases), 2)
    m = both[kept]
    tst, k, subject = m["summary_bias"]["TST"], m["kappa"], m["subject_kappa"]
    fractions = ", ".join(f"{c} {v['mean']:+.1f} [LoA {v['loa'][0]:+.0f}, {v['loa'][1]:+.0f}]"
                          for c, v in m["fraction_bias"].items())  # fmt: skip
    goals = {
        f"pooled |fraction bias| <= {BIAS_GOAL:g} points, every stage":
            [worst(kept) <= BIAS_GOAL, round(worst(kept), 2), fractions],
        f"per cohort |fraction bias| <= {COHORT_BIAS_GOAL:g} points":
            [max(cohorts.values()) <= COHORT_BIAS_GOAL,
             ", ".join(f"{g} {v:.2f}" for g, v in cohorts.items()), None],
        f"|TST bias| <= {TST_GOAL_MIN:g} min": [
            abs(tst["mean"]) <= TST_GOAL_MIN, round(tst["mean"], 1),
            f"LoA {tst['loa'][0]:+.0f} to {tst['loa'][1]:+.0f} min"],
        f"kappa >= today - {KAPPA_SLACK:g} ({today - KAPPA_SLACK:.3f})": [
            k >= today - KAPPA_SLACK, round(k, 3),
            f"subject κ median {subject['median']:.2f} [IQR {subject['q25']:.2f}, "
            f"{subject['q75']:.2f}]"],
    }  # fmt: skip
    return {"kept": kept.removeprefix(prefix), "today": TODAY, "kappa_today": today, "goals": goals}


def run(sources: dict[str, Path], jobs: int, probs: Path, from_probs: bool) -> dict[str, Any]:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        nights, _ = heart_nights(sources, Path(tmp))  # arrays, not memory maps
    subjects = sorted({n.subject for n in nights})
    by_record = {n.record: n for n in nights}
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        if from_probs:
            folds = load_probs(probs)
        else:
            folds = pool.map(train_fold, [(nights, s, i) for i, s in enumerate(subjects)],
                             chunksize=1)  # fmt: skip
            save_probs(probs, folds)
        trained_s = time.perf_counter() - started
        read = pool.map(read_fold, [(f, by_record) for f in folds], chunksize=1)
    result: dict[str, Any] = {
        "synthetic": False,
        "subjects": len(subjects),
        "nights": len(nights),
        "tables": tables(nights, read),
        "folds": [{"subject": f["subject"],
                   "val_subjects": sorted({by_record[r].subject for r in g["val_records"]}),
                   "offsets": f["fitted"]} for f, g in zip(read, folds, strict=True)],
        "seconds": round(trained_s, 1) if not from_probs else None,
    }  # fmt: skip
    result["verdict"] = {str(c): verdict(result, c) for c in CLASS_SETS}
    return result


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
    minutes = f"{result['seconds'] / 60:.0f} min" if result.get("seconds") else "timing not kept"
    lines = [
        "# Nested selection of the heart model (REAL data)",
        "",
        f"{result['subjects']} subjects / {result['nights']} nights (Walch Apple Watch heart "
        "rate, slpdb ECG beats), leave one subject out; every readout fitted on 4 inner "
        "validation subjects of each outer fold (see the study's docstring). Reproduce: "
        f"`python studies/heart_selection.py` ({minutes}, 2 processes on 2 cores). "
        "Fraction bias: staged − expert percentage of a night's scored epochs, mean over "
        "nights [subject-bootstrap 95 % CI]; TST bias: minutes, mean [95 % limits of "
        "agreement].",
        "",
        "## Goals (issue 31), on every held-out night pooled",
        "",
    ]
    for n_classes, v in result["verdict"].items():
        lines.append(f"- {n_classes} classes: kept **{v['kept']}** (today: {v['today']}, "
                     f"κ {v['kappa_today']:.3f})")  # fmt: skip
        for goal, (met, figure, spread) in v["goals"].items():
            per_subject = f"; per subject: {spread}" if spread else ""
            lines.append(f"  - {goal}: {'met' if met else 'MISSED'} ({figure}{per_subject})")
    for title, rows in result["tables"].items():
        first = next(iter(rows.values()))
        labels = " / ".join(first["recall"])
        lines += ["", f"## {title}", ""]
        lines += markdown_table(
            ["model", "κ", "accuracy", "MF1", f"recall {labels} %", "subject κ median [IQR]",
             *(f"{c} bias, points" for c in first["fraction_bias"]), "TST bias, min"],
            [[row, f"{m['kappa']:.3f}", f"{m['accuracy']:.3f}", f"{m['macro_f1']:.3f}",
              " / ".join(f"{100 * v:.0f}" for v in m["recall"].values()),
              f"{m['subject_kappa']['median']:.2f} [{m['subject_kappa']['q25']:.2f}, "
              f"{m['subject_kappa']['q75']:.2f}]",
              *(bias_cell(b) for b in m["fraction_bias"].values()),
              loa_cell(m["summary_bias"]["TST"])]
             for row, m in rows.items()],
        )  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = cohort_parser(__doc__)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--sleepecg", type=Path,
                        default=Path("studies/results/sleepecg_slpdb.json"))  # fmt: skip
    parser.add_argument("--probs", type=Path, default=Path("runs/heart_selection/probs.npz"),
                        help="where the folds' log-probabilities are kept")  # fmt: skip
    parser.add_argument(
        "--from-probs",
        action="store_true",
        help="evaluate the readouts on the kept log-probabilities, no training",
    )
    parser.add_argument(
        "--from-json",
        action="store_true",
        help="the verdict and the report again from the JSON in --out",
    )
    args = parser.parse_args()
    sources = {"walch": args.walch, "slpdb": args.slpdb}
    if args.from_json:
        result = json.loads((args.out / "heart_selection.json").read_text())
        result["verdict"] = {str(c): verdict(result, c) for c in CLASS_SETS}
        text = markdown(result)
        write_report(args.out, "heart_selection", result, text)
        print(text)
        return
    result = run(sources, args.jobs, args.probs, args.from_probs)
    if args.from_probs and (args.out / "heart_selection.json").is_file():
        result["seconds"] = json.loads((args.out / "heart_selection.json").read_text()).get(
            "seconds"
        )  # the training's time, from the run that made the probabilities
    if args.sleepecg.is_file():
        add_sleepecg(result, sources, args.sleepecg)
    text = markdown(result)
    write_report(args.out, "heart_selection", result, text)
    print(text)


if __name__ == "__main__":
    main()
