"""Heart staging on two real cohorts, alone, pooled and across (issue 21, item 5, first pass).

Run: ``python studies/heart_pooled.py [--walch ../shared/data/walch] [--slpdb
../shared/data/slpdb] [--out studies/results]`` (writes ``heart_pooled.json`` / ``.md``).

Data (real): Walch et al. 2019 (21 adults in a sleep lab, Apple Watch heart rate, one night
each) and slpdb (12 sleep-apnea patients, 14 records, ECG beat times), imported with
``edgesleep data import`` and read through the one beat-interval image (heart rate for
Walch, beats for slpdb). W / Light / Deep / REM; W / NREM / REM collapses both the truth
and the predictions.

Protocols (one seed; every held-out subject's epochs pooled):

- within each cohort, leave one subject out;
- pooled, leave one of the 33 subjects out (reported per cohort and over both);
- across: train on one cohort, test on every subject of the other.

In each training set, 2 subjects (drawn per fold) validate for early stopping; nothing
else is tuned (the configuration is fixed beforehand: the student with dilations 1, 2, 4,
8, class-weighted cross-entropy, lr 1e-3, 20 passes at stride 5, patience 4, look-ahead 0
as ``studies/lookahead.py`` found). Beside it, on the same folds: a class-balanced logistic
regression on 7 heart-rate statistics of each epoch's image (the epoch's mean, sd, min and
max of the rate relative to the night's baseline, the 270-s context's mean and sd, and the
change over it; per-night z-scored; +-2 epochs of context), and the majority class of the
training set. Per-subject κ (median and interquartile range) shows the spread.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgesleep.agreement import Night, agreement, summary_bias
from edgesleep.io.imports import import_slpdb, import_walch
from edgesleep.io.writers import markdown_table, write_report
from edgesleep.metrics import evaluate
from edgesleep.stages import class_labels, collapse_labels
from edgesleep.train.baselines import floor_probabilities, with_context
from edgesleep.train.data import NightFeatures, load_features
from edgesleep.train.evaluate import predict_nights
from edgesleep.train.training import per_pass_options, split_subjects
from edgesleep.train.transfer import train_features

N_CLASSES, SEED = 4, 0
MODEL = {"dilations": (1, 2, 4, 8)}
ROWS = ("student", "HR-statistics LR floor", "majority class")


def cohort(name: str, src: Path, tmp: Path) -> list[NightFeatures]:
    """A cohort's nights; subjects prefixed with the cohort's name (ids never collide)."""
    importer, channel = {"walch": (import_walch, "heart-rate"), "slpdb": (import_slpdb, "beats")}[
        name
    ]
    nights = load_features(importer(src, tmp / name), channel, N_CLASSES, crop="none",
                           kind="beats")  # fmt: skip
    return [NightFeatures(n.record, f"{name}:{n.subject}", n.images, n.labels) for n in nights]


def hr_statistics(images: np.ndarray) -> np.ndarray:
    """7 statistics per epoch of its beat-interval image (see the module docstring), per
    night z-scored, with +-2 epochs of context."""
    own = images[:, -3:, :].reshape(images.shape[0], -1)  # the epoch's 30 s (3 frames)
    whole = images.reshape(images.shape[0], -1)
    change = own.mean(1) - images[:, :3, :].mean(axis=(1, 2))
    columns = [own.mean(1), own.std(1), own.min(1), own.max(1), whole.mean(1), whole.std(1)]
    feats = np.stack([*columns, change], axis=1)
    feats = (feats - feats.mean(0)) / np.maximum(feats.std(0), 1e-9)
    return with_context(feats)


def fit_and_predict(
    train: Sequence[NightFeatures], test: Sequence[NightFeatures]
) -> dict[str, list[np.ndarray]]:
    """Per row, the predicted classes of each test night."""
    subjects = sorted({n.subject for n in train})
    train_ids, val_ids = split_subjects(subjects, 2, SEED)
    fit_n = [n for n in train if n.subject in train_ids]
    val_n = [n for n in train if n.subject in val_ids]
    ckpt = train_features(
        fit_n, val_n, "heart-rate", "student", N_CLASSES,
        opts=per_pass_options(sum(n.n_epochs for n in fit_n), SEED, 1e-3, passes=20, patience=4),
        model_fields=MODEL, input_kind="beats",
    )  # fmt: skip
    out = {"student": predict_nights(ckpt.scorer(), test, [0])[0]}
    features = [hr_statistics(n.images) for n in train]
    out["HR-statistics LR floor"] = [
        floor_probabilities(features, [n.labels for n in train], hr_statistics(n.images),
                            N_CLASSES).argmax(1)
        for n in test
    ]  # fmt: skip
    labels = np.concatenate([n.labels for n in train])
    majority = int(np.bincount(labels[labels >= 0], minlength=N_CLASSES).argmax())
    out["majority class"] = [np.full(n.n_epochs, majority) for n in test]
    return out


def loso(train_pool: Sequence[NightFeatures], test_pool: Sequence[NightFeatures] | None = None,
         ) -> dict[str, dict[str, np.ndarray]]:  # fmt: skip
    """Leave one subject out over ``train_pool`` (or, with ``test_pool``, train on all of
    ``train_pool`` and test each night of ``test_pool``); per row, per record, predictions."""
    preds: dict[str, dict[str, np.ndarray]] = {row: {} for row in ROWS}
    if test_pool is not None:
        got = fit_and_predict(train_pool, test_pool)
        for row in ROWS:
            preds[row].update(zip([n.record for n in test_pool], got[row], strict=True))
        return preds
    for subject in sorted({n.subject for n in train_pool}):
        test = [n for n in train_pool if n.subject == subject]
        got = fit_and_predict([n for n in train_pool if n.subject != subject], test)
        for row in ROWS:
            preds[row].update(zip([n.record for n in test], got[row], strict=True))
    return preds


def metrics(nights: Sequence[NightFeatures], pred: dict[str, np.ndarray]) -> dict[str, Any]:
    truth = np.concatenate([n.labels for n in nights])
    guess = np.concatenate([pred[n.record] for n in nights])
    four = evaluate(truth, guess, N_CLASSES)
    three = evaluate(collapse_labels(truth, 4, 3), collapse_labels(guess, 4, 3), 3)
    per_subject = []
    for subject in sorted({n.subject for n in nights}):
        mine = [n for n in nights if n.subject == subject]
        t = np.concatenate([n.labels for n in mine])
        g = np.concatenate([pred[n.record] for n in mine])
        per_subject.append(float(evaluate(t, g, N_CLASSES)["kappa"]))  # type: ignore[arg-type]
    recall = four["per_class"]["sensitivity"]  # type: ignore[index]
    return {
        "kappa": four["kappa"], "accuracy": four["accuracy"], "macro_f1": four["macro_f1"],
        "kappa_3class": three["kappa"],
        "recall": dict(zip(class_labels(N_CLASSES), recall, strict=True)),
        "subject_kappa": {"median": float(np.median(per_subject)),
                          "q25": float(np.percentile(per_subject, 25)),
                          "q75": float(np.percentile(per_subject, 75))},
        "n_epochs": four["n_epochs"],
        **summary_bias(agreement([Night(n.record, n.subject, pred[n.record], n.labels)
                                  for n in nights], N_CLASSES, n_boot=1000)),
    }  # fmt: skip


def run(sources: dict[str, Path]) -> dict[str, Any]:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:  # the images are memory maps in there
        nights = {name: cohort(name, src, Path(tmp)) for name, src in sources.items()}
        tables = protocols(nights)
    return {
        "synthetic": False,
        "seed": SEED,
        "cohorts": {
            k: {"nights": len(v), "subjects": len({n.subject for n in v})}
            for k, v in nights.items()
        },  # fmt: skip
        "tables": tables,
        "seconds": round(time.perf_counter() - started, 1),
    }


def protocols(nights: dict[str, list[NightFeatures]]) -> dict[str, dict[str, Any]]:
    """Every protocol's rows (see the module docstring)."""
    both = [n for c in nights.values() for n in c]
    tables: dict[str, dict[str, Any]] = {}

    def add(protocol: str, test: Sequence[NightFeatures], preds: dict[str, dict[str, np.ndarray]]
            ) -> None:  # fmt: skip
        tables[protocol] = {row: metrics(test, preds[row]) for row in ROWS}

    for name, c in nights.items():
        add(f"within {name} (LOSO)", c, loso(c))
    pooled = loso(both)
    for name, c in nights.items():
        add(f"pooled LOSO, tested on {name}", c, pooled)
    add("pooled LOSO, both", both, pooled)
    (a, ca), (b, cb) = nights.items()
    add(f"across: {a} -> {b}", cb, loso(ca, cb))
    add(f"across: {b} -> {a}", ca, loso(cb, ca))
    return tables


