"""``heart_open``: the heart student trained on open data only — the PhysioNet/CinC 2018
training set and HMC, beat times from each PSG's ECG through edgesleep's own R-peak detector
— chosen by subject-wise k-fold, evaluated across cohorts on slpdb and Walch (nights it
never saw), beside the shipped heart model, and written as a bundle in the shipped models'
format (the int8 step graph, with its card) that ``edgesleep models add`` installs.

Run (the recipe, ``train/recipes/heart_open.toml``, names the data and the protocol)::

    edgesleep data fetch cinc2018 --out data/cinc2018 --require ECG
    edgesleep data fetch hmc --out data/hmc --require ECG
    edgesleep data fetch slpdb --out data/slpdb
    edgesleep data fetch walch --out data/walch
    edgesleep cv --recipe heart_open          (or python -m edgesleep.workflows.heart_open)
    edgesleep cv --recipe heart_open --quick  (a smoke run: says nothing)
    edgesleep models add runs/heart_open/heart-open-4class

Protocol, per class set (W / Light / Deep / REM, W / NREM / REM):

1. *Selection*, k-fold over the training subjects (``folds``; leave-one-subject-out does
   not scale to 1,100 nights): for each candidate (:class:`edgesleep.workflows.heart_models.
   Recipe`: the loss, weighted or not, and the readout) and each fold, the shipped
   procedure (:func:`~edgesleep.workflows.heart_models.select_and_train`: inner validation
   subjects per cohort stop the training and fit the readout) on the other folds, scored
   on the fold's subjects. Kept: the highest pooled κ among the candidates whose pooled
   stage-fraction bias is within ``max_fraction_bias`` points for every stage (the rule the
   shipped models were chosen by), else the highest κ.
2. *The model*: the kept candidate trained the same way on every training subject.
3. *Cross-cohort test*: slpdb (beat times) and Walch (watch heart rate), scored by the model
   and read as a wearable validation study reports them (:mod:`edgesleep.agreement`); the
   shipped model's held-out figures from its card beside them (it learned from these two
   cohorts, so its own scores on them would be in-sample and are not shown).

CinC and HMC are clinical cohorts (patients referred for a sleep study, many with apnea),
not wearable users: the card says so, with each cohort's citation and licence.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgesleep.config import check_keys
from edgesleep.dsp.inputs import HEART
from edgesleep.errors import UsageError
from edgesleep.installed import write_sums
from edgesleep.io.dataset import merge_datasets, read_dataset
from edgesleep.io.imports import IMPORTERS
from edgesleep.io.writers import markdown_table
from edgesleep.shipped import shipped_model
from edgesleep.stages import class_labels
from edgesleep.train.cv import folds_of
from edgesleep.train.data import NightFeatures, load_features
from edgesleep.train.training import read_toml
from edgesleep.workflows.heart_models import (
    CONTEXT,
    CONTEXTS,
    LR,
    PATIENCE,
    VAL_PER_COHORT,
    Recipe,
    card_metric,
    log_probs,
    metrics,
    select_and_train,
)

NAMES = {4: "heart-open-4class", 3: "heart-open-3class"}
HEART_COHORTS = ("slpdb", "walch")  # the test cohorts: heart series, imported from their layouts
CANDIDATES = {f"{'weighted' if w else 'unweighted'} · {r}": Recipe(w, r)
              for w in (True, False) for r in ("fraction offsets", "argmax")}  # fmt: skip
OPEN_COHORTS = {
    "cinc2018": "PhysioNet/CinC 2018 training set: MGH patients referred for a sleep study "
    "(many with apnea), PSG ECG at 200 Hz, beats by edgesleep's detector, AASM stages",
    "hmc": "HMC sleep staging database 1.1: patients referred to the Haaglanden Medisch "
    "Centrum sleep centre, PSG ECG at 256 Hz, beats by edgesleep's detector, AASM stages",
}


@dataclass(frozen=True)
class OpenRecipe:
    """``train/recipes/heart_open.toml``: the datasets (name -> folder: ``train`` in the
    dataset layout, ``test`` in their original layouts, imported here), the ECG channel,
    the selection's folds, candidates and rule, the class sets and the training passes."""

    train: dict[str, Path]
    test: dict[str, Path]
    channel: str = "ECG"
    folds: int = 5
    candidates: tuple[str, ...] = tuple(CANDIDATES)
    max_fraction_bias: float = 3.0
    classes: tuple[int, ...] = (4, 3)
    passes: float = 20.0
    seed: int = 0


