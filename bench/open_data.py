"""Disk and time of the open-data recipes (CinC 2018, HMC), PROJECTED: nothing here ran on
their files, which no machine of ours can reach.

Run: ``python -m edgesleep.bench.open_data [--speed bench/results/train_speed.json] [--out
bench/results]``. Writes ``open_data.json`` / ``.md``. Needs no torch: it reads the speeds
``python -m edgesleep.bench.train_speed`` measured (windows/s per model and strategy,
scoring epochs/s) and the seed-1 target-side hours it projected for Sleep-EDF SC-20.

Disk is computed from each cohort's published format: channels × rate × 2 bytes × hours,
with the night length an assumption (:data:`HOURS_PER_NIGHT`; ``data fetch --dry-run``
says the exact bytes from the server before anything is downloaded). The feature cache is
float32 images per 30-s epoch: the STFT (29 × 129) or the beat-interval image (27 × 20).

Time is windows × passes / measured windows/s (stride and shared encodings as each recipe
says), plus validation scoring every ``eval_every`` steps, one seed, early stopping
ignored: an upper bound, on the CPU the speeds were measured on. No GPU has measured them,
so there is no GPU projection (the goal: the seed-1 protocol in ≤ 1 h on one GPU). The
heart student's windows/s are the student's on STFT images (29 × 129), an upper bound for
its beat-interval images (27 × 20).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from edgesleep.io.writers import markdown_table

HOURS_PER_NIGHT = 7.5  # an assumption: whole-night PSGs, about 900 scored epochs
EPOCHS = int(HOURS_PER_NIGHT * 120)
SEQ_LEN = 20
COHORTS = {  # nights, signals stored (channels x rate), the published counts
    "cinc2018": {"nights": 994, "channels": 13, "sfreq": 200},
    "hmc": {"nights": 151, "channels": 8, "sfreq": 256},
}
STFT_BYTES, BEATS_BYTES = 29 * 129 * 4, 27 * 20 * 4  # one epoch's image, float32


def windows(nights: float, stride: int) -> float:
    """Training windows of ``SEQ_LEN`` epochs in ``nights`` nights of :data:`EPOCHS`."""
    return nights * (EPOCHS - SEQ_LEN + 1) / stride


def training_h(nights: float, passes: float, stride: int, rate: float, eval_every: int,
               val_nights: float, scoring: float, batch: int = 32) -> float:  # fmt: skip
    """Hours of one training: its passes at ``rate`` windows/s and its validations."""
    n = windows(nights, stride)
    validations = passes * n / batch // eval_every + 1
    return (passes * n / rate + validations * val_nights * EPOCHS / scoring) / 3600


def project(speed: dict[str, Any]) -> dict[str, Any]:
    """Disk per cohort and hours per recipe (module docstring)."""
    rate = {(r["model"], r["strategy"], r["shared"], r["procs"]): r["windows_per_s"]
            for r in speed["speed"]}  # fmt: skip
    seq_all, stu_shared = rate[("seqsleepnet", "all", 16, 1)], rate[("student", "all", 16, 1)]
    stu_window = rate[("student", "all", 0, 1)]
    score_seq, score_stu = (speed["scoring_epochs_per_s"][m] for m in ("seqsleepnet", "student"))
    disk = {name: {"signals_gb": round(c["nights"] * c["channels"] * c["sfreq"] * 2
                                       * HOURS_PER_NIGHT * 3600 / 1e9, 1),
                   "stft_cache_gb_per_channel": round(c["nights"] * EPOCHS * STFT_BYTES / 1e9, 1),
                   "beats_cache_gb": round(c["nights"] * EPOCHS * BEATS_BYTES / 1e9, 2)}
            for name, c in COHORTS.items()}  # fmt: skip
    target = {k: v for k, v in speed["projection"]["hours"].items() if k != "pretrain"}
    hours: dict[str, dict[str, float]] = {}
    for source, val in (("cinc2018", 100), ("hmc", 15)):
        nights = COHORTS[source]["nights"]
        pretrain = training_h(nights - val, 10, 1, seq_all, 2000, val, score_seq)
        hours[f"{source}_to_sleepedf_eeg_to_eog"] = {"pretrain (once)": pretrain, **target}
    fold_train = COHORTS["cinc2018"]["nights"] * 4 / 5 - 50
    teacher = training_h(fold_train, 10, 1, seq_all, 2000, 50, score_seq)
    student = training_h(fold_train, 10, 5, stu_window, 2000, 50, score_stu)
    # distillation: the student plus the frozen teacher's forward pass over every training
    # epoch of every pass, at the teacher's scoring speed (an estimate, not measured)
    teach_forward = 10 * fold_train * EPOCHS / score_seq / 3600
    hours["cinc2018_eeg_to_ecg_distill"] = {
        "teacher (5 folds)": 5 * teacher,
        "scratch (5 folds)": 5 * student,
        "distill (5 folds)": 5 * (student + teach_forward),
    }
    pooled = sum(c["nights"] for c in COHORTS.values())
    one = training_h(pooled * 4 / 5 - 4, 20, 5, stu_window, 100, 4, score_stu)
    final = training_h(pooled - 4, 20, 5, stu_window, 100, 4, score_stu)
    hours["heart_open"] = {"selection (5 folds × 4 candidates × 2 class sets)": 40 * one,
                           "final models (2 class sets)": 2 * final}  # fmt: skip
    rounded = {k: {p: round(h, 2) for p, h in v.items()} for k, v in hours.items()}
    return {"projected": True, "hours_per_night_assumed": HOURS_PER_NIGHT, "disk": disk,
            "hours": rounded, "total_hours": {k: round(sum(v.values()), 1)
                                              for k, v in hours.items()},
            "cpu": speed["cpu"], "speeds_from": "bench/results/train_speed.json",
            "gpu": None, "rates": {"seqsleepnet_all_shared16": seq_all,
                                   "student_all_shared16": stu_shared,
                                   "student_all_per_window": stu_window}}  # fmt: skip


def markdown(result: dict[str, Any]) -> str:
    cpu = result["cpu"]
    lines = ["# Open-data recipes: disk and time, PROJECTED (not run on CinC 2018 or HMC)", "",
             f"From the speeds in `{result['speeds_from']}` "
             f"({cpu.get('model', cpu.get('machine'))}, "
             f"{cpu['cores']} cores) and nights of {result['hours_per_night_assumed']:g} h "
             "(an assumption). Reproduce: `python -m edgesleep.bench.open_data`. No GPU has "
             "measured the training speeds, so there is no GPU projection.", "",
             "## Disk", ""]  # fmt: skip
    lines += markdown_table(
        ["cohort", "signals (GB)", "STFT cache per channel (GB)", "beats cache (GB)"],
        [[k, v["signals_gb"], v["stft_cache_gb_per_channel"], v["beats_cache_gb"]]
         for k, v in result["disk"].items()])  # fmt: skip
    lines += [
        "",
        "`data fetch ... --dry-run` gives the exact bytes before downloading.",
        "",
        "## Hours on this CPU (one seed, early stopping ignored: an upper bound)",
        "",
    ]
    for recipe, parts in result["hours"].items():
        lines += [f"### {recipe}: {result['total_hours'][recipe]} h", ""]
        lines += markdown_table(["part", "hours"], [[p, h] for p, h in parts.items()])
        lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", type=Path, default=Path("bench/results/train_speed.json"))
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    result = project(json.loads(args.speed.read_text()))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "open_data.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "open_data.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