def bias_cell(b: dict[str, Any]) -> str:
    """A fraction bias as ``mean [CI]`` in points."""
    return f"{b['mean']:+.1f} [{b['ci'][0]:+.1f}, {b['ci'][1]:+.1f}]"


def loa_cell(b: dict[str, Any]) -> str:
    """A summary bias as ``mean [limits of agreement]``, whole units."""
    return f"{b['mean']:+.0f} [{b['loa'][0]:+.0f}, {b['loa'][1]:+.0f}]"


def markdown(result: dict[str, Any]) -> str:
    cohorts = ", ".join(f"{k} {v['subjects']} subjects / {v['nights']} nights"
                        for k, v in result["cohorts"].items())  # fmt: skip
    lines = [
        "# Heart staging on two real cohorts: alone, pooled and across (REAL data)",
        "",
        f"{cohorts}; W / Light / Deep / REM (κ 3-class: W / NREM / REM); one seed; "
        "held-out epochs pooled. Reproduce: `python studies/heart_pooled.py` "
        f"({result['seconds'] / 60:.0f} min on 2 cores).",
    ]
    if any("fraction_bias" in m for rows in result["tables"].values() for m in rows.values()):
        lines[-1] += (" Night summary against the expert (staged − expert, mean over nights): "
                      "each stage's share in percentage points [subject-bootstrap 95 % CI], "
                      "TST in minutes [95 % limits of agreement].")  # fmt: skip
    for protocol, rows in result["tables"].items():
        lines += ["", f"## {protocol}", ""]
        summary = all("fraction_bias" in m for m in rows.values())  # not in runs before #31
        lines += markdown_table(
            ["model", "κ", "κ 3-class", "accuracy", "MF1", "recall W / Light / Deep / REM %",
             "subject κ median [IQR]",
             *([f"{c} bias, points" for c in class_labels(N_CLASSES)] + ["TST bias, min"]
               if summary else [])],
            [[row, f"{m['kappa']:.3f}", f"{m['kappa_3class']:.3f}", f"{m['accuracy']:.3f}",
              f"{m['macro_f1']:.3f}", " / ".join(f"{100 * v:.0f}" for v in m["recall"].values()),
              f"{m['subject_kappa']['median']:.2f} [{m['subject_kappa']['q25']:.2f}, "
              f"{m['subject_kappa']['q75']:.2f}]",
              *([bias_cell(b) for b in m["fraction_bias"].values()]
                + [loa_cell(m["summary_bias"]["TST"])] if summary else [])]
             for row, m in rows.items()],
        )  # fmt: skip
    return "\n".join(lines) + "\n"


def cohort_parser(doc: str) -> argparse.ArgumentParser:
    """The heart studies' command line: where the two cohorts are, where results go."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--walch", type=Path, default=Path("../shared/data/walch"))
    parser.add_argument("--slpdb", type=Path, default=Path("../shared/data/slpdb"))
    parser.add_argument("--out", type=Path, default=Path("studies/results"))
    return parser


def main() -> None:
    args = cohort_parser(__doc__).parse_args()
    result = run({"walch": args.walch, "slpdb": args.slpdb})
    text = markdown(result)
    write_report(args.out, "heart_pooled", result, text)
    print(text)


if __name__ == "__main__":
    main()