def load_recipe(path: Path) -> OpenRecipe:
    """Read a heart_open recipe (unknown keys and candidates are refused by name)."""
    raw = read_toml(path, "heart_open recipe")
    check_keys(raw, {"name", "data", "selection", "train"}, str(path))
    data, selection, train = raw.get("data", {}), raw.get("selection", {}), raw.get("train", {})
    check_keys(data, {"train", "test", "channel"}, f"{path} [data]")
    check_keys(selection, {"folds", "candidates", "max_fraction_bias", "classes"},
               f"{path} [selection]")  # fmt: skip
    check_keys(train, {"passes", "seed"}, f"{path} [train]")
    if len(data.get("train", {})) < 2:
        raise UsageError(f"{path}: [data] train needs at least two cohorts (pooled, with "
                         "validation subjects drawn per cohort)")  # fmt: skip
    if not data.get("test") or not set(data["test"]) <= set(HEART_COHORTS):
        raise UsageError(f"{path}: [data] test names heart cohorts among {HEART_COHORTS} "
                         "(folders in their original layouts)")  # fmt: skip
    unknown = sorted(set(selection.get("candidates", [])) - set(CANDIDATES))
    if unknown:
        raise UsageError(f"{path}: unknown candidates {unknown}; there are {list(CANDIDATES)}")
    return OpenRecipe(
        train={k: Path(v) for k, v in data["train"].items()},
        test={k: Path(v) for k, v in data["test"].items()},
        channel=data.get("channel", "ECG"),
        folds=int(selection.get("folds", 5)),
        candidates=tuple(selection.get("candidates", CANDIDATES)),
        max_fraction_bias=float(selection.get("max_fraction_bias", 3.0)),
        classes=tuple(int(c) for c in selection.get("classes", (4, 3))),
        passes=float(train.get("passes", 20.0)),
        seed=int(train.get("seed", 0)),
    )


def quick(recipe: OpenRecipe) -> OpenRecipe:
    """A smoke run: 2 folds, one candidate, 4 classes, a fraction of a pass (seconds)."""
    return replace(recipe, folds=2, candidates=recipe.candidates[:1], classes=(4,), passes=0.3)


def training_nights(recipe: OpenRecipe) -> list[NightFeatures]:
    """The training cohorts' nights as 4-class beat images of the ECG (the detector runs on
    each night's ECG at 100 Hz), in bed; subjects are ``cohort:id``."""
    nights = []
    for cohort, root in recipe.train.items():
        found = load_features(read_dataset(root), recipe.channel, 4, "in-bed", kind="beats")
        nights += [NightFeatures(n.record, f"{cohort}:{n.subject}", n.images, n.labels)
                   for n in found]  # fmt: skip
    return nights


def heldout_nights(recipe: OpenRecipe, tmp: Path) -> dict[str, list[NightFeatures]]:
    """The test cohorts (original layouts, imported under ``tmp``) as 4-class images of
    their heart series (slpdb: beat times; Walch: heart rate)."""
    out = {}
    for cohort, src in recipe.test.items():
        root = tmp / cohort
        IMPORTERS[cohort](src, root)
        out[cohort] = list(load_features(read_dataset(root), HEART, 4, "none", kind="beats"))
    return out


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float (a figure of one night or one subject) made
    None: the card is JSON in the graphs' metadata."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def scored(logp: Sequence[np.ndarray], nights: Sequence[NightFeatures], n_classes: int,
           n_boot: int = 200) -> dict[str, Any]:  # fmt: skip
    """The figures of argmax ``logp`` against the 4-class ``nights``' labels collapsed onto
    ``n_classes``, as the shipped models' cards hold them (:func:`~edgesleep.workflows.
    heart_models.metrics`, rounded; None where a figure cannot be computed), with the
    number of nights."""
    pred = {n.record: lp.argmax(1).astype(np.int8) for n, lp in zip(nights, logp, strict=True)}
    row = card_metric(metrics(nights, pred, n_classes, n_boot))
    return _finite({**row, "nights": len(nights)})


