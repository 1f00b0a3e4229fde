"""Sleep staging from the heart on real data: slpdb, leave one subject out.

Run: ``python studies/cardiac_slpdb.py [--data ../shared/data/slpdb]
[--out studies/results]`` (writes ``cardiac_slpdb.json`` / ``.md``; 37 min on 2 cores here).

Real: the R-peak times and the expert R&K stages of the 14 slpdb records (12 subjects,
sleep-apnea patients; slp01a/b and slp02a/b are one subject each). Rendered: the ECG
waveform of the ECG-STFT rows, drawn by :func:`edgesleep.synth.signals.render_ecg` at the
real beat times (the beat shape and the noise are synthetic; the timing is not).

Protocol: for each of the 12 subjects, the models train on the other 11 (2 of them, drawn
per fold, validate for early stopping), with normalisation from the 9 training subjects; the
held-out subject's epochs are predicted, and accuracy, Cohen's κ and macro F1 are computed
on all held-out epochs pooled. Models learn W / Light (N1+N2) / Deep (N3) / REM; the
3-class W / NREM / REM result sums the Light and Deep probabilities. MT/M epochs are not
scored. Rows:

- SeqSleepNet on the ECG STFT and on the beat-interval input (:mod:`edgesleep.dsp.beats`);
- the compact student on each input, with dilations 1, 2, 4, 8 (a causal receptive field
  of 31 epochs);
- the student distilled (soft targets, alpha 0.5, T 1) from the SeqSleepNet whose mean
  validation accuracy over the folds was higher (chosen without the test subjects);
- the floor: a class-balanced logistic regression on 9 heart-rate-variability features of
  the 5 min around each epoch (per-night z-scored), with +-2 epochs of context;
- sleepecg's pretrained ``wrn-gru-mesa`` on the same epochs, when
  ``studies/results/sleepecg_slpdb.json`` exists (``studies/sleepecg/``; own environment).

Readout K = L - 1 (offline scoring of a night); κ at K = 0 is the no-delay stream.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from heart_pooled import bias_cell, loa_cell

from edgesleep.agreement import Night, agreement, summary_bias
from edgesleep.dsp import EPOCH_SAMPLES, SFREQ
from edgesleep.dsp.beats import beat_images
from edgesleep.dsp.inputs import get_kind
from edgesleep.io.slpdb import SlpdbRecord, read_record, record_names, subject_of
from edgesleep.io.writers import write_report
from edgesleep.metrics import evaluate
from edgesleep.readout import probabilities
from edgesleep.stages import collapse_labels, collapse_matrix, to_classes
from edgesleep.synth.signals import render_ecg
from edgesleep.train.baselines import floor_probabilities, hrv_features, with_context
from edgesleep.train.checkpoint import Checkpoint
from edgesleep.train.data import NightFeatures
from edgesleep.train.distill import DistillOptions, distill_features
from edgesleep.train.evaluate import FusedAnyway
from edgesleep.train.models import build, make_config
from edgesleep.train.training import TrainOptions, per_pass_options, split_subjects
from edgesleep.train.transfer import train_features

N_CLASSES = 4  # trained; 3 is derived
DELAYS = (19, 0)
N_VAL = 2
# how each input kind's images are made from a record: the STFT of the rendered ECG, the
# beat-interval images from the real (reference) beat times
IMAGES: dict[str, Callable[[SlpdbRecord, np.ndarray], np.ndarray]] = {
    "stft": lambda rec, ecg: get_kind("stft").images(ecg),
    "beats": lambda rec, ecg: beat_images(rec.beat_times_s, rec.stages.shape[0]),
}
INPUTS = tuple(IMAGES)
# beyond the defaults for the input kind (train_features adds those): the student's context
MODEL_FIELDS: dict[str, dict[str, Any]] = {
    "seqsleepnet": {},
    "student": {"dilations": (1, 2, 4, 8)},
}
ROW_NAMES = {
    ("seqsleepnet", "stft"): "SeqSleepNet, ECG STFT",
    ("seqsleepnet", "beats"): "SeqSleepNet, beat intervals",
    ("student", "stft"): "student, ECG STFT",
    ("student", "beats"): "student, beat intervals",
}
DISTILLED, FLOOR, SLEEPECG = "student distilled from the better SeqSleepNet", "LR floor", "sleepecg"
METRICS = ("accuracy", "kappa", "macro_f1")
CONTEXT = 2  # epochs either side, for the floor


def load_nights(root: Path) -> tuple[dict[str, list[NightFeatures]], dict[str, np.ndarray]]:
    """Both inputs of every record (4-class labels) and each record's beat times (s)."""
    nights: dict[str, list[NightFeatures]] = {kind: [] for kind in INPUTS}
    beats = {}
    for seed, record in enumerate(record_names(root)):
        rec = read_record(root, record)
        n_epochs = rec.stages.shape[0]
        labels = to_classes(rec.stages, N_CLASSES)
        ecg = render_ecg(rec.beat_times_s, rec.beat_labels, n_epochs * EPOCH_SAMPLES, SFREQ, seed)
        subject = subject_of(record)
        for kind, make in IMAGES.items():
            nights[kind].append(NightFeatures(record, subject, make(rec, ecg), labels))
        beats[record] = rec.beat_times_s
    return nights, beats


