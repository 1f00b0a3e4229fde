"""``edgesleep demo``: the whole path on SYNTHETIC data, in a few minutes on a laptop CPU.

Synthesize 6 nights (3 subjects) -> train a compact student on one channel (cached in the
work folder) -> export fp32 + int8 (calibrated on the training nights) -> write a held-out
night (another seed, simulated hypnogram) as EDF+ -> play it as an emulated wearable
(edgesleep protocol on a pseudo-terminal, with garbage bytes between frames) -> read the
port and stream it through the stager (no delay, K = 0) -> hypnogram CSV + PNG, agreement
with the generator's stages, latency per new epoch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgesleep.emulate import Faults, PtyPort, play
from edgesleep.export.pipeline import ExportOptions, export_model
from edgesleep.io.edf import read_signal
from edgesleep.io.writers import CsvSink, plot_hypnogram
from edgesleep.metrics import evaluate
from edgesleep.ort import ExportedModel
from edgesleep.sources import SerialSource
from edgesleep.stager import EpochResult, Stager
from edgesleep.stages import to_classes
from edgesleep.stream import run_stream
from edgesleep.synth.psg import generate_night, synthesize_dataset, write_night_edf
from edgesleep.train.specs import TrainSpec
from edgesleep.train.training import TrainOptions
from edgesleep.train.transfer import train_model

TRAIN_SEED, NIGHT_SEED = 1, 99
SPEED = 1000.0  # x real time: a night in about half a minute


class _TimedStager(Stager):
    """The stager, timing each push that completes an epoch."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.epoch_ms: list[float] = []

    def push(self, samples: np.ndarray, t0: float | None = None) -> list[EpochResult]:
        start = time.perf_counter()
        out = super().push(samples, t0)
        if out:
            self.epoch_ms.append(1000 * (time.perf_counter() - start))
        return out


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
        train_model(TrainSpec(data, channel, ckpt, "student", 5, train=opts))
    if retrain or not (folder / "int8" / "encoder.onnx").is_file():
        echo(f"exporting fp32 + int8 -> {folder}")
        export_model(ckpt, folder, ExportOptions(quantize=True, calibration=data))
    model = ExportedModel(folder, "int8")
    night = generate_night(NIGHT_SEED, 0, hypnograms="markov")  # not a training hypnogram
    edf = workdir / "night.edf"
    write_night_edf(edf, night)
    signal = read_signal(edf, channel, sfreq=None)
    port = PtyPort(workdir / "wearable")
    source = SerialSource(str(port.link))
    source.connected.wait(10)
    echo(
        f"playing {edf.name} ({signal.duration_s / 3600:.1f} h) as a wearable on {port.link} "
        f"at {SPEED:g}x real time"
    )
    faults = Faults(garbage=True)
    player = threading.Thread(
        target=play,
        args=(port, signal.data[:, None], signal.sfreq, (signal.channel,), SPEED, faults),
    )
    player.start()
    stream = source.info()
    stager = _TimedStager(model, stream.sfreq, delay=0, channel=stream.channels[0])
    results: list[EpochResult] = []
    (workdir / "night.csv").unlink(missing_ok=True)
    with CsvSink(workdir / "night.csv", model.info.n_classes) as sink:

        def emit(r: EpochResult) -> None:
            sink.write(r.index, r.stage, r.probabilities, r.model_stage, r.flags, r.revision)
            results.append(r)

        report = run_stream(source, stager, emit)
    player.join()
    port.close()
    epoch_ms = stager.epoch_ms
    stages = np.array([r.stage for r in results])
    truth = to_classes(night.stages[: stages.shape[0]], 5)
    m = evaluate(truth, np.array([r.model_stage for r in results]), 5)
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
        f"macro F1 {m['macro_f1']:.3f} (5 classes, no delay, model stages)",
        "wearable link": f"{int(source.parser.stats['frames'])} frames, "
        f"{int(source.parser.stats['skipped_bytes'])} garbage bytes skipped, "
        f"{int(source.parser.stats['crc_errors'])} CRC failures, {report.gaps} gaps, "
        f"{report.flagged} flagged epochs",
        "latency per new epoch": f"p50 {np.percentile(epoch_ms, 50):.2f} ms, "
        f"p99 {np.percentile(epoch_ms, 99):.2f} ms (the packet that completes an "
        "epoch, 1 thread, includes STFT and readout)",
        "outputs": f"{workdir / 'night.csv'}, {workdir / 'night.png'}",
    }
