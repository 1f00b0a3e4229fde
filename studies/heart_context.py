"""Context that fits a sleep cycle (issue 31, item 3): the shipped heart student (10 min
of the night, no clock) against a variant: one that sees 2 h, or one that also takes the
time since the recording started (its clock).

Run: ``python studies/heart_context.py [--variant "2 h"|clock] [--folds 5|all] [--classes
4 [3]] [--jobs 2] [--walch ../shared/data/walch] [--slpdb ../shared/data/slpdb] [--out
studies/results]`` (writes ``heart_context_5folds.json`` / ``.md`` for the screen of "2 h",
``heart_context.json`` / ``.md`` for its confirmation on every fold; ``heart_clock_5folds``
and ``heart_clock`` for the clock). Needs ``studies/heart_selection.py``'s kept
log-probabilities (``--probs``): the shipped rows are that study's, re-read.

Data (real): the 33 subjects of ``studies/heart_selection.py`` (Walch Apple Watch heart
rate, slpdb ECG beats).

REM and Deep follow a ~90-min cycle and the time of night; the shipped student's causal
convolutions (dilations 1, 2, 4, 8, kernel 3: 31 epochs) see only its 20-epoch windows, 10
min. The variant (``CONTEXTS["2 h"]`` of :mod:`edgesleep.workflows.heart_models`) adds
dilations 16, 32 and 64 (receptive field 255 epochs, 127 min) and trains on windows of
256 epochs every 32, 8 per step (2,048 epochs per step against 640; about twice the
encoder work per pass, in fewer steps). The clock variant (``clock=True`` in the student's
config, :class:`edgesleep.train.student.Clock`) adds to each epoch vector a learned
function of the hours from the recording's start to the epoch, and trains with each
window's clock started 0-60 min late at random
(:data:`edgesleep.train.data.CLOCK_OFFSET_EPOCHS`): training nights begin where the scoring
begins, a stream whenever the sensor goes on. Everything else is the shipped recipe
(:data:`~edgesleep.workflows.heart_models.RECIPES`: its loss and its readout, fitted on the
inner validation subjects), on the same outer folds, inner splits and seed as the
selection study, so the two are paired: the same held-out subjects, scored both ways.

Protocol: the screen runs 5 outer folds (3 Walch and 2 slpdb subjects, drawn with a fixed
seed); the confirmation all 33. A variant is kept only if the paired subject-bootstrap 95 %
CI of Δκ (pooled κ of the variant − the shipped context's, subjects resampled with their
epochs) lies above 0 on the full run.
"""

from __future__ import annotations

import multiprocessing
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from heart_pooled import bias_cell, cohort_parser, loa_cell
from heart_selection import GROUPS, load_probs

from edgesleep.agreement import paired_kappa
from edgesleep.io.writers import markdown_table, write_report
from edgesleep.stages import collapse_labels
from edgesleep.train.data import NightFeatures, class_weights
from edgesleep.workflows.heart_models import (
    CONTEXT,
    CONTEXTS,
    RECIPES,
    heart_nights,
    inner_split,
    log_probs,
    metrics,
    readout_offsets,
    train_student,
    with_classes,
)

# each variant: the arguments of train_student that make it; its report's name
VARIANTS: dict[str, dict[str, Any]] = {"2 h": {"context": "2 h"}, "clock": {"clock": True}}
REPORTS = {"2 h": "heart_context", "clock": "heart_clock"}
SCREEN = {"walch": 3, "slpdb": 2}  # held-out subjects per cohort in the screen
N_BOOT = 2000


def screen_subjects(subjects: Sequence[str]) -> list[str]:
    """The screen's held-out subjects: ``SCREEN`` per cohort, drawn with seed 31."""
    rng = np.random.default_rng(31)
    chosen: list[str] = []
    for cohort, n in SCREEN.items():
        pool = [s for s in subjects if s.startswith(f"{cohort}:")]
        chosen += rng.choice(pool, n, replace=False).tolist()
    return sorted(chosen)


