"""``edgesleep demo``: the whole path on SYNTHETIC data, in a few minutes on a laptop CPU.

Synthesize 6 nights (3 subjects) -> train a compact student on one channel (cached in the
work folder) -> export fp32 + int8 (calibrated on the training nights) -> write a held-out
night (another seed, simulated hypnogram) as EDF+ -> read it back at its rate and stream
it through the stager in 1-s packets (no delay, K = 0) -> hypnogram CSV + PNG, agreement
with the generator's stages, latency per new epoch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgesleep.export.pipeline import ExportOptions, export_model
from edgesleep.io.edf import read_signal
from edgesleep.io.writers import CsvSink, plot_hypnogram
from edgesleep.metrics import evaluate
from edgesleep.ort import ExportedModel
from edgesleep.stager import EpochResult, Stager
from edgesleep.stages import to_classes
from edgesleep.synth.night import generate_night, synthesize_dataset, write_night_edf
from edgesleep.train.training import TrainOptions
from edgesleep.train.transfer import train_model

TRAIN_SEED, NIGHT_SEED = 1, 99


def run_demo(
    workdir: Path, channel: str, retrain: bool, echo: Callable[[str], None] = print
) -> dict[str, str]:
    """Run the demo; return the lines of its report (what -> value)."""
    data, ckpt, folder = workdir / "data", workdir / "student.pt", workdir / "model"
    if not (data / "dataset.json").is_file():
        echo(f"synthesizing 6 training nights -> {data}")
        synthesize_dataset(data, n_nights=6, seed=TRAIN_SEED)
    if retrain or not ckpt.is_file():
        echo(f"training a compact student on {channel!r} (about a minute) -> {ckpt}")
        opts = TrainOptions(passes=10, lr=1e-3, eval_every=60, patience=3, class_weighting=True)
        train_model(data, channel, ckpt, "student", 5, opts=opts)
    if retrain or not (folder / "int8" / "encoder.onnx").is_file():
        echo(f"exporting fp32 + int8 -> {folder}")
        export_model(ckpt, folder, ExportOptions(quantize=True, calibration=data))
    model = ExportedModel(folder, "int8")
    night = generate_night(NIGHT_SEED, 0, hypnograms="markov")  # not a training hypnogram
    edf = workdir / "night.edf"
    write_night_edf(edf, night)
    signal = read_signal(edf, channel, sfreq=None)
    echo(f"streaming {edf.name} ({signal.duration_s / 3600:.1f} h) in 1-s packets")
    stager = Stager(model, signal.sfreq, delay=0, channel=signal.channel)
    packet = int(signal.sfreq)
    results: list[EpochResult] = []
    epoch_ms: list[float] = []
    (workdir / "night.csv").unlink(missing_ok=True)
    with CsvSink(workdir / "night.csv", model.info.n_classes) as sink:

        def emit(new: list[EpochResult]) -> None:
            for r in new:
                sink.write(r.index, r.stage, r.probabilities, r.model_stage, r.flags, r.revision)
            results.extend(new)

        for start in range(0, signal.data.shape[0], packet):
            t0 = time.perf_counter()
            new = stager.push(signal.data[start : start + packet])
            if new:
                epoch_ms.append(1000 * (time.perf_counter() - t0))
            emit(new)
        emit(stager.flush())
    stages = np.array([r.stage for r in results])
    truth = to_classes(night.stages[: stages.shape[0]], 5)
    m = evaluate(truth, stages, 5)
    plot_hypnogram(
        workdir / "night.png",
        stages,
        5,
        np.stack([r.probabilities for r in results]),
        truth,
        "SYNTHETIC night, compact student (int8), streamed",
    )
    info = model.info.raw
    size_kb = sum((folder / "int8" / f"{g}.onnx").stat().st_size for g in ("encoder", "sequence"))
    return {
        "model": f"student int8, {size_kb / 1024:.0f} KB, {info['flops']['per_new_epoch']:,} "
        f"FLOPs per epoch, channel {model.info.channel!r}",
        "night": f"{len(results)} epochs streamed from {edf}",
        "agreement with truth": f"acc {m['accuracy']:.3f}, kappa {m['kappa']:.3f}, "
        f"macro F1 {m['macro_f1']:.3f} (5 classes, no delay)",
        "latency per new epoch": f"p50 {np.percentile(epoch_ms, 50):.2f} ms, "
        f"p99 {np.percentile(epoch_ms, 99):.2f} ms (1-s packet that completes an epoch, "
        "1 thread, includes resampling and STFT)",
        "outputs": f"{workdir / 'night.csv'}, {workdir / 'night.png'}",
    }