def select(recipe: OpenRecipe, nights: Sequence[NightFeatures], n_classes: int
           ) -> tuple[str, dict[str, dict[str, Any]]]:  # fmt: skip
    """Step 1 (module docstring): each candidate's pooled figures over the k folds, and the
    one kept."""
    subjects = sorted({n.subject for n in nights})
    folds = folds_of(subjects, recipe.folds, recipe.seed)
    table = {}
    for name in recipe.candidates:
        logp, held = [], []
        for k, fold in enumerate(folds):
            train = [n for n in nights if n.subject not in fold]
            test = [n for n in nights if n.subject in fold]
            ckpt, _ = select_and_train(train, n_classes, CANDIDATES[name], seed=recipe.seed,
                                       split_seed=k, passes=recipe.passes)  # fmt: skip
            logp += log_probs(ckpt, test)
            held += test
        table[name] = scored(logp, held, n_classes)
    within = [n for n, row in table.items()
              if all(abs(b["mean"] or 0.0) <= recipe.max_fraction_bias
                     for b in row["fraction_bias"].values())]  # fmt: skip
    kept = max(within or list(table), key=lambda n: table[n]["kappa"])
    return kept, table


def card(recipe: OpenRecipe, n_classes: int, nights: Sequence[NightFeatures], kept: str,
         offsets: np.ndarray, selection: dict[str, Any], tests: dict[str, Any],
         licences: dict[str, str]) -> dict[str, Any]:  # fmt: skip
    """The model card carried in the bundle's metadata (``edgesleep models`` shows it)."""
    data = {}
    for cohort in recipe.train:
        mine = [n for n in nights if n.subject.startswith(cohort + ":")]
        info = read_dataset(recipe.train[cohort]).info
        data[cohort] = {"what": OPEN_COHORTS.get(cohort, cohort),
                        "subjects": len({n.subject for n in mine}), "nights": len(mine),
                        "scored_epochs": int(sum((n.labels >= 0).sum() for n in mine)),
                        "citation": str(info.get("citation", "")),
                        "licence": licences.get(cohort, "")}  # fmt: skip
    both = tests.get("both", {})
    return {
        "name": NAMES[n_classes],
        "task": f"{' / '.join(class_labels(n_classes))} per 30-s epoch from heart data: ECG "
        "(R peaks detected on the device), beat times, or heart-rate samples",
        "data": data,
        "training": {
            "model": "student",
            "context": CONTEXT,
            "dilations": list(CONTEXTS[CONTEXT].dilations),
            "delay": 0,
            "candidate": kept,
            "lr": LR,
            "passes": recipe.passes,
            "patience": PATIENCE,
            "validation": f"{VAL_PER_COHORT} subjects per cohort (early stopping, readout)",
            "offsets": [round(float(v), 3) for v in offsets],
        },  # fmt: skip
        "selection": {
            "protocol": f"subject-wise {recipe.folds}-fold over the training "
            "cohorts (workflows/heart_open.py)",
            "kept": kept,
            "candidates": selection,
        },  # fmt: skip
        "evaluation": {
            "protocol": "across cohorts: trained on CinC 2018 + HMC, tested on slpdb and "
            "Walch, which it never saw",
            **tests,
        },
        "intended_use": "research and wearable prototyping: sleep architecture over a night "
        "from a chest strap, an ECG patch or a watch, where no EEG is worn; not a diagnosis",
        "limits": "trained on clinical patients (CinC 2018: MGH sleep-lab referrals, HMC: "
        "sleep-centre referrals, many with sleep apnea) recorded with a full PSG, not on "
        "wearable users; its ECG beats come from a lab ECG through edgesleep's detector; "
        f"across cohorts (slpdb, Walch) pooled κ {both.get('kappa', float('nan')):.2f}; "
        "heart rate separates Deep and REM from Light poorly",
        "reproduce": "python -m edgesleep.workflows.heart_open (train/recipes/heart_open.toml)",
    }