def variant_fold(
    args: tuple[list[NightFeatures], str, int, tuple[int, ...], str],
) -> dict[str, Any]:
    """One held-out subject: the variant trained per class set with the shipped recipe,
    its readout fitted on the inner validation subjects; the test predictions."""
    import torch

    torch.set_num_threads(1)
    nights, held_out, fold, class_sets, variant = args
    test = [n for n in nights if n.subject == held_out]
    fit, val = inner_split([n for n in nights if n.subject != held_out], fold)
    out: dict[str, Any] = {"subject": held_out, "records": [n.record for n in test],
                           "preds": {}, "seconds": {}}  # fmt: skip
    for n_classes in class_sets:
        started = time.perf_counter()
        recipe = RECIPES[n_classes]
        fit_c, val_c = with_classes(fit, n_classes), with_classes(val, n_classes)
        ckpt = train_student(fit_c, val_c, n_classes, 0, weighted=recipe.weighted,
                             **VARIANTS[variant])  # fmt: skip
        offsets = readout_offsets(recipe.readout, val_c, log_probs(ckpt, val_c),
                                  class_weights(fit_c, n_classes), n_classes)  # fmt: skip
        out["preds"][n_classes] = [(lp + offsets).argmax(1) for lp in log_probs(ckpt, test)]
        out["seconds"][n_classes] = round(time.perf_counter() - started, 1)
    return out


def baseline(folds: list[dict[str, Any]], by_record: dict[str, NightFeatures], n_classes: int,
             ) -> dict[str, np.ndarray]:  # fmt: skip
    """The shipped context's test predictions, re-read from the selection study's kept
    log-probabilities with the shipped recipe (what that study's row of it holds)."""
    recipe = RECIPES[n_classes]
    key = f"{n_classes}|{'weighted' if recipe.weighted else 'unweighted'}"
    pred = {}
    for f in folds:
        val = with_classes([by_record[r] for r in f["val_records"]], n_classes)
        logp = f["logp"][key]
        offsets = readout_offsets(recipe.readout, val, logp["val"], f["weights"][key], n_classes)
        pred.update({r: (lp + offsets).argmax(1)
                     for r, lp in zip(f["records"], logp["test"], strict=True)})  # fmt: skip
    return pred


def run(sources: dict[str, Path], probs: Path, every: bool, class_sets: tuple[int, ...],
        jobs: int, variant: str = "2 h") -> dict[str, Any]:  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        nights, _ = heart_nights(sources, Path(tmp))
    subjects = sorted({n.subject for n in nights})
    held_out = subjects if every else screen_subjects(subjects)
    by_record = {n.record: n for n in nights}
    folds = [f for f in load_probs(probs) if f["subject"] in held_out]
    if sorted(f["subject"] for f in folds) != held_out:
        raise SystemExit(f"{probs} lacks some of the folds: run studies/heart_selection.py")
    started = time.perf_counter()
    work = [(nights, s, subjects.index(s), class_sets, variant) for s in held_out]
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        trained = pool.map(variant_fold, work, chunksize=1)
    seconds = time.perf_counter() - started
    tested = [n for n in nights if n.subject in held_out]
    tables: dict[str, Any] = {}
    for n_classes in class_sets:
        variant_pred = {
            r: p for f in trained for r, p in zip(f["records"], f["preds"][n_classes], strict=True)
        }
        rows = {f"shipped: {CONTEXT}": baseline(folds, by_record, n_classes),
                f"variant: {variant}": variant_pred}  # fmt: skip
        for group in GROUPS:
            members = [n for n in tested if group == "both" or n.subject.startswith(f"{group}:")]
            table = {name: metrics(members, pred, n_classes) for name, pred in rows.items()}
            per_subject = sorted({n.subject for n in members})
            truth, a, b = [], [], []
            for s in per_subject:
                mine = [n for n in members if n.subject == s]
                truth.append(np.concatenate([collapse_labels(n.labels, 4, n_classes)
                                             for n in mine]))  # fmt: skip
                a.append(np.concatenate([rows[f"shipped: {CONTEXT}"][n.record] for n in mine]))
                b.append(np.concatenate([rows[f"variant: {variant}"][n.record] for n in mine]))
            tables[f"{n_classes}-class, tested on {group}"] = {
                "rows": table,
                "paired": paired_kappa(truth, a, b, n_classes, N_BOOT),
            }
    kept = {str(c): tables[f"{c}-class, tested on both"]["paired"]["ci"][0] > 0
            for c in class_sets}  # fmt: skip
    return {
        "synthetic": False, "variant": variant, "folds": len(held_out), "held_out": held_out,
        "contexts": {name: {"dilations": list(c.dilations), "seq_len": c.seq_len,
                            "stride": c.stride, "batch_size": c.batch_size,
                            "epochs_seen": c.epochs_seen}
                     for name, c in CONTEXTS.items()},
        "recipes": {str(c): RECIPES[c].name for c in class_sets},
        "tables": tables, "ci_above_zero": kept,
        "train_seconds": {str(c): round(sum(f["seconds"][c] for f in trained), 1)
                          for c in class_sets},
        "seconds": round(seconds, 1),
    }  # fmt: skip


