"""``edgesleep bench``: what the runtime costs on this machine, per exported model and precision.

Per variant (model folder x fp32/int8) and thread setting (1 and all cores), interleaved in
``ROUNDS`` rounds (each figure: the median over all rounds, and the spread of the round
medians, min-max):

- model time per new epoch, three ways on the same images: the **step** graph (one call:
  the new image and the cached epoch vectors; at delay 0, and at L - 1 for a fused model),
  the **two-call** path (the encoder, then the sequence graph over the window of L cached
  vectors: exports before the step graph, kept as the baseline) and the **naive** stream
  (the last L epochs re-encoded per new epoch); the first L epochs (short windows) are not
  timed;
- achieved GFLOP/s of the step (its FLOPs from the metadata over its time) beside this
  machine's one-thread fp32 matrix product in ONNX Runtime, measured in the same run (the
  floor: what MLAS reaches on a large product);
- end to end as a device runs it: int16 serial frames (0.25 s each, a header every 5 s,
  one read per second) through the serial source's parser and frame handling (one packet
  per read) into the stager: ms of the read that completes an epoch, and CPU-seconds per
  hour streamed; for the step, the two-call and the naive stager;
- the front end per epoch (STFT, resampling when the rate is not 100 Hz);
- offline scoring of a 1000-epoch night; start-up (files verified, the step's session
  made); the bytes a streaming device loads (``step.onnx``) and those of the batched graphs;
- parity of each precision against fp32 on a labelled SYNTHETIC night.

Per model, in fresh processes: peak RSS of a streaming process and its increment over
``python -c "import numpy, onnxruntime"``, and wake-ups per second streaming at real time
(``/proc`` context switches). When torch is installed, torch eager fp32 of the same
architecture is timed beside it.

The measured paths import no scipy and no torch (the synthetic night is generated before
measuring; the RSS process checks that scipy stayed out).
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgesleep import __version__
from edgesleep.bench.parser import FRAME_S, frames_of
from edgesleep.dsp import EPOCH_S
from edgesleep.io.writers import write_report
from edgesleep.metadata import PRECISIONS
from edgesleep.ort import ExportedModel, StepStream, WindowStream, cpu_info
from edgesleep.protocol import Header
from edgesleep.readout import epoch_clock_h
from edgesleep.sources.serial import SerialSource
from edgesleep.stager import FrontEnd, Stager, score_signal

WARMUP_EPOCHS = 5
OFFLINE_EPOCHS = 1000
ROUNDS = 5
UV_PER_LSB = 0.05  # int16 counts of the serial frames
PREFIX_ENV = "EDGESLEEP_BENCH_PREFIX"
BREAKDOWN_SFREQ = 256.0  # a wearable's rate, beside the model's 100 Hz
STREAM_GOAL_CPU_S_PER_H = 0.06  # issue 33: the student int8 end to end at 0.25-s frames


def quantiles(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99 in ms."""
    ms = 1000 * np.asarray(seconds, dtype=np.float64)
    return {f"p{q}": round(float(np.percentile(ms, q)), 4) for q in (50, 90, 99)}


def over_rounds(rounds: Sequence[Sequence[float]]) -> dict[str, Any]:
    """Quantiles over every round's samples (seconds -> ms) and the spread of the round
    medians (ms, min and max)."""
    medians = [1000 * float(np.median(r)) for r in rounds]
    return {
        **quantiles([x for r in rounds for x in r]),
        "spread": [round(min(medians), 4), round(max(medians), 4)],
    }


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


class NaiveStream(WindowStream):
    """No epoch-vector cache: each new epoch re-encodes the last L epochs in one batched
    encoder call, then runs the sequence model."""

    def __init__(self, model: ExportedModel) -> None:
        super().__init__(model)
        self.images: deque[np.ndarray] = deque(maxlen=model.seq_len)
        self.epochs: deque[int] = deque(maxlen=model.seq_len)

    def reset(self) -> None:
        self.images.clear()
        self.epochs.clear()

    def window(self, image: np.ndarray, epoch: int | None = None) -> np.ndarray:
        self.images.append(image)
        self.epochs.append(0 if epoch is None else epoch)
        return self.model.encode(np.stack(self.images), epoch_clock_h(self.epochs))[None]


