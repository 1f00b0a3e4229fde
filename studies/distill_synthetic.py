"""EEG -> ECG distillation study (seed 2's setting) on SYNTHETIC paired nights.

Run: ``python studies/distill_synthetic.py [--out studies/results]`` (writes
``distill_synthetic.json`` / ``.md``). Generator 1.0, 16 nights of 8 subjects; both channels
come from the same nights. Per seed the subjects are shuffled: 3 test, 1 validation,
4 training subjects. Per class set (3: W/NREM/REM, 4: W/Light/Deep/REM) and seed:

- EEG teacher: SeqSleepNet on "EEG Fpz-Cz";
- ECG SeqSleepNet: the same on "ECG";
- ECG student from scratch (class-weighted cross-entropy);
- + soft targets from the frozen teacher (alpha 0.5, T 1);
- + feature transfer (epoch vectors) + soft targets.

Every model trains with class-weighted cross-entropy, stride 5, up to 10 passes, validation
once per pass, early stopping after 3 passes without gain. Test epochs are pooled per seed;
the table gives mean ± sd over seeds. The numbers check the method on data whose ECG
carries only what the generator put in it (a stage-dependent heart rate and its variability);
they say nothing about sleep.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgesleep.io.dataset import read_dataset
from edgesleep.io.writers import write_report
from edgesleep.stages import collapse_labels
from edgesleep.synth.psg import GENERATOR_VERSION, synthesize_dataset
from edgesleep.train.checkpoint import Checkpoint
from edgesleep.train.data import NightFeatures, load_features
from edgesleep.train.distill import DistillOptions, distill_features
from edgesleep.train.evaluate import FusedAnyway, evaluate_nights
from edgesleep.train.models import build, make_config
from edgesleep.train.training import per_pass_options
from edgesleep.train.transfer import train_features

TEACHER_CHANNEL, STUDENT_CHANNEL = "EEG Fpz-Cz", "ECG"
N_NIGHTS, DATA_SEED = 16, 500
N_TEST, N_VAL = 3, 1
DELAYS = (0, 19)
ROWS = (
    "ECG student, scratch",
    "ECG student + soft targets",
    "ECG student + feature transfer + soft targets",
    "ECG SeqSleepNet",
    "EEG teacher (SeqSleepNet)",
)
METRICS = ("accuracy", "kappa", "macro_f1", "weighted_f1")


def collapse(nights: Sequence[NightFeatures], n_classes: int) -> list[NightFeatures]:
    """5-class nights with labels mapped onto ``n_classes`` (negative labels kept)."""
    return [
        NightFeatures(n.record, n.subject, n.images, collapse_labels(n.labels, 5, n_classes))
        for n in nights
    ]


def score(ckpt: Checkpoint, nights: Sequence[NightFeatures]) -> dict[str, Any]:
    scorer = FusedAnyway(ckpt.scorer())  # K = 19 fuses the causal students' windows too
    metrics = evaluate_nights(scorer, nights, ckpt.n_classes, DELAYS)
    return {
        f"K={k}": {m: float(metrics[k][m]) for m in METRICS}  # type: ignore[arg-type]
        for k in DELAYS
    }


def run_seed(
    eeg: list[NightFeatures],
    ecg: list[NightFeatures],
    n_classes: int,
    seed: int,
    student_lr: float,
) -> dict[str, Any]:
    subjects = sorted({n.subject for n in eeg}, key=int)
    order = [subjects[i] for i in np.random.default_rng(seed).permutation(len(subjects))]
    test, val, train = order[:N_TEST], order[N_TEST : N_TEST + N_VAL], order[N_TEST + N_VAL :]

    def pick(nights: list[NightFeatures], ids: list[str]) -> list[NightFeatures]:
        return collapse([n for n in nights if n.subject in ids], n_classes)

    eeg_train = pick(eeg, train)
    n_epochs = sum(n.n_epochs for n in eeg_train)
    ssn_opts = per_pass_options(n_epochs, seed, 1e-4)
    student_opts = per_pass_options(n_epochs, seed, student_lr)
    ecg_train, ecg_val, ecg_test = pick(ecg, train), pick(ecg, val), pick(ecg, test)
    out: dict[str, Any] = {"split": {"train": train, "val": val, "test": test}, "rows": {}}
    seconds: dict[str, float] = {}

    def record(row: str, ckpt: Checkpoint, nights: list[NightFeatures], t0: float) -> None:
        seconds[row] = round(time.perf_counter() - t0, 1)
        out["rows"][row] = {**score(ckpt, nights), "seconds": seconds[row]}
        print(f"classes {n_classes} seed {seed} {row}: {out['rows'][row]}", flush=True)

    t0 = time.perf_counter()
    teacher = train_features(
        eeg_train, pick(eeg, val), TEACHER_CHANNEL, n_classes=n_classes, opts=ssn_opts
    )
    record(ROWS[4], teacher, pick(eeg, test), t0)
    t0 = time.perf_counter()
    ckpt = train_features(ecg_train, ecg_val, STUDENT_CHANNEL, n_classes=n_classes, opts=ssn_opts)
    record(ROWS[3], ckpt, ecg_test, t0)
    t0 = time.perf_counter()
    ckpt = train_features(
        ecg_train, ecg_val, STUDENT_CHANNEL, "student", n_classes, opts=student_opts
    )
    record(ROWS[0], ckpt, ecg_test, t0)
    ablations = {
        ROWS[1]: DistillOptions(soft_targets=True, feature_transfer=False),
        ROWS[2]: DistillOptions(soft_targets=True, feature_transfer=True),
    }
    for row, dopts in ablations.items():
        t0 = time.perf_counter()
        ckpt = distill_features(
            teacher,
            ecg_train,
            ecg_val,
            eeg_train,
            STUDENT_CHANNEL,
            TEACHER_CHANNEL,
            n_classes,
            opts=student_opts,
            dopts=dopts,
        )
        record(row, ckpt, ecg_test, t0)
    return out


def summarise(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sd over seeds of every metric, per row and delay."""
    summary: dict[str, Any] = {}
    for row in ROWS:
        summary[row] = {}
        for k in DELAYS:
            values = {m: [s["rows"][row][f"K={k}"][m] for s in per_seed] for m in METRICS}
            summary[row][f"K={k}"] = {
                m: {"mean": float(np.mean(v)), "sd": float(np.std(v, ddof=1))}
                for m, v in values.items()
            }
    return summary


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# EEG -> ECG distillation (SYNTHETIC data)",
        "",
        f"Generator {result['generator_version']}, {N_NIGHTS} synthetic nights of 8 subjects; "
        f"per seed {N_TEST} test, {N_VAL} validation and 4 training subjects; seeds "
        f"{result['seeds']}; mean ± sd over seeds of metrics pooled over test epochs. Teacher: "
        f'SeqSleepNet on "{TEACHER_CHANNEL}"; students and ECG SeqSleepNet on "ECG" of the '
        "same nights. Readout K = 19 (paper's fusion); κ at K = 0 is the no-delay streaming "
        "readout. Command: `python studies/distill_synthetic.py`. "
        f"Total {result['total_seconds'] / 60:.0f} min on this CPU.",
        "",
        "These numbers check the method on synthetic signals; they say nothing about sleep.",
        "",
    ]
    for n_classes, block in result["classes"].items():
        names = {"3": "W / NREM / REM", "4": "W / Light / Deep / REM"}[n_classes]
        lines += [
            f"## {n_classes} classes ({names})",
            "",
            "| model | params | acc | κ | MF1 | weighted F1 | κ at K = 0 | s per run |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in ROWS:
            s = block["summary"][row]
            cells = [f"{s['K=19'][m]['mean']:.3f} ± {s['K=19'][m]['sd']:.3f}" for m in METRICS]
            k0 = s["K=0"]["kappa"]
            secs = np.mean([p["rows"][row]["seconds"] for p in block["per_seed"]])
            params = result["params"]["student" if "student" in row else "seqsleepnet"]
            lines.append(
                f"| {row} | {params / 1000:.0f} k | {' | '.join(cells)} | "
                f"{k0['mean']:.3f} ± {k0['sd']:.3f} | {secs:.0f} |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("studies/results"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--classes", type=int, nargs="+", default=[3, 4])
    parser.add_argument("--student-lr", type=float, default=1e-3)
    args = parser.parse_args()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        synthesize_dataset(Path(tmp), n_nights=N_NIGHTS, seed=DATA_SEED)
        dataset = read_dataset(tmp)
        eeg = load_features(dataset, TEACHER_CHANNEL, 5)
        ecg = load_features(dataset, STUDENT_CHANNEL, 5)
    params = {
        name: sum(p.numel() for p in build(name, make_config(name, n_classes=4)).parameters())
        for name in ("seqsleepnet", "student")
    }
    result: dict[str, Any] = {
        "synthetic": True,
        "generator_version": GENERATOR_VERSION,
        "data_seed": DATA_SEED,
        "seeds": args.seeds,
        "student_lr": args.student_lr,
        "params": params,
        "command": "python studies/distill_synthetic.py",
        "classes": {},
    }
    for n_classes in args.classes:
        per_seed = [run_seed(eeg, ecg, n_classes, s, args.student_lr) for s in args.seeds]
        result["classes"][str(n_classes)] = {"per_seed": per_seed, "summary": summarise(per_seed)}
    result["total_seconds"] = round(time.perf_counter() - start, 1)
    text = markdown(result)
    write_report(args.out, "distill_synthetic", result, text)
    print(text)


if __name__ == "__main__":
    main()
