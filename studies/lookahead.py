"""What look-ahead buys a causal heart model, on real data (issue 21, item 4).

Run: ``python studies/lookahead.py [--walch ../shared/data/walch] [--slpdb
../shared/data/slpdb] [--out studies/results]`` (writes ``lookahead.json`` / ``.md``).

Data (real): Walch et al. 2019, Apple Watch heart rate of 21 subjects (one night each), and
slpdb's beat times (14 records, 12 subjects), each imported with ``edgesleep data import``
and read through the beat-interval input (one image for beats and heart rate).

Protocol: 5 folds by subject per cohort (a fold's subjects are never trained on); in each,
2 of the training subjects (drawn per fold) validate for early stopping. The compact
student (dilations 1, 2, 4, 8; class-weighted; lr 1e-3; 20 passes at stride 5, validation
once per pass, patience 4) is trained with look-ahead K = 0, 2 and 4 epochs: position t of
the causal model stages epoch t - K, so an epoch's stage is out K epochs (K x 30 s) after
it ends. W / Light / Deep / REM; metrics on the held-out epochs pooled over the folds,
mean and sd over 2 seeds. The fused readout of the K = 0 model (L - 1 = 19 windows) is
shown for the record: what the old default did to a causal model.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from heart_pooled import (  # the sibling study reads the cohorts the same way
    N_CLASSES,
    cohort,
    cohort_parser,
)

from edgesleep.io.writers import markdown_table, write_report
from edgesleep.metrics import evaluate
from edgesleep.stages import class_labels
from edgesleep.train.cv import folds_of
from edgesleep.train.data import NightFeatures
from edgesleep.train.evaluate import FusedAnyway, predict_nights
from edgesleep.train.training import per_pass_options, split_subjects
from edgesleep.train.transfer import train_features

LOOKAHEADS = (0, 2, 4)
SEEDS = (0, 1)
N_FOLDS = 5
MODEL = {"dilations": (1, 2, 4, 8)}


def run_cohort(nights: list[NightFeatures], seed: int) -> dict[str, list[np.ndarray]]:
    """Held-out predictions per readout ("K=k" and "fused K=0 (19 windows)"), pooled."""
    subjects = sorted({n.subject for n in nights})
    preds: dict[str, list[np.ndarray]] = {}
    for test in folds_of(subjects, N_FOLDS, seed):
        rest = [s for s in subjects if s not in test]
        train_ids, val_ids = split_subjects(rest, 2, seed)
        train = [n for n in nights if n.subject in train_ids]
        val = [n for n in nights if n.subject in val_ids]
        held = [n for n in nights if n.subject in test]
        n_epochs = sum(n.n_epochs for n in train)
        for k in LOOKAHEADS:
            ckpt = train_features(
                train, val, "beats", "student", N_CLASSES,
                opts=per_pass_options(n_epochs, seed, 1e-3, passes=20, patience=4),
                model_fields={**MODEL, "delay": k}, input_kind="beats",
            )  # fmt: skip
            scorer = ckpt.scorer()
            preds.setdefault(f"K={k}", []).extend(predict_nights(scorer, held, [k])[k])
            if k == 0:
                fused = predict_nights(FusedAnyway(scorer), held, [19])[19]
                preds.setdefault("fused K=0 (19 windows)", []).extend(fused)
        preds.setdefault("truth", []).extend(n.labels for n in held)
    return preds


def summarise(runs: list[dict[str, list[np.ndarray]]]) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for readout in [r for r in runs[0] if r != "truth"]:
        per_seed = []
        for run in runs:
            truth, pred = np.concatenate(run["truth"]), np.concatenate(run[readout])
            per_seed.append(evaluate(truth, pred, N_CLASSES))
        rows[readout] = {
            metric: {
                "mean": float(np.mean([m[metric] for m in per_seed])),
                "sd": float(np.std([m[metric] for m in per_seed], ddof=1)),  # type: ignore[arg-type]
            }
            for metric in ("accuracy", "kappa", "macro_f1")
        }
        recall = np.array([m["per_class"]["sensitivity"] for m in per_seed])  # type: ignore[index]
        rows[readout]["recall"] = dict(zip(class_labels(N_CLASSES), recall.mean(0).tolist(),
                                           strict=True))  # fmt: skip
    return rows


def run(sources: dict[str, Path]) -> dict[str, Any]:
    started = time.perf_counter()
    result: dict[str, Any] = {"synthetic": False, "seeds": list(SEEDS), "folds": N_FOLDS,
                              "lookaheads": list(LOOKAHEADS), "cohorts": {}}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for name, src in sources.items():
            nights = cohort(name, src, Path(tmp))
            runs = [run_cohort(nights, seed) for seed in SEEDS]
            result["cohorts"][name] = {
                "nights": len(nights),
                "subjects": len({n.subject for n in nights}),
                "scored_epochs": int(sum((n.labels >= 0).sum() for n in nights)),
                "rows": summarise(runs),
            }
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# What look-ahead buys a causal heart model (REAL data)",
        "",
        f"The compact student (causal) on beat-interval images, W / Light / Deep / REM, "
        f"{result['folds']} folds by subject, mean ± sd over seeds {result['seeds']}; an "
        "epoch's stage is out K × 30 s after it ends. Reproduce: `python studies/lookahead.py` "
        f"({result['seconds'] / 60:.0f} min on 2 cores).",
    ]
    for name, c in result["cohorts"].items():
        lines += ["", f"## {name}: {c['subjects']} subjects, {c['nights']} nights, "
                  f"{c['scored_epochs']} scored epochs", ""]  # fmt: skip

        def cell(stats: dict[str, float]) -> str:
            return f"{stats['mean']:.3f} ± {stats['sd']:.3f}"

        lines += markdown_table(
            ["readout", "accuracy", "κ", "macro F1", "recall W / Light / Deep / REM"],
            [[readout, cell(r["accuracy"]), cell(r["kappa"]), cell(r["macro_f1"]),
              " / ".join(f"{100 * v:.0f}" for v in r["recall"].values())]
             for readout, r in c["rows"].items()],
        )  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    args = cohort_parser(__doc__).parse_args()
    result = run({"walch": args.walch, "slpdb": args.slpdb})
    text = markdown(result)
    write_report(args.out, "lookahead", result, text)
    print(text)


if __name__ == "__main__":
    main()