class TwoCallStager(Stager):
    """The baseline before the step graph: the encoder on the new epoch, then the sequence
    model on the window of L cached vectors (same readout)."""

    def _calls(self) -> WindowStream:
        return WindowStream(self.model)


class NaiveStager(Stager):
    """The naive baseline (same readout): :class:`NaiveStream`."""

    def _calls(self) -> WindowStream:
        return NaiveStream(self.model)


STAGERS: dict[str, type[Stager]] = {"step": Stager, "two-call": TwoCallStager,
                                    "naive": NaiveStager}  # fmt: skip


def synthetic_night(sfreq: float, n_epochs: int, channel: str, seed: int = 0) -> dict[str, Any]:
    """A labelled SYNTHETIC night of ``n_epochs`` (generator, Markov hypnogram)."""
    from edgesleep.synth.hypnograms import markov_model
    from edgesleep.synth.psg import CHANNELS, generate_night

    rng = np.random.default_rng(seed)
    stages = np.concatenate([markov_model().sample(rng, 5) for _ in range(3)])[:n_epochs]
    night = generate_night(seed, 0, sfreq, stages=stages)
    name = channel if channel in CHANNELS else CHANNELS[0]
    return {"signal": night.signals[name], "stages": stages}


def serial_reads(signal: np.ndarray, sfreq: float) -> list[bytes]:
    """The night as a device sends it (:func:`edgesleep.bench.parser.frames_of`: int16
    frames of 0.25 s, a header every 5 s), grouped into one read per second."""
    counts = np.clip(np.round(signal / UV_PER_LSB), -32768, 32767).astype(np.int16)[:, None]
    frames = frames_of(counts, Header(sfreq, ("EEG",), uv_per_lsb=UV_PER_LSB))
    per_read = int(round(1 / FRAME_S))  # data frames per read
    reads, chunk, n_data = [], [], 0
    for frame in frames:
        chunk.append(frame)
        n_data += frame is not frames[0]
        if n_data == per_read:
            reads.append(b"".join(chunk))
            chunk, n_data = [], 0
    return reads + ([b"".join(chunk)] if chunk else [])


def end_to_end(stager: Stager, reads: Sequence[bytes], hours: float) -> tuple[list[float], float]:
    """The reads as a device's stream runs them: the serial source's parser and frame
    handling (:meth:`SerialSource.receive`: one packet per read), its queue, the stager.
    Seconds of each read that completed an epoch (after warm-up) and CPU-seconds per hour
    streamed."""
    source, per_epoch = SerialSource.detached(), []
    parser, queue = source.parser, source.queue
    cpu0 = time.process_time()
    for chunk in reads:
        t0 = time.perf_counter()
        source.receive(parser.feed(chunk))
        out = []
        while not queue.empty():
            out += stager.feed(queue.get())
        if out:
            per_epoch.append(time.perf_counter() - t0)
    cpu = time.process_time() - cpu0
    assert parser.stats["crc_errors"] == 0 and source.counters["queue_drops"] == 0
    return per_epoch[WARMUP_EPOCHS:], cpu / hours


BREAKDOWN = (  # (label, class, method): where a streamed hour's CPU goes (see cost_breakdown)
    ("parser", "edgesleep.protocol:Parser", "feed"),
    ("source: frames to packets", "edgesleep.sources.serial:SerialSource", "receive"),
    ("stager (all of it)", "edgesleep.stager:Staging", "feed"),
    ("repair and quality", "edgesleep.stager:FrontEnd", "_repair"),
    ("resampler", "edgesleep.dsp.resampling:StreamingResampler", "push"),
    ("image (STFT)", "edgesleep.dsp.stft:StftStream", "push"),
    ("epoch: model and readout", "edgesleep.stager:Staging", "_epoch"),
    ("model", "edgesleep.ort:StepStream", "logits"),
    ("sink: night file", "edgesleep.night_file:NightSink", "epoch"),
)