def markdown(result: dict[str, Any]) -> str:
    every = result["folds"] > 5
    variant = result.get("variant", "2 h")  # reports before the clock: the 2-h context
    title = ("Context that fits a sleep cycle" if variant == "2 h"
             else "Time since the recording started as an input")  # fmt: skip
    flag = "" if variant == "2 h" else f' --variant "{variant}"'

    contexts = "; ".join(f"{k}: dilations {v['dilations']}, windows of {v['seq_len']} epochs "
                         f"every {v['stride']}, {v['batch_size']} per step"
                         for k, v in result["contexts"].items())  # fmt: skip
    lines = [
        f"# {title}: {'confirmation' if every else 'screen'} (REAL data)",
        "",
        f"{result['folds']} outer folds of `studies/heart_selection.py` (held out: "
        f"{', '.join(result['held_out']) if not every else 'every subject'}); the shipped "
        f"recipe ({', '.join(f'{c} classes: {r}' for c, r in result['recipes'].items())}) "
        f"with each context ({contexts}){'' if variant == '2 h' else ', the variant with a clock'}"
        f". Reproduce: `python studies/heart_context.py{flag} "
        f"--folds {'all' if every else 5}` ({result['seconds'] / 60:.0f} min on 2 cores; the "
        "shipped rows re-read from the selection study's kept log-probabilities). Δκ: "
        "variant − shipped, pooled, with a paired subject-bootstrap 95 % CI.",
        "",
    ]
    for c, above in result["ci_above_zero"].items():
        paired = result["tables"][f"{c}-class, tested on both"]["paired"]
        lines.append(f"- {c} classes: Δκ {paired['difference']:+.3f} [{paired['ci'][0]:+.3f}, "
                     f"{paired['ci'][1]:+.3f}]: "
                     + ("CI above 0" if above else "CI not above 0: not kept"))  # fmt: skip
    for title, table in result["tables"].items():
        first = next(iter(table["rows"].values()))
        paired = table["paired"]
        lines += ["", f"## {title}", "",
                  f"Δκ {paired['difference']:+.3f} [{paired['ci'][0]:+.3f}, "
                  f"{paired['ci'][1]:+.3f}] over {paired['subjects']} subjects.", ""]  # fmt: skip
        lines += markdown_table(
            ["context", "κ", "MF1", "subject κ median [IQR]",
             *(f"{c} bias, points" for c in first["fraction_bias"]), "TST bias, min"],
            [[row, f"{m['kappa']:.3f}", f"{m['macro_f1']:.3f}",
              f"{m['subject_kappa']['median']:.2f} [{m['subject_kappa']['q25']:.2f}, "
              f"{m['subject_kappa']['q75']:.2f}]",
              *(bias_cell(b) for b in m["fraction_bias"].values()),
              loa_cell(m["summary_bias"]["TST"])]
             for row, m in table["rows"].items()],
        )  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = cohort_parser(__doc__)
    parser.add_argument("--variant", choices=tuple(VARIANTS), default="2 h")
    parser.add_argument("--folds", choices=("5", "all"), default="5")
    parser.add_argument("--classes", type=int, nargs="+", default=[4], choices=(3, 4))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--probs", type=Path, default=Path("runs/heart_selection/probs.npz"))
    args = parser.parse_args()
    every = args.folds == "all"
    result = run({"walch": args.walch, "slpdb": args.slpdb}, args.probs, every,
                 tuple(args.classes), args.jobs, args.variant)  # fmt: skip
    text = markdown(result)
    name = REPORTS[args.variant]
    write_report(args.out, name if every else f"{name}_5folds", result, text)
    print(text)


if __name__ == "__main__":
    main()
