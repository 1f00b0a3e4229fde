"""Training speed and memory at scale (issue 20), and the seed-1 protocol's projected time.

Run: ``python -m edgesleep.bench.train_speed [--out bench/results] [--quick]``. Writes
``train_speed.json`` / ``.md``. The host-side exception in ``bench/``: it needs torch and
numpy (the ``train`` extra) — no EDF, no onnxruntime — since features are written straight
into a feature cache; pyedflib only for the night lengths of the projection (the shipped
Sleep-EDF hypnograms, cropped in bed), which is skipped without it.

1. Training windows/s (forward + backward + Adam step) of SeqSleepNet and the student at
   stride 1, windows encoded apart vs shared encodings (16 windows per chunk), in 1 process
   (all cores) and 2 processes (torchrun, gloo, one thread each); measured through
   :func:`edgesleep.train.training.fit` between its progress callbacks.
2. Peak anonymous RSS (``RssAnon``, sampled; file-backed pages of the memory maps not
   counted) and peak total RSS (``VmHWM``) while training on 25, 100 and 400 nights of
   8 h (features as memory maps), each in a fresh process.
3. The full seed-1 protocol (``sleepedf_eeg_to_eog``: 20 leave-one-subject-out folds, per
   fold a pretraining and the 6 strategies, 10 passes at stride 1, validation as the recipe
   says) projected from (1), the windows/s of each finetuning strategy and the scoring
   speed, on a Sleep-EDF-shaped SYNTHETIC mirror: the 39 nights' in-bed lengths. Early
   stopping is ignored (an upper bound).

Goals: anonymous RSS <= 1.5 GB at 400 nights; shared encodings >= 4x the windows/s of
separate windows at stride 1 on CPU; the protocol <= 24 h on 2 CPU cores (<= 1 h on a GPU,
measured on one when at hand).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgesleep import __version__
from edgesleep.io.writers import markdown_table, write_report
from edgesleep.readout import default_delay
from edgesleep.train import distributed
from edgesleep.train.data import NightFeatures, norm_stats
from edgesleep.train.evaluate import TorchScorer, evaluate_nights
from edgesleep.train.models import build, make_config
from edgesleep.train.training import TrainOptions, fit

NIGHT_EPOCHS = 960  # 8 h
SHARED = 16  # windows per chunk, as the recipe
GOAL_ANON_MB, GOAL_SPEEDUP, GOAL_CPU_H, GOAL_GPU_H = 1536.0, 4.0, 24.0, 1.0
RECIPE = "sleepedf_eeg_to_eog"


def write_nights(root: Path, n_nights: int, n_epochs: int, seed: int = 0) -> list[NightFeatures]:
    """SYNTHETIC STFT-shaped images written straight into ``root`` as ``.npy`` (one per
    night, as the feature cache keeps them) and read back as memory maps; random labels."""
    rng = np.random.default_rng(seed)
    block = rng.normal(0, 10, (64, 29, 129)).astype(np.float32)
    root.mkdir(parents=True, exist_ok=True)
    nights = []
    for i in range(n_nights):
        path = root / f"night{i:04d}.npy"
        if not path.is_file():
            reps = -(-n_epochs // block.shape[0])
            np.save(path, np.tile(block, (reps, 1, 1))[:n_epochs] + np.float32(i % 7))
        labels = rng.integers(0, 5, n_epochs).astype(np.int8)
        nights.append(NightFeatures(f"n{i}", str(i // 2), np.load(path, mmap_mode="r"), labels))
    return nights


def windows_per_s(
    name: str, nights: Sequence[NightFeatures], opts: TrainOptions, steps: int
) -> float:
    """Training windows per second through ``fit``: the batch over the median time of a
    step after 3 warm-up steps (robust to a busy machine; the last step, which also
    validates, excluded); in a distributed run, of all ranks together."""
    torch.manual_seed(0)
    model = build(name, make_config(name, "stft"))
    mean, std = norm_stats(nights[:2])
    stamps: list[float] = []
    opts = replace(opts, max_steps=steps, eval_every=10**9, patience=10**9, device="cpu")
    fit(
        model,
        nights[1:],
        nights[:1],
        mean,
        std,
        opts,
        lambda *_: stamps.append(time.perf_counter()),
    )
    return opts.batch_size / float(np.median(np.diff(stamps[3:-1])))


def speed_cases(quick: bool) -> list[dict[str, Any]]:
    """The (model, strategy, shared, processes) cases that are measured."""
    cases = [
        {"model": m, "strategy": "all", "shared": s, "procs": p}
        for m in ("seqsleepnet", "student")
        for s in (0, SHARED)
        for p in (1, 2)
    ]
    cases += [{"model": "seqsleepnet", "strategy": s, "shared": SHARED, "procs": 1}
              for s in ("softmax", "softmax+epoch", "softmax+sequence")]  # fmt: skip
    cases += [{"model": m, "strategy": "all", "shared": 2 * SHARED, "procs": 1}
              for m in ("seqsleepnet", "student")]  # fmt: skip
    return cases[:2] if quick else cases


def measure_case(case: dict[str, Any], folder: Path, steps: int) -> float:
    """One case in fresh processes (``procs`` of them under torchrun, one thread each; or one
    process with every core)."""
    args = ["--case", json.dumps(case), "--dir", str(folder), "--steps", str(steps)]
    module = ["-m", "edgesleep.bench.train_speed"]
    if case["procs"] == 1:
        command = [sys.executable, *module, *args]
        env = dict(os.environ)
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc-per-node={case['procs']}", *module, *args]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False,
                          cwd=tempfile.gettempdir())  # fmt: skip
    if done.returncode:
        raise RuntimeError(f"case {case} failed:\n{done.stderr[-3000:]}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["windows_per_s"])


def run_case(case: dict[str, Any], folder: Path, steps: int) -> None:
    """In the measuring process (or each rank): print windows/s as JSON (rank 0)."""
    if case["procs"] > 1:
        distributed.setup(torch.device("cpu"))
        torch.set_num_threads(1)
    nights = write_nights(folder, 6, NIGHT_EPOCHS)
    opts = TrainOptions(stride=1, shared_windows=case["shared"], finetune=case["strategy"])
    speed = windows_per_s(case["model"], nights, opts, steps)
    if distributed.is_main():
        print(json.dumps({"windows_per_s": speed}))


def scoring_epochs_per_s(name: str, folder: Path) -> float:
    """Epochs per second of validation/test scoring (every window, fused), one process."""
    nights = write_nights(folder, 2, NIGHT_EPOCHS)
    model = build(name, make_config(name, "stft")).eval()
    scorer = TorchScorer(model, *norm_stats(nights))
    t0 = time.perf_counter()
    evaluate_nights(scorer, nights, 5, [default_delay(scorer)])
    return 2 * NIGHT_EPOCHS / (time.perf_counter() - t0)


def rss_sampler() -> tuple[threading.Event, dict[str, int]]:
    """Sample RssAnon every 20 ms in a thread; the peak lands in the returned dict."""
    stop, peak = threading.Event(), {"anon_kb": 0}

    def sample() -> None:
        while not stop.is_set():
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("RssAnon:"):
                    peak["anon_kb"] = max(peak["anon_kb"], int(line.split()[1]))
            stop.wait(0.02)

    threading.Thread(target=sample, daemon=True).start()
    return stop, peak


def run_rss(n_nights: int, folder: Path, steps: int) -> None:
    """In a fresh process: train SeqSleepNet on ``n_nights`` memory-mapped nights as the
    recipe does (stride 1, shared encodings); print peak anonymous and total RSS."""
    from edgesleep.bench.process import peak_rss_kb

    nights = write_nights(folder, n_nights, NIGHT_EPOCHS)
    stop, peak = rss_sampler()
    t0 = time.perf_counter()
    opts = TrainOptions(stride=1, shared_windows=SHARED, class_weighting=True)
    windows_per_s("seqsleepnet", nights, opts, steps)
    stop.set()
    print(json.dumps({"peak_anon_kb": peak["anon_kb"], "vmhwm_kb": peak_rss_kb(),
                      "seconds": time.perf_counter() - t0}))  # fmt: skip


def measure_rss(n_nights: int, folder: Path, steps: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "edgesleep.bench.train_speed", "--rss", str(n_nights),
               "--dir", str(folder), "--steps", str(steps)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False,
                          cwd=tempfile.gettempdir())  # fmt: skip
    if done.returncode:
        raise RuntimeError(f"RSS at {n_nights} nights failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {"nights": n_nights, "peak_anon_mb": round(result["peak_anon_kb"] / 1024, 1),
            "peak_total_mb": round(result["vmhwm_kb"] / 1024, 1),
            "data_gb": round(n_nights * NIGHT_EPOCHS * 29 * 129 * 4 / 1e9, 2)}  # fmt: skip


def sleepedf_in_bed() -> dict[str, list[int]] | None:
    """Subject -> in-bed epochs of each of the 39 SC-20 nights (the shipped hypnograms and
    lights-off/on); None without pyedflib."""
    try:
        import pyedflib  # noqa: F401
    except ImportError:
        return None
    from edgesleep.io import edf
    from edgesleep.io.hypnogram import in_bed_epochs, read_hypnogram
    from edgesleep.io.sleepedf import records

    lengths: dict[str, list[int]] = {}
    for rec in records().values():
        n_epochs = read_hypnogram(rec.hypnogram_path).shape[0]
        start = edf.header(rec.hypnogram_path)["start"]
        keep = in_bed_epochs(n_epochs, *rec.in_bed_s(start))  # type: ignore[arg-type]
        lengths.setdefault(str(rec.subject), []).append(keep.stop - keep.start)
    return lengths


def project(
    lengths: dict[str, list[int]], speeds: dict[str, float], scoring: float
) -> dict[str, Any]:
    """Hours of the recipe's whole protocol from measured windows/s per strategy and
    scoring epochs/s (one seed, 10 passes everywhere, validation every ``eval_every``)."""
    from edgesleep.train.cv import find_recipe, folds_of, load_recipe
    from edgesleep.train.training import split_subjects

    recipe = load_recipe(find_recipe(RECIPE))
    seq_len = 20
    subjects = sorted(lengths)

    def windows(ids: Sequence[str]) -> int:
        return sum(max(0, n - seq_len + 1) for s in ids for n in lengths[s])

    def epochs(ids: Sequence[str]) -> int:
        return sum(n for s in ids for n in lengths[s])

    seconds: dict[str, float] = {}
    for seed in recipe.seeds:
        for test in folds_of(subjects, recipe.folds, seed):
            rest = [s for s in subjects if s not in test]
            for strategy, opts, n_val in [("pretrain", recipe.pretrain, recipe.source_val_subjects),
                                          *[(s, recipe.train, recipe.n_val_subjects)
                                            for s in recipe.strategies]]:  # fmt: skip
                train_ids, val_ids = split_subjects(rest, n_val, seed)
                n_windows = windows(train_ids)
                steps = opts.passes * n_windows / opts.batch_size
                key = "all" if strategy in ("pretrain", "scratch") else strategy
                train_s = 0.0 if key == "none" else opts.passes * n_windows / speeds[key]
                validations = 1 if key == "none" else steps // opts.eval_every + 1
                score_s = (validations * epochs(val_ids) + epochs(test)) / scoring
                seconds[strategy] = seconds.get(strategy, 0.0) + train_s + score_s
    return {"recipe": RECIPE, "nights": sum(len(v) for v in lengths.values()),
            "in_bed_epochs": sum(sum(v) for v in lengths.values()),
            "hours": {k: round(v / 3600, 2) for k, v in seconds.items()},
            "total_hours": round(sum(seconds.values()) / 3600, 2)}  # fmt: skip


def measure(quick: bool) -> dict[str, Any]:
    steps = 8 if quick else 60
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for case in speed_cases(quick):
            speed = measure_case(case, folder / "speed", steps)
            rows.append({**case, "windows_per_s": round(speed, 1)})
        scoring = {m: round(scoring_epochs_per_s(m, folder / "speed"), 1)
                   for m in ("seqsleepnet", "student")}  # fmt: skip
        rss = [measure_rss(n, folder / "rss", 10 if quick else 30)
               for n in ((25,) if quick else (25, 100, 400))]  # fmt: skip

    def rate(model: str, strategy: str, shared: int, procs: int) -> float | None:
        for row in rows:
            if (row["model"], row["strategy"], row["shared"], row["procs"]) == (
                model, strategy, shared, procs):  # fmt: skip
                return float(row["windows_per_s"])
        return None

    speedups = {f"{m}, {k}/chunk": round(fast / slow, 2)
                for m in ("seqsleepnet", "student") for k in (SHARED, 2 * SHARED)
                if (fast := rate(m, "all", k, 1)) and (slow := rate(m, "all", 0, 1))}  # fmt: skip
    lengths = sleepedf_in_bed()
    projection = None
    if lengths is not None and not quick:
        speeds = {s: rate("seqsleepnet", s, SHARED, 1) or 0.0
                  for s in ("all", "softmax", "softmax+epoch", "softmax+sequence")}  # fmt: skip
        projection = project(lengths, speeds, scoring["seqsleepnet"])
    try:
        from edgesleep.ort import cpu_info

        cpu: dict[str, Any] = cpu_info()
    except ImportError:
        cpu = {"machine": platform.machine()}
    return {
        "edgesleep_version": __version__,
        "torch": torch.__version__,
        "cpu": {**cpu, "cores": os.cpu_count()},
        "synthetic": True,
        "night_epochs": NIGHT_EPOCHS,
        "stride": 1,
        "batch_size": TrainOptions.batch_size,
        "shared_windows": SHARED,
        "speed": rows,
        "shared_speedup": speedups,
        "scoring_epochs_per_s": scoring,
        "memory": rss,
        "projection": projection,
        "goals": {
            "anon_mb_at_400": GOAL_ANON_MB,
            "speedup": GOAL_SPEEDUP,
            "protocol_cpu_h": GOAL_CPU_H,
            "protocol_gpu_h": GOAL_GPU_H,
        },  # fmt: skip
    }


def markdown(result: dict[str, Any]) -> str:
    cpu = result["cpu"]
    lines = [
        "# Training speed and memory (SYNTHETIC features; speed says nothing about accuracy)",
        "",
        f"edgesleep {result['edgesleep_version']}, torch {result['torch']}, "
        f"{cpu.get('model', cpu['machine'])}, {cpu['cores']} cores; stride 1, batch "
        f"{result['batch_size']} windows of 20 epochs, nights of {result['night_epochs']} "
        "epochs. Reproduce: `python -m edgesleep.bench.train_speed`.",
        "",
        "## Training windows/s (forward + backward + step)",
        "",
    ]
    lines += markdown_table(
        ["model", "strategy", "encodings", "processes", "windows/s"],
        [[r["model"], r["strategy"],
          f"shared ({r['shared']}/chunk)" if r["shared"] else "per window",
          f"{r['procs']} ({'torchrun, 1 thread each' if r['procs'] > 1 else 'all cores'})",
          r["windows_per_s"]] for r in result["speed"]],
    )  # fmt: skip
    speedups = ", ".join(f"{m} {v:g}×" for m, v in result["shared_speedup"].items())
    scoring = ", ".join(f"{m} {v:g}" for m, v in result["scoring_epochs_per_s"].items())
    lines += [
        "",
        f"Shared encodings, speed-up per pass at stride 1 (goal ≥ "
        f"{result['goals']['speedup']:g}×): {speedups}",
        "",
        f"Scoring (validation, test), epochs/s: {scoring}",
        "",
        "## Memory while training (SeqSleepNet, stride 1, shared encodings)",
        "",
    ]
    lines += markdown_table(
        ["nights", "features on disk (GB)", "peak anonymous RSS (MB)", "peak RSS (MB)"],
        [[m["nights"], m["data_gb"], m["peak_anon_mb"], m["peak_total_mb"]]
         for m in result["memory"]],
    )  # fmt: skip
    goal_mb = result["goals"]["anon_mb_at_400"]
    lines += ["", f"Goal: anonymous RSS ≤ {goal_mb:g} MB at 400 nights."]
    proj = result["projection"]
    if proj:
        lines += ["", f"## Seed 1's full protocol, projected ({proj['recipe']})", "",
                  f"{proj['nights']} nights, {proj['in_bed_epochs']} in-bed epochs; 20 folds × "
                  "(pretraining + 6 strategies), 10 passes at stride 1, one seed, early stopping "
                  "ignored (an upper bound), on this CPU:", ""]  # fmt: skip
        lines += markdown_table(["part", "hours"], [[k, v] for k, v in proj["hours"].items()])
        lines += ["", f"**Total: {proj['total_hours']} h** (goal ≤ "
                  f"{result['goals']['protocol_cpu_h']:g} h on 2 CPU cores). Not measured on a "
                  "GPU yet (goal ≤ 1 h).", ""]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--quick", action="store_true", help="Two cases, 25 nights (a check).")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--rss", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=40, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        run_case(json.loads(args.case), args.dir, args.steps)
    elif args.rss:
        run_rss(args.rss, args.dir, args.steps)
    else:
        result = measure(args.quick)
        write_report(args.out, "train_speed", result, markdown(result))
        print(markdown(result))


if __name__ == "__main__":
    main()