def cost_breakdown(model: ExportedModel, reads: Sequence[bytes], hours: float,
                   sfreq: float, rounds: int = 3) -> dict[str, float]:  # fmt: skip
    """CPU-s per streamed hour of each part of :func:`end_to_end` (plus the night file,
    written as a stream does): each method of ``BREAKDOWN`` timed (``perf_counter``,
    inclusive) in a run with timers around them, the least of ``rounds`` runs; the nested
    parts are then told apart (the stager's own share is the stager less its front-end
    parts and the epoch; the readout is the epoch less the model). ``total`` is a run
    without timers (the parts add up to a little more: the timers' own cost)."""
    import importlib
    import tempfile

    from edgesleep.night_file import NightSink

    spent: dict[str, float] = {}
    originals = []

    def timed_method(label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[label] += time.perf_counter() - t0

        return wrapper

    def one_run(timers: bool) -> dict[str, float]:
        for label, _, _ in BREAKDOWN:
            spent[label] = 0.0
        with tempfile.TemporaryDirectory() as tmp:
            night = NightSink(Path(tmp) / "night.csv", model.info.n_classes, False, False)
            night.start({"device_id": "bench"})
            stager = Stager(model, sfreq, delay=0)
            source = SerialSource.detached()
            parser, queue = source.parser, source.queue
            cpu0 = time.process_time()
            for chunk in reads:
                source.receive(parser.feed(chunk))
                while not queue.empty():
                    for r in stager.feed(queue.get()):
                        night.epoch(r)
            cpu = time.process_time() - cpu0
            night.close()
        return {"total": cpu, **({k: v for k, v in spent.items()} if timers else {})}

    untimed = min((one_run(False) for _ in range(rounds)), key=lambda r: r["total"])
    try:
        for label, where, name in BREAKDOWN:
            module, cls_name = where.split(":")
            cls = getattr(importlib.import_module(module), cls_name)
            originals.append((cls, name, cls.__dict__[name]))
            setattr(cls, name, timed_method(label, cls.__dict__[name]))
        timed = min((one_run(True) for _ in range(rounds)), key=lambda r: r["stager (all of it)"])
    finally:
        for cls, name, fn in reversed(originals):
            setattr(cls, name, fn)
    front = timed["repair and quality"] + timed["resampler"] + timed["image (STFT)"]
    parts = {
        "parser": timed["parser"],
        "source: frames to packets": timed["source: frames to packets"],
        "stager: packets, waiting samples, flat check": timed["stager (all of it)"]
        - front
        - timed["epoch: model and readout"],
        "repair and quality": timed["repair and quality"],
        "resampler": timed["resampler"],
        "image (STFT)": timed["image (STFT)"],
        "model": timed["model"],
        "readout": timed["epoch: model and readout"] - timed["model"],
        "sink: night file": timed["sink: night file"],
    }
    out = {k: round(v / hours, 4) for k, v in parts.items()}
    out["total"] = round(untimed["total"] / hours, 4)
    return out


def stream_costs(
    model: ExportedModel, reads: Sequence[bytes], hours: float, sfreq: float, rounds: int
) -> dict[str, Any]:
    """End to end (parser + stager) per new epoch and CPU-s per hour for the step, the
    two-call and the naive stager at delay 0, interleaved over ``rounds``."""
    samples: dict[str, list[list[float]]] = {k: [] for k in STAGERS}
    cpu: dict[str, list[float]] = {k: [] for k in STAGERS}
    for _ in range(rounds):
        for name, kind in STAGERS.items():
            per_epoch, cpu_s = end_to_end(kind(model, sfreq, delay=0), reads, hours)
            samples[name].append(per_epoch)
            cpu[name].append(cpu_s)
    return {
        name: {
            "end_to_end_ms": over_rounds(samples[name]),
            "cpu_s_per_hour": round(float(np.median(cpu[name])), 4),
            "cpu_s_per_hour_spread": [round(min(cpu[name]), 4), round(max(cpu[name]), 4)],
        }
        for name in STAGERS
    }


def front_end_images(model: ExportedModel, signal: np.ndarray, sfreq: float,
                     ) -> tuple[list[np.ndarray], list[float]]:  # fmt: skip
    """The night's images through the model's front end in 1-s packets, and the seconds
    each epoch's packets took."""
    front, packet = FrontEnd(sfreq, kind=model.info.input["kind"]), int(round(sfreq))
    images, front_s, acc = [], [], 0.0
    for start in range(0, signal.shape[0], packet):
        t0 = time.perf_counter()
        done = front.push(signal[start : start + packet])
        acc += time.perf_counter() - t0
        if done:
            images += [image for _, image, _ in done]
            front_s.append(acc)
            acc = 0.0
    return images, front_s[WARMUP_EPOCHS:]


def model_paths(model: ExportedModel) -> dict[str, Callable[[], StepStream | WindowStream]]:
    """The ways to make a new epoch's logits: the step graph (delay 0, and L - 1 for a fused
    model), the two-call path, the naive stream."""
    last = model.seq_len - 1
    paths: dict[str, Callable[[], StepStream | WindowStream]] = {
        "step_delay_0": lambda: StepStream(model, 0)
    }
    if model.fixed_delay is None:
        paths[f"step_delay_{last}"] = lambda: StepStream(model, last)
    paths["two_call"] = lambda: WindowStream(model)
    paths["naive"] = lambda: NaiveStream(model)
    return paths


def model_costs(model: ExportedModel, images: Sequence[np.ndarray], rounds: int) -> dict[str, Any]:
    """ms per new epoch of each of :func:`model_paths`, interleaved over ``rounds``; the
    first L epochs (windows still growing) are not timed."""
    paths = model_paths(model)
    times: dict[str, list[list[float]]] = {k: [] for k in paths}
    for _ in range(rounds):
        for name, make in paths.items():
            stream, spent = make(), []
            for t, image in enumerate(images):
                t0 = time.perf_counter()
                stream.logits(image, t)
                spent.append(time.perf_counter() - t0)
            times[name].append(spent[model.seq_len :])
    return {name: over_rounds(t) for name, t in times.items()}


MATMUL_SCRIPT = """
import time, numpy as np
n, repeats = {size}, {repeats}
a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
a @ a
spent = []
for _ in range(repeats):
    t0 = time.perf_counter()
    a @ a
    spent.append(time.perf_counter() - t0)
print(2 * n**3 / float(np.median(spent)) / 1e9)
"""


def matmul_floor_gflops(size: int = 512, repeats: int = 20) -> float:
    """This machine's one-thread fp32 matrix product (numpy's BLAS, size^3, the median of
    ``repeats``) in a fresh process limited to one BLAS thread: the floor that small
    batch-1 graphs are measured against."""
    env = {**os.environ, **{k: "1" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                             "MKL_NUM_THREADS")}}  # fmt: skip
    code = MATMUL_SCRIPT.format(size=size, repeats=repeats)
    run = subprocess.run([*interpreter(), "-c", code], check=True, capture_output=True,
                         text=True, env=env, cwd=tempfile.gettempdir())  # fmt: skip
    return round(float(run.stdout), 2)