def options(n_epochs: int, seed: int, lr: float) -> TrainOptions:
    """The studies' per-pass options with more passes (20) and patience (4)."""
    return per_pass_options(n_epochs, seed, lr, passes=20, patience=4)


def predict(ckpt: Checkpoint, nights: Sequence[NightFeatures]) -> dict[int, list[np.ndarray]]:
    """Per-epoch probabilities of each night, per delay K."""
    scorer = FusedAnyway(ckpt.scorer())  # K = 19 fuses the causal student's windows
    by_night = [probabilities(scorer, n.images, DELAYS) for n in nights]
    return {k: [p[k] for p in by_night] for k in DELAYS}


def metrics(truth: np.ndarray, proba: np.ndarray) -> dict[str, dict[str, float]]:
    """Pooled metrics for 4 classes and for 3 (Light + Deep -> NREM)."""
    out = {}
    for n_classes in (4, 3):
        merged = proba @ collapse_matrix(N_CLASSES, n_classes)
        labels = collapse_labels(truth, N_CLASSES, n_classes)
        scores = evaluate(labels, merged.argmax(axis=1), n_classes)
        out[str(n_classes)] = {m: float(scores[m]) for m in METRICS}  # type: ignore[arg-type]
    return out


def night_summary(proba: dict[str, np.ndarray], truth: dict[str, np.ndarray],
                  ) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Per class set (4, 3), each night's summary against the expert's
    (:func:`edgesleep.agreement.summary_bias`): stage-fraction and TST bias."""
    out = {}
    for n_classes in (4, 3):
        nights = [Night(r, subject_of(r),
                        (p @ collapse_matrix(N_CLASSES, n_classes)).argmax(axis=1),
                        collapse_labels(truth[r], N_CLASSES, n_classes))
                  for r, p in proba.items()]  # fmt: skip
        out[str(n_classes)] = summary_bias(agreement(nights, n_classes, n_boot=1000))
    return out


def run(root: Path, seed: int, progress: bool = True) -> dict[str, Any]:
    start = time.perf_counter()
    nights, beats = load_nights(root)
    records = [n.record for n in nights["stft"]]
    subjects = sorted({subject_of(r) for r in records})
    truth = {n.record: n.labels for n in nights["stft"]}
    hrv = {r: with_context(hrv_features(beats[r], truth[r].shape[0]), CONTEXT) for r in records}
    # per row and delay: record -> probabilities
    proba: dict[str, dict[int, dict[str, np.ndarray]]] = {}
    val_acc: dict[str, list[float]] = {}
    seconds: dict[str, float] = {}
    teachers: dict[str, dict[str, Checkpoint]] = {}

    def timed(row: str, t0: float) -> None:
        seconds[row] = seconds.get(row, 0.0) + time.perf_counter() - t0

    def keep(row: str, ckpt: Checkpoint, test: list[NightFeatures], t0: float) -> None:
        timed(row, t0)
        val_acc.setdefault(row, []).append(float(ckpt.provenance["metrics"]["val_accuracy"]))
        for k, night_probs in predict(ckpt, test).items():
            for night, p in zip(test, night_probs, strict=True):
                proba.setdefault(row, {}).setdefault(k, {})[night.record] = p

    # per fold: the held-out subject, then training and validation subjects drawn from the rest
    folds = [
        (test, *split_subjects([s for s in subjects if s != test], N_VAL, seed + fold))
        for fold, test in enumerate(subjects)
    ]

    def parts(kind: str, fold: int) -> dict[str, list[NightFeatures]]:
        test, train_ids, val_ids = folds[fold]
        return {
            split: [n for n in nights[kind] if n.subject in ids]
            for split, ids in (("train", train_ids), ("val", val_ids), ("test", [test]))
        }

    for fold, (test_subject, train_ids, _) in enumerate(folds):
        n_train = sum(n.n_epochs for n in nights["stft"] if n.subject in train_ids)
        for (name, kind), row in ROW_NAMES.items():
            part = parts(kind, fold)
            t0 = time.perf_counter()
            lr = 1e-4 if name == "seqsleepnet" else 1e-3
            ckpt = train_features(
                part["train"], part["val"], "ECG", name, N_CLASSES,
                opts=options(n_train, seed, lr), model_fields=MODEL_FIELDS[name], input_kind=kind,
            )  # fmt: skip
            keep(row, ckpt, part["test"], t0)
            if progress:
                print(f"fold {fold + 1} {row}: {time.perf_counter() - t0:.0f} s", flush=True)
            if name == "seqsleepnet":
                teachers.setdefault(kind, {})[test_subject] = ckpt
        t0 = time.perf_counter()
        test_records = [r for r in records if subject_of(r) == test_subject]
        train_records = [r for r in records if subject_of(r) != test_subject]
        floor = floor_probabilities(
            [hrv[r] for r in train_records], [truth[r] for r in train_records],
            np.concatenate([hrv[r] for r in test_records]), N_CLASSES,
        )  # fmt: skip
        bounds = np.cumsum([0] + [truth[r].shape[0] for r in test_records])
        for k in DELAYS:
            for r, a, b in zip(test_records, bounds[:-1], bounds[1:], strict=True):
                proba.setdefault(FLOOR, {}).setdefault(k, {})[r] = floor[a:b]
        timed(FLOOR, t0)
        if progress:
            print(f"fold {fold + 1}/{len(subjects)} ({test_subject}) done", flush=True)
    # the teacher: the SeqSleepNet input with the higher mean validation accuracy
    teacher_kind = max(INPUTS, key=lambda k: np.mean(val_acc[ROW_NAMES[("seqsleepnet", k)]]))
    for fold, (test_subject, _, _) in enumerate(folds):
        part = parts(teacher_kind, fold)
        n_train = sum(n.n_epochs for n in part["train"])
        t0 = time.perf_counter()
        ckpt = distill_features(
            teachers[teacher_kind][test_subject], part["train"], part["val"], part["train"],
            "ECG", n_classes=N_CLASSES, opts=options(n_train, seed, 1e-3),
            dopts=DistillOptions(soft_targets=True, feature_transfer=False),
            model_fields=MODEL_FIELDS["student"], input_kind=teacher_kind,
        )  # fmt: skip
        keep(DISTILLED, ckpt, part["test"], t0)
    result: dict[str, Any] = {
        "data": "slpdb (real beat times and stages; rendered ECG waveform for the STFT rows)",
        "records": records,
        "subjects": subjects,
        "seed": seed,
        "teacher_input": teacher_kind,
        "rows": {},
        "params": {
            f"{name}, {kind}": sum(
                p.numel()
                for p in build(
                    name, make_config(name, kind, n_classes=N_CLASSES, **MODEL_FIELDS[name])
                ).parameters()
            )
            for name, kind in ROW_NAMES
        },
        "command": "python studies/cardiac_slpdb.py",
    }
    every = np.concatenate([truth[r] for r in records])
    for row, by_delay in proba.items():
        result["rows"][row] = {
            f"K={k}": metrics(every, np.concatenate([by_delay[k][r] for r in records]))
            for k in DELAYS
        }
        result["rows"][row]["night_summary"] = night_summary(
            {r: by_delay[DELAYS[0]][r] for r in records}, truth
        )
        result["rows"][row]["seconds"] = round(seconds[row], 1)
        if row in val_acc:
            result["rows"][row]["mean_val_accuracy"] = float(np.mean(val_acc[row]))
    result["n_scored_epochs"] = int((every >= 0).sum())
    result["total_seconds"] = round(time.perf_counter() - start, 1)
    return result


def add_sleepecg(result: dict[str, Any], path: Path, root: Path) -> None:
    """The sleepecg row, on exactly the study's scored epochs (3 classes only)."""
    data = json.loads(path.read_text())
    truth, pred = [], []
    for record in result["records"]:
        labels = to_classes(read_record(root, record).stages, 3)
        stages = np.asarray(data["predictions"][record], dtype=np.int64)  # W/NREM/REM, -1 none
        if stages.shape != labels.shape:
            raise ValueError(f"{path}: {record} has {stages.shape[0]} epochs, not {labels.size}")
        truth.append(labels)
        pred.append(stages)
    t, p = np.concatenate(truth), np.concatenate(pred)
    missing = int(((t >= 0) & (p < 0)).sum())
    scores = evaluate(t, np.where(p < 0, 0, p), 3)  # no prediction counts as wake (an error)
    row = {m: float(scores[m]) for m in METRICS}  # type: ignore[arg-type]
    result["rows"][SLEEPECG] = {
        "K=19": {"3": row}, "epochs_without_prediction": missing,
        "versions": data.get("versions", {}),
    }  # fmt: skip


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Sleep staging from the heart: slpdb, leave one subject out (REAL beats and stages)",
        "",
        f"{len(result['records'])} records, {len(result['subjects'])} subjects (sleep-apnea "
        f"patients), {result['n_scored_epochs']} scored epochs pooled over the held-out "
        "subjects. Real: R-peak times and expert stages. Rendered: the ECG waveform behind the "
        "ECG-STFT rows (synthetic beat shape at the real beat times). Trained on W / Light / "
        "Deep / REM; W / NREM / REM sums Light and Deep. Readout K = 19; κ at K = 0 is the "
        f"no-delay stream. Teacher of the distilled student: SeqSleepNet on "
        f"{result['teacher_input']} (higher mean validation accuracy over the folds). "
        f"Command: `{result['command']}`; {result['total_seconds'] / 60:.0f} min on this CPU.",
        "",
        "Data: MIT-BIH Polysomnographic Database (Ichimaru & Moody 1999; Goldberger et al. "
        "2000), ODC-By 1.0.",
        "",
        "| model | params | 3-cl acc | 3-cl κ | 3-cl MF1 | 4-cl acc | 4-cl κ | 4-cl MF1 | "
        "3-cl κ at K = 0 | 4-cl κ at K = 0 | train s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    params = {ROW_NAMES[key]: result["params"][f"{key[0]}, {key[1]}"] for key in ROW_NAMES}
    params[DISTILLED] = params[ROW_NAMES[("student", result["teacher_input"])]]
    for row, r in result["rows"].items():
        main = r["K=19"]
        cells = []
        for n in ("3", "4"):
            cells += [f"{main[n][m]:.3f}" if n in main else "–" for m in METRICS]
        k0 = r.get("K=0", {})
        cells += [f"{k0[n]['kappa']:.3f}" if n in k0 else "–" for n in ("3", "4")]
        size = f"{params[row] / 1000:.0f} k" if row in params else "–"
        secs = f"{r['seconds']:.0f}" if "seconds" in r else "–"
        lines.append(f"| {row} | {size} | {' | '.join(cells)} | {secs} |")
    if not any("night_summary" in r for r in result["rows"].values()):  # runs before #31
        return "\n".join([*lines, ""])
    lines += ["", "Night summary against the expert at K = 19 (staged − expert, mean over the 14 "
              "nights): each stage's share in percentage points [subject-bootstrap 95 % CI], "
              "TST in minutes [95 % limits of agreement].", "",
              "| model | W | Light | Deep | REM | TST, min | 3-cl W | 3-cl NREM | 3-cl REM | "
              "3-cl TST, min |", "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for row, r in result["rows"].items():
        if "night_summary" not in r:
            continue
        cells = []
        for n in ("4", "3"):
            found = r["night_summary"][n]
            cells += [bias_cell(b) for b in found["fraction_bias"].values()]
            cells.append(loa_cell(found["summary_bias"]["TST"]))
        lines.append(f"| {row} | {' | '.join(cells)} |")
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/slpdb"))
    parser.add_argument("--out", type=Path, default=Path("studies/results"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    result = run(args.data, args.seed)
    sleepecg = args.out / "sleepecg_slpdb.json"
    if sleepecg.is_file():
        add_sleepecg(result, sleepecg, args.data)
    text = markdown(result)
    write_report(args.out, "cardiac_slpdb", result, text)
    print(text)


if __name__ == "__main__":
    main()