def run(recipe: OpenRecipe, out: Path) -> dict[str, Any]:
    """The whole protocol (module docstring); writes ``out/<name>/`` (a bundle: ``step.onnx``
    and ``SHA256SUMS``) per class set and ``out/heart_open.json`` / ``.md``; returns the
    report."""
    from edgesleep.export.pipeline import ExportOptions, export_model

    out.mkdir(parents=True, exist_ok=True)
    nights = training_nights(recipe)
    licences = {c: str(read_dataset(p).info.get("licence", "")) for c, p in recipe.train.items()}
    report: dict[str, Any] = {"recipe": {"train": {k: str(v) for k, v in recipe.train.items()},
                                         "test": {k: str(v) for k, v in recipe.test.items()},
                                         "folds": recipe.folds, "passes": recipe.passes},
                              "models": {}}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        tests = heldout_nights(recipe, Path(tmp))
        # the training cohorts as one dataset whose "heart" channel is their ECG (int8
        # calibration and parity read the model's own channel)
        merged = merge_datasets(recipe.train, Path(tmp) / "merged",
                                {"channel_aliases": {HEART: recipe.channel}})  # fmt: skip
        for n_classes in recipe.classes:
            kept, table = select(recipe, nights, n_classes)
            ckpt, offsets = select_and_train(nights, n_classes, CANDIDATES[kept],
                                             seed=recipe.seed, passes=recipe.passes)  # fmt: skip
            found = {}
            for cohort, test in tests.items():
                found[cohort] = scored(log_probs(ckpt, test), test, n_classes)
            pooled = [n for group in tests.values() for n in group]
            found["both"] = scored(log_probs(ckpt, pooled), pooled, n_classes)
            name = NAMES[n_classes]
            the_card = card(recipe, n_classes, nights, kept, offsets, table, found, licences)
            path = Path(tmp) / f"{name}.pt"
            ckpt.save(path)
            options = ExportOptions(quantize=True, calibration=merged.root, card=the_card,
                                    parity_nights=4)  # fmt: skip
            exported = export_model(path, Path(tmp) / name, options)
            bundle = out / name
            shutil.rmtree(bundle, ignore_errors=True)
            bundle.mkdir(parents=True)
            shutil.copyfile(Path(tmp) / name / "int8" / "step.onnx", bundle / "step.onnx")
            write_sums(bundle)
            shipped = (shipped_model(f"heart-{n_classes}class").info.card or {}).get(
                "evaluation", {})  # fmt: skip
            report["models"][name] = {"kept": kept, "selection": table, "cross_cohort": found,
                                      "shipped_held_out": {g: shipped.get(g, {}).get("kappa")
                                                           for g in ("both", *tests)},
                                      "parity": exported["variants"]["int8"].get("parity"),
                                      "bytes": (bundle / "step.onnx").stat().st_size}  # fmt: skip
    (out / "heart_open.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    (out / "heart_open.md").write_text(markdown(report))
    return report


def markdown(report: dict[str, Any]) -> str:
    """The report's tables: each candidate's k-fold figures, the kept model across cohorts
    beside the shipped model's held-out κ."""
    lines = ["# heart_open: the heart student on open data (CinC 2018 + HMC)", ""]
    for name, m in report["models"].items():
        lines += [f"## {name} (kept: {m['kept']})", "",
                  f"Selection, subject-wise {report['recipe']['folds']}-fold over CinC 2018 + "
                  "HMC (pooled):", ""]  # fmt: skip
        rows = [[cand, f"{r['kappa']:.3f}", f"{r['macro_f1']:.3f}",
                 " / ".join(f"{k} {v['mean']:+.1f}" for k, v in r["fraction_bias"].items()
                            if v["mean"] is not None)]
                for cand, r in m["selection"].items()]  # fmt: skip
        lines += markdown_table(["candidate", "κ", "macro F1", "stage share bias, points"], rows)
        lines += ["", "Across cohorts (never seen in training) beside the shipped model's "
                  "held-out κ (nested LOSO on these cohorts, from its card):", ""]  # fmt: skip
        rows = [[g, f"{r['kappa']:.3f}", f"{r['macro_f1']:.3f}",
                 "-" if r["TST_bias_min"]["mean"] is None else f"{r['TST_bias_min']['mean']:+.0f}",
                 str(m["shipped_held_out"].get(g) or "-")]
                for g, r in m["cross_cohort"].items()]  # fmt: skip
        lines += markdown_table(["tested on", "κ", "macro F1", "TST bias, min",
                                 "shipped model, held-out κ"], rows)  # fmt: skip
        lines += ["", f"int8 step graph: {m['bytes'] / 1024:.1f} KB.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="heart_open",
                        help="a recipe name in train/recipes or a TOML file")  # fmt: skip
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="a smoke run (says nothing)")
    args = parser.parse_args()
    from edgesleep.train.cv import find_recipe

    recipe = load_recipe(find_recipe(args.recipe))
    if args.quick:
        recipe = quick(recipe)
    out = args.out or Path("runs") / ("heart_open-quick" if args.quick else "heart_open")
    report = run(recipe, out)
    print((out / "heart_open.md").read_text())
    for name in report["models"]:
        print(f"bundle: {out / name} (install: edgesleep models add {out / name})")


if __name__ == "__main__":
    main()