def torch_costs(info: Any, repeats: int) -> dict[str, Any] | None:
    """torch eager fp32 of the same architecture (random weights: timing only)."""
    try:
        import torch

        from edgesleep.train.models import build, make_config
    except ImportError:
        return None
    torch.set_num_threads(1)
    config = info.raw["model"]["config"]
    model = build(info.model, make_config(info.model, **config)).eval()
    image = torch.zeros(1, int(info.input["n_frames"]), int(info.input["n_freqs"]))
    with torch.no_grad():
        vectors = model.encoder(image).repeat(info.seq_len, 1)[None]
        enc = [timed(lambda: model.encoder(image)) for _ in range(repeats)]
        seq = [timed(lambda: model.sequence(vectors)) for _ in range(repeats)]
    return {
        "encoder_ms": quantiles(enc[WARMUP_EPOCHS:]),
        "sequence_ms": quantiles(seq[WARMUP_EPOCHS:]),
        "torch": torch.__version__,
    }


def parity(
    fp32: ExportedModel, model: ExportedModel, night: dict[str, Any], sfreq: float
) -> dict[str, Any]:
    """Against fp32 on the labelled synthetic night (no delay and the default delay)."""
    from edgesleep.metrics import evaluate
    from edgesleep.stages import to_classes

    ref = score_signal(fp32, night["signal"], sfreq)
    got = score_signal(model, night["signal"], sfreq)
    p_ref = np.stack([r.probabilities for r in ref])
    p_got = np.stack([r.probabilities for r in got])
    truth = to_classes(night["stages"][: len(got)], model.info.n_classes)
    pred = np.array([r.model_stage for r in got])
    return {
        "max_abs_prob_diff": round(float(np.abs(p_ref - p_got).max()), 6),
        "argmax_agreement": round(float((p_ref.argmax(1) == p_got.argmax(1)).mean()), 5),
        "accuracy": round(float(evaluate(truth, pred, model.info.n_classes)["accuracy"]), 4),  # type: ignore[arg-type]
        "epochs": len(got),
    }


def interpreter() -> list[str]:
    """The command that starts a fresh Python like this one: ``$EDGESLEEP_BENCH_PREFIX``
    (an emulator such as ``qemu-aarch64``, where the kernel cannot exec this interpreter)
    followed by ``sys.executable``."""
    return [*shlex.split(os.environ.get(PREFIX_ENV, "")), sys.executable]


def process_costs(
    folder: Path, precision: str, sfreq: float, realtime_s: float, signal: np.ndarray
) -> dict[str, Any]:  # fmt: skip
    """Fresh processes: peak RSS streaming ``signal`` vs the numpy+onnxruntime floor;
    wake-ups/s.

    They start in the temporary directory: started in a checkout, ``python -m`` would put
    the checkout's ``edgesleep/`` first on ``sys.path``, shadowing the installed package
    (whose ``bench``, ``train`` and ``export`` live elsewhere in the checkout).
    """
    neutral = tempfile.gettempdir()
    base = subprocess.run(
        [*interpreter(), "-c", "import numpy, onnxruntime, pathlib\n"
         "s = pathlib.Path('/proc/self/status').read_text()\n"
         "print(next(l.split()[1] for l in s.splitlines() if l.startswith('VmHWM:')))"],
        check=True, capture_output=True, text=True, cwd=neutral,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "signal.f64"
        signal.astype(np.float64).tofile(path)
        args = [*interpreter(), "-m", "edgesleep.bench.process", str(folder.resolve()), precision]
        run = subprocess.run(
            [*args, str(sfreq), str(realtime_s), str(path)],
            check=True, capture_output=True, text=True, cwd=neutral,
        )  # fmt: skip
    got = json.loads(run.stdout)
    floor_mb = int(base.stdout) / 1024
    return {
        "peak_rss_mb": round(got["maxrss_kb"] / 1024, 1),
        "floor_rss_mb": round(floor_mb, 1),
        "rss_increment_mb": round(got["maxrss_kb"] / 1024 - floor_mb, 1),
        "scipy_imported": got["scipy_imported"],
        "torch_imported": got["torch_imported"],
        "wakeups_per_s": got["wakeups_per_s"],
        "realtime_s": realtime_s,
    }


def _bytes(folder: Path, graphs: Sequence[str]) -> int:
    files = [folder / f"{g}.onnx" for g in graphs]
    return sum(f.stat().st_size for f in files if f.is_file())


def bench_variant(
    folder: Path, precision: str, threads: int, night: dict[str, Any], sfreq: float,
    fp32: ExportedModel,
) -> dict[str, Any]:  # fmt: skip
    """One variant; parity against ``fp32`` at one thread."""
    t0 = time.perf_counter()
    model = ExportedModel(folder, precision, threads=threads)
    assert model.step is not None
    model.step.session  # noqa: B018 (made here: start-up includes the session a stream needs)
    startup = time.perf_counter() - t0
    flops = model.info.raw["flops"]
    images, front_s = front_end_images(model, night["signal"], sfreq)
    rounds = night["rounds"]
    row: dict[str, Any] = {
        "model": model.info.model,
        "precision": precision,
        "threads": threads,
        "step_bytes": _bytes(model.folder, ["step"]),
        "batched_bytes": _bytes(model.folder, ["encoder", "sequence"]),
        "startup_ms": round(1000 * startup, 2),
        "flops": {k: int(v) for k, v in flops.items()},
        "model_ms": model_costs(model, images, rounds),
        "front_end_ms": quantiles(front_s),
        "stream": stream_costs(model, night["reads"], night["hours"], sfreq, rounds),
    }
    step_ms = row["model_ms"]["step_delay_0"]["p50"]
    row["gflops_per_s"] = {
        "step_delay_0": round(flops["step_per_new_epoch_delay_0"] / step_ms / 1e6, 2),
        "two_call": round(flops["per_new_epoch"] / row["model_ms"]["two_call"]["p50"] / 1e6, 2),
    }
    offline = night["offline"]
    row["offline_s"] = round(min(timed(lambda: score_signal(model, offline, sfreq))
                                 for _ in range(night["offline_repeats"])), 4)  # fmt: skip
    if threads == 1:
        row["parity_vs_fp32"] = parity(fp32, model, night, sfreq)
        row["breakdown"] = {
            f"{rate:g}": cost_breakdown(model, reads, hours, rate)
            for rate, (reads, hours) in night["breakdown"].items()
        }
    return row


def run(
    folders: Sequence[Path], quick: bool = False, sfreq: float = 100.0,
    progress: Callable[[str], None] = lambda s: None, realtime_s: float | None = None,
    thread_counts: Sequence[int] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Benchmark every exported model folder; return the JSON-able result.
    ``realtime_s``: how long the wake-up process streams at real time (5 s quick, 20 s);
    ``thread_counts``: onnxruntime intra-op threads to measure (1 and all cores)."""
    n_epochs = 40 if quick else 240
    realtime_s = realtime_s if realtime_s is not None else 5.0 if quick else 20.0
    all_threads = os.cpu_count() or 1
    rows, processes, baselines = [], {}, {}
    progress("one-thread fp32 matrix product (the floor)")
    floor = matmul_floor_gflops()
    for folder in folders:
        probe = ExportedModel(folder, "fp32")
        night = synthetic_night(sfreq, n_epochs, probe.info.signal_channel)
        reps = max(1, OFFLINE_EPOCHS // n_epochs + 1)
        night["offline"] = np.tile(night["signal"], reps)[: int(OFFLINE_EPOCHS * EPOCH_S * sfreq)]
        night["offline_repeats"] = 1 if quick else 3
        night["rounds"] = 2 if quick else ROUNDS
        night["reads"] = serial_reads(night["signal"], sfreq)
        night["hours"] = night["signal"].shape[0] / sfreq / 3600
        night["breakdown"] = {}  # where the CPU goes, at this rate and at 256 Hz
        for rate in sorted({sfreq, BREAKDOWN_SFREQ}):
            signal = synthetic_night(rate, n_epochs, probe.info.signal_channel)["signal"]
            night["breakdown"][rate] = (serial_reads(signal, rate), n_epochs * EPOCH_S / 3600)
        name = probe.info.model
        precisions = [p for p in PRECISIONS if (folder / p / "step.onnx").is_file()]
        for precision in precisions:
            for threads in thread_counts or sorted({1, all_threads}):
                progress(f"{name} {precision} {threads} thread(s)")
                rows.append(bench_variant(folder, precision, threads, night, sfreq, probe))
            progress(f"{name} {precision}: memory and wake-ups (fresh processes)")
            processes[f"{name}/{precision}"] = process_costs(
                folder, precision, sfreq, realtime_s, night["signal"]
            )
        progress(f"{name}: torch eager baseline")
        baselines[name] = torch_costs(probe.info, 60 if quick else 300)
    return {
        "edgesleep": __version__,
        "cpu": {**cpu_info(), "cores": all_threads, "python": platform.python_version()},
        "quick": quick,
        "sfreq": sfreq,
        "epochs_streamed": n_epochs,
        "rounds": 2 if quick else ROUNDS,
        "synthetic": True,
        "matmul_gflops_1_thread": floor,
        "models": [str(f) for f in folders],
        "rows": rows,
        "processes": processes,
        "torch_eager": baselines,
    }


STUDENT_STEP_BYTES = 60 * 1024  # sleepecg 0.6's shipped classifier is 60 KB


def goals(result: dict[str, Any]) -> list[list[str]]:
    """Issue 22's goals on one thread, each a ratio from this run or a size/memory figure:
    what, variant, measured, goal, met."""
    out = []

    def add(what: str, variant: str, value: float, text: str, goal: str, met: bool) -> None:
        out.append([what, variant, text.format(value), goal, "yes" if met else "NO"])

    one = [r for r in result["rows"] if r["threads"] == 1]
    for r in one:
        ms, variant = r["model_ms"], f"{r['model']} {r['precision']}"
        two = ms["two_call"]["p50"]
        add("model time per new epoch, two-call / step at delay 0", variant,
            two / ms["step_delay_0"]["p50"], "{:.2f}x", ">= 1.3x",
            two / ms["step_delay_0"]["p50"] >= 1.3)  # fmt: skip
        for key in ms:
            if key.startswith("step_delay_") and key != "step_delay_0":
                ratio = two / ms[key]["p50"]
                add(f"model time, two-call / step at delay {key.rsplit('_', 1)[1]}", variant,
                    ratio, "{:.2f}x", ">= 1.0x (no slower)", ratio >= 1.0)  # fmt: skip
    students = {r["precision"]: r for r in one if r["model"] == "student"}
    if {"fp32", "int8"} <= set(students):
        fp32, int8 = (students[p]["model_ms"]["step_delay_0"]["p50"] for p in ("fp32", "int8"))
        add("student step, fp32 / int8 model time", "student", fp32 / int8, "{:.2f}x",
            "> 1x (int8 faster)", fp32 > int8)  # fmt: skip
    if "int8" in students:
        kb = students["int8"]["step_bytes"] / 1024
        add("student int8: what a streaming device loads (step.onnx), KB", "student int8", kb,
            "{:.1f}", "< 60", kb < STUDENT_STEP_BYTES / 1024)  # fmt: skip
    for r in one:
        if r["model"] == "student" and r["precision"] == "int8":
            v = r["stream"]["step"]["cpu_s_per_hour"]
            add("end to end (serial frames of 0.25 s, read once a second), CPU-s per streamed "
                f"hour at {result['sfreq']:g} Hz", "student int8", v, "{:.3f}",
                f"<= {STREAM_GOAL_CPU_S_PER_H}", v <= STREAM_GOAL_CPU_S_PER_H)  # fmt: skip
    for name, p in result["processes"].items():
        v = p["rss_increment_mb"]
        add("streaming RSS increment over numpy + onnxruntime, MB", name, v, "{:.1f}", "<= 20",
            v <= 20)  # fmt: skip
    return out


def markdown(result: dict[str, Any]) -> str:
    cpu = result["cpu"]

    def q(d: dict[str, Any]) -> str:
        lo, hi = d["spread"] if "spread" in d else (None, None)
        spread = f" ({lo:.3f}–{hi:.3f})" if lo is not None else ""
        return f"{d['p50']:.3f}{spread}"

    lines = [
        "# edgesleep bench" + (" (quick)" if result["quick"] else ""),
        "",
        f"CPU: {cpu['model']} ({cpu['machine']}, {cpu['cores']} cores; "
        f"{', '.join(cpu['isa']) or 'no listed ISA flags'}), onnxruntime {cpu['onnxruntime']}, "
        f"Python {cpu['python']}, edgesleep {result['edgesleep']}. Signal: a SYNTHETIC night "
        f"at {result['sfreq']:g} Hz, {result['epochs_streamed']} epochs, {result['rounds']} "
        "interleaved rounds. Times in ms per new epoch: the median over all rounds (the "
        "first L epochs untimed), in brackets the spread of the round medians (min–max). "
        f"One-thread fp32 matrix product on this machine (numpy BLAS, 512³): "
        f"**{result['matmul_gflops_1_thread']:.1f} GFLOP/s**.",
        "",
        "Model time per new epoch (the model calls alone):",
        "",
        "| model | precision | threads | step, delay 0 | step, delay L-1 | two-call | naive | "
        "two-call / step (delay 0) | GFLOP/s step (two-call) | step KB | encoder + sequence KB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        ms = r["model_ms"]
        last = next((v for k, v in ms.items() if k.startswith("step_delay_") and
                     k != "step_delay_0"), None)  # fmt: skip
        lines.append(
            f"| {r['model']} | {r['precision']} | {r['threads']} | {q(ms['step_delay_0'])} | "
            f"{q(last) if last else '- (causal)'} | {q(ms['two_call'])} | {q(ms['naive'])} | "
            f"{ms['two_call']['p50'] / ms['step_delay_0']['p50']:.2f}x | "
            f"{r['gflops_per_s']['step_delay_0']:.1f} ({r['gflops_per_s']['two_call']:.1f}) | "
            f"{r['step_bytes'] / 1024:.1f} | {r['batched_bytes'] / 1024:.1f} |"
        )
    lines += [
        "",
        "End to end as a device runs it (serial frames of 0.25 s read once a second -> the "
        "serial source's parser and frame handling -> the stager, delay 0), the read that "
        "completes an epoch, and CPU-seconds per hour streamed (median, spread):",
        "",
        "| model | precision | threads | front end | e2e step | e2e two-call | e2e naive | "
        "CPU-s/h step | CPU-s/h two-call | CPU-s/h naive | start-up ms | 1000 epochs offline s "
        "| agree vs fp32 | acc |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        st, par = r["stream"], r.get("parity_vs_fp32")

        def cpu_h(d: dict[str, Any]) -> str:
            lo, hi = d["cpu_s_per_hour_spread"]
            return f"{d['cpu_s_per_hour']:.3f} ({lo:.3f}–{hi:.3f})"

        lines.append(
            f"| {r['model']} | {r['precision']} | {r['threads']} | {r['front_end_ms']['p50']:.3f} "
            f"| {q(st['step']['end_to_end_ms'])} | {q(st['two-call']['end_to_end_ms'])} | "
            f"{q(st['naive']['end_to_end_ms'])} | {cpu_h(st['step'])} | {cpu_h(st['two-call'])} "
            f"| {cpu_h(st['naive'])} | {r['startup_ms']:.1f} | {r['offline_s']:.3f} | "
            + (f"{100 * par['argmax_agreement']:.2f} % | {par['accuracy']:.3f} |" if par
               else "- | - |")
        )  # fmt: skip
    with_parts = [r for r in result["rows"] if r.get("breakdown")]
    if with_parts:
        rates = list(with_parts[0]["breakdown"])
        parts = list(with_parts[0]["breakdown"][rates[0]])
        lines += [
            "",
            "Where a streamed hour's CPU goes, one thread, delay 0 (CPU-s per streamed hour; "
            "each part timed inclusively in a run with timers around it, the least of 3 runs; "
            "`total`: a run without timers, the night file included; the parts add up to a "
            "little more, the timers' own cost):",
            "",
            "| part | " + " | ".join(f"{r['model']} {r['precision']}, {rate} Hz"
                                    for r in with_parts for rate in rates) + " |",
            "|---|" + "---|" * (len(with_parts) * len(rates)),
        ]  # fmt: skip
        for part in parts:
            lines.append(f"| {part} | " + " | ".join(f"{r['breakdown'][rate][part]:.4f}"
                         for r in with_parts for rate in rates) + " |")  # fmt: skip
    lines += ["", "| baseline | model | encoder | sequence |", "|---|---|---|---|"]
    for name, t in result["torch_eager"].items():
        if t:
            enc, seq = t["encoder_ms"]["p50"], t["sequence_ms"]["p50"]
            lines.append(f"| torch {t['torch']} eager fp32, 1 thread | {name} | {enc:.3f} | "
                         f"{seq:.3f} |")  # fmt: skip
    lines += [
        "",
        "| process (streams through the step) | peak RSS MB | floor (numpy + onnxruntime) MB | "
        "increment MB | wake-ups/s at real time | scipy imported | torch imported |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, p in result["processes"].items():
        lines.append(f"| {name} | {p['peak_rss_mb']} | {p['floor_rss_mb']} | "
                     f"{p['rss_increment_mb']} | {p['wakeups_per_s']} | {p['scipy_imported']} | "
                     f"{p['torch_imported']} |")  # fmt: skip
    lines += ["", "| goal (one thread) | variant | measured | goal | met |",
              "|---|---|---|---|---|"]  # fmt: skip
    lines += [f"| {' | '.join(g)} |" for g in goals(result)]
    return "\n".join(lines) + "\n"


def summary_rows(result: dict[str, Any]) -> list[list[str]]:
    """Per variant: step and two-call model ms, end to end ms, CPU-s per hour, offline s, KB
    (p50)."""
    return [
        [
            f"{r['model']} {r['precision']} {r['threads']}t",
            f"{r['model_ms']['step_delay_0']['p50']:.3f}",
            f"{r['model_ms']['two_call']['p50']:.3f}",
            f"{r['stream']['step']['end_to_end_ms']['p50']:.3f}",
            f"{r['stream']['step']['cpu_s_per_hour']:.3f}",
            f"{r['offline_s']:.3f}",
            f"{r['step_bytes'] / 1024:.0f}",
        ]
        for r in result["rows"]
    ]


def write(result: dict[str, Any], out: Path, stem: str = "bench") -> None:
    write_report(out, stem, result, markdown(result))
