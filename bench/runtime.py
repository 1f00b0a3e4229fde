"""``edgesleep bench``: what the runtime costs on this machine, per exported model and precision.

Per variant (model folder x fp32/int8) and thread setting (1 and all cores):

- streaming in 1-s packets at max speed: per new epoch, p50/p90/p99 after ``WARMUP_EPOCHS``,
  of the encoder (one epoch), the sequence model (one window of L cached vectors), the
  front end (STFT, and resampling when the rate is not 100 Hz; the packets of one epoch), and
  end to end through the stager (the packet that completes an epoch);
- CPU-seconds per hour of signal streamed (process time of the whole stream / hours);
- offline scoring of a 1000-epoch night (batched, same front end); session start-up; size;
- FLOPs per new epoch from the metadata and the GFLOP/s that the model p50 achieves;
- parity of each precision against fp32 on a labelled SYNTHETIC night (probabilities,
  argmax agreement, accuracy of each against the generator's stages).

Baselines in the same run: the naive stream (the same stager re-encoding the last L epochs
in one batched call per new epoch, no epoch-vector cache) and, when torch is installed,
torch eager fp32 of the same architecture. Per model, in fresh processes: peak RSS of a
streaming process and its increment over ``python -c "import numpy, onnxruntime"``, and
wake-ups per second of a process streaming at real time (``/proc`` context switches).

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
from edgesleep.dsp import EPOCH_S
from edgesleep.io.writers import write_report
from edgesleep.metadata import PRECISIONS
from edgesleep.ort import ExportedModel, cpu_info
from edgesleep.stager import FrontEnd, Stager, score_signal

WARMUP_EPOCHS = 5
OFFLINE_EPOCHS = 1000
PREFIX_ENV = "EDGESLEEP_BENCH_PREFIX"


def quantiles(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99 in ms."""
    ms = 1000 * np.asarray(seconds, dtype=np.float64)
    return {f"p{q}": round(float(np.percentile(ms, q)), 4) for q in (50, 90, 99)}


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


class NaiveStager(Stager):
    """The baseline: no epoch-vector cache; each new epoch re-encodes the last L epochs in
    one batched encoder call, then runs the sequence model (same readout)."""

    def reset(self) -> None:
        super().reset()
        self.images: deque[np.ndarray] = deque(maxlen=self.seq_len)

    def _window(self, image: np.ndarray) -> np.ndarray:
        self.images.append(image)
        return self.model.encode(np.stack(self.images))[None]


def synthetic_night(sfreq: float, n_epochs: int, channel: str, seed: int = 0) -> dict[str, Any]:
    """A labelled SYNTHETIC night of ``n_epochs`` (generator, Markov hypnogram)."""
    from edgesleep.synth.hypnograms import markov_model
    from edgesleep.synth.night import CHANNELS, generate_night

    rng = np.random.default_rng(seed)
    stages = np.concatenate([markov_model().sample(rng, 5) for _ in range(3)])[:n_epochs]
    night = generate_night(seed, 0, sfreq, stages=stages)
    name = channel if channel in CHANNELS else CHANNELS[0]
    return {"signal": night.signals[name], "stages": stages}


def stream_costs(stager: Stager, signal: np.ndarray, sfreq: float) -> dict[str, Any]:
    """Stream ``signal`` in 1-s packets; time each packet that completes an epoch."""
    packet = int(round(sfreq))
    per_epoch, cpu0 = [], time.process_time()
    for start in range(0, signal.shape[0], packet):
        t0 = time.perf_counter()
        out = stager.push(signal[start : start + packet])
        if out:
            per_epoch.append(time.perf_counter() - t0)
    cpu = time.process_time() - cpu0
    hours = signal.shape[0] / sfreq / 3600
    return {
        "end_to_end_ms": quantiles(per_epoch[WARMUP_EPOCHS:]),
        "cpu_s_per_hour": round(cpu / hours, 4),
    }


def component_costs(model: ExportedModel, signal: np.ndarray, sfreq: float) -> dict[str, Any]:
    """Encoder, sequence model and front end (the model's input kind) per new epoch, timed
    apart."""
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
    seq_len = model.info.seq_len
    window = np.repeat(model.encode(images[0][None]), seq_len, axis=0)[None]
    enc_s, seq_s, naive_s = [], [], []
    for i, image in enumerate(images):
        t0 = time.perf_counter()
        model.encode(image[None])
        enc_s.append(time.perf_counter() - t0)
        seq_s.append(timed(lambda: model.logits(window)))
        last = np.stack(images[max(0, i + 1 - seq_len) : i + 1])
        t0 = time.perf_counter()
        model.logits(model.encode(last)[None])
        naive_s.append(time.perf_counter() - t0)
    return {
        "encoder_ms": quantiles(enc_s[WARMUP_EPOCHS:]),
        "sequence_ms": quantiles(seq_s[WARMUP_EPOCHS:]),
        "front_end_ms": quantiles(front_s[WARMUP_EPOCHS:]),
        "naive_model_ms_p50": quantiles(naive_s[seq_len:])["p50"],
    }


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


def process_costs(folder: Path, precision: str, sfreq: float, realtime_s: float) -> dict[str, Any]:
    """Fresh processes: peak RSS streaming vs the numpy+onnxruntime floor; wake-ups/s.

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
    args = [*interpreter(), "-m", "edgesleep.bench.process", str(folder.resolve()), precision]
    run = subprocess.run(
        [*args, str(sfreq), str(realtime_s)],
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


def bench_variant(
    folder: Path, precision: str, threads: int, night: dict[str, Any], sfreq: float,
    fp32: ExportedModel,
) -> dict[str, Any]:  # fmt: skip
    """One variant; parity against ``fp32`` at one thread."""
    t0 = time.perf_counter()
    model = ExportedModel(folder, precision, threads=threads)
    startup = time.perf_counter() - t0
    signal = night["signal"]
    flops = int(model.info.raw["flops"]["per_new_epoch"])
    row: dict[str, Any] = {
        "model": model.info.model,
        "precision": precision,
        "threads": threads,
        "bytes": sum((folder / precision / f"{g}.onnx").stat().st_size
                     for g in ("encoder", "sequence")),
        "startup_ms": round(1000 * startup, 2),
        "flops_per_new_epoch": flops,
        "stream": stream_costs(Stager(model, sfreq, delay=0), signal, sfreq),
        "naive_stream": stream_costs(NaiveStager(model, sfreq, delay=0), signal, sfreq),
        **component_costs(model, signal, sfreq),
    }  # fmt: skip
    model_ms = row["encoder_ms"]["p50"] + row["sequence_ms"]["p50"]
    row["model_ms_p50"] = round(model_ms, 4)
    row["gflops_per_s"] = round(flops / (model_ms / 1000) / 1e9, 2)
    offline = night["offline"]
    row["offline_s"] = round(min(timed(lambda: score_signal(model, offline, sfreq))
                                 for _ in range(night["offline_repeats"])), 4)  # fmt: skip
    if threads == 1:
        row["parity_vs_fp32"] = parity(fp32, model, night, sfreq)
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
    for folder in folders:
        probe = ExportedModel(folder, "fp32")
        night = synthetic_night(sfreq, n_epochs, probe.info.channel)
        reps = max(1, OFFLINE_EPOCHS // n_epochs + 1)
        night["offline"] = np.tile(night["signal"], reps)[: int(OFFLINE_EPOCHS * EPOCH_S * sfreq)]
        night["offline_repeats"] = 1 if quick else 3
        name = probe.info.model
        precisions = [p for p in PRECISIONS if (folder / p / "encoder.onnx").is_file()]
        for precision in precisions:
            for threads in thread_counts or sorted({1, all_threads}):
                progress(f"{name} {precision} {threads} thread(s)")
                rows.append(bench_variant(folder, precision, threads, night, sfreq, probe))
            progress(f"{name} {precision}: memory and wake-ups (fresh processes)")
            processes[f"{name}/{precision}"] = process_costs(folder, precision, sfreq, realtime_s)
        progress(f"{name}: torch eager baseline")
        baselines[name] = torch_costs(probe.info, 60 if quick else 300)
    return {
        "edgesleep": __version__,
        "cpu": {**cpu_info(), "cores": all_threads, "python": platform.python_version()},
        "quick": quick,
        "sfreq": sfreq,
        "epochs_streamed": n_epochs,
        "synthetic": True,
        "models": [str(f) for f in folders],
        "rows": rows,
        "processes": processes,
        "torch_eager": baselines,
    }


GOALS = (
    ("SeqSleepNet model ms per new epoch (1 thread, p50)", "seqsleepnet", "model_ms_p50", 0.25),
    ("SeqSleepNet end to end ms per new epoch (1 thread, p50)", "seqsleepnet", "e2e", 0.6),
    ("CPU-s per hour streamed (1 thread)", None, "cpu", 0.1),
    ("offline scoring of 1000 epochs, s (1 thread)", None, "offline_s", 0.3),
)


def _value(row: dict[str, Any], key: str) -> float:
    if key == "e2e":
        return float(row["stream"]["end_to_end_ms"]["p50"])
    if key == "cpu":
        return float(row["stream"]["cpu_s_per_hour"])
    return float(row[key])


def goals(result: dict[str, Any]) -> list[list[str]]:
    """The issue's goals on one thread: what, variant, measured, goal, met."""
    one = [r for r in result["rows"] if r["threads"] == 1]
    out = []
    for what, model, key, limit in GOALS:
        for r in one:
            if model is None or r["model"] == model:
                v = _value(r, key)
                out.append([what, f"{r['model']} {r['precision']}", f"{v:.4g}",
                            f"<= {limit:g}", "yes" if v <= limit else "NO"])  # fmt: skip
    for r in one:
        ratio = r["naive_model_ms_p50"] / r["model_ms_p50"]
        e2e = r["naive_stream"]["end_to_end_ms"]["p50"] / r["stream"]["end_to_end_ms"]["p50"]
        out.append(["model compute cheaper than the naive stream (end to end in brackets)",
                    f"{r['model']} {r['precision']}", f"{ratio:.1f}x ({e2e:.1f}x)", ">= 5x",
                    "yes" if ratio >= 5 else "NO"])  # fmt: skip
    for precision in PRECISIONS:
        pair = {r["model"]: r for r in one if r["precision"] == precision}
        if {"seqsleepnet", "student"} <= set(pair):
            ratio = pair["seqsleepnet"]["model_ms_p50"] / pair["student"]["model_ms_p50"]
            out.append(["student cheaper than SeqSleepNet (model ms)", precision,
                        f"{ratio:.1f}x", ">= 3x", "yes" if ratio >= 3 else "NO"])  # fmt: skip
    for name, p in result["processes"].items():
        v = p["rss_increment_mb"]
        out.append(["RSS increment over numpy + onnxruntime, MB", name, f"{v:.1f}", "<= 20",
                    "yes" if v <= 20 else "NO"])  # fmt: skip
    return out


def markdown(result: dict[str, Any]) -> str:
    cpu = result["cpu"]
    lines = [
        "# edgesleep bench" + (" (quick)" if result["quick"] else ""),
        "",
        f"CPU: {cpu['model']} ({cpu['machine']}, {cpu['cores']} cores; "
        f"{', '.join(cpu['isa']) or 'no listed ISA flags'}), onnxruntime {cpu['onnxruntime']}, "
        f"Python {cpu['python']}, edgesleep {result['edgesleep']}. Signal: a SYNTHETIC night "
        f"at {result['sfreq']:g} Hz, {result['epochs_streamed']} epochs streamed in 1-s "
        "packets at max speed; per-epoch times are p50 / p90 / p99 in ms after warm-up.",
        "",
        "| model | precision | threads | KB | start-up ms | encoder | sequence | front end | "
        "end to end | naive end to end | CPU-s/h | 1000 epochs offline s | GFLOP/s | "
        "agree vs fp32 | acc |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def q(d: dict[str, float]) -> str:
        return f"{d['p50']:.3f} / {d['p90']:.3f} / {d['p99']:.3f}"

    for r in result["rows"]:
        par = r.get("parity_vs_fp32")
        lines.append(
            f"| {r['model']} | {r['precision']} | {r['threads']} | {r['bytes'] / 1024:.0f} | "
            f"{r['startup_ms']:.1f} | {q(r['encoder_ms'])} | {q(r['sequence_ms'])} | "
            f"{q(r['front_end_ms'])} | {q(r['stream']['end_to_end_ms'])} | "
            f"{q(r['naive_stream']['end_to_end_ms'])} | {r['stream']['cpu_s_per_hour']:.3f} | "
            f"{r['offline_s']:.3f} | {r['gflops_per_s']:.1f} | "
            + (f"{100 * par['argmax_agreement']:.2f} % | {par['accuracy']:.3f} |" if par
               else "- | - |")
        )  # fmt: skip
    lines += ["", "| baseline | model | encoder | sequence |", "|---|---|---|---|"]
    for name, t in result["torch_eager"].items():
        if t:
            lines.append(f"| torch {t['torch']} eager fp32, 1 thread | {name} | "
                         f"{q(t['encoder_ms'])} | {q(t['sequence_ms'])} |")  # fmt: skip
    lines += [
        "",
        "| process | peak RSS MB | floor (numpy + onnxruntime) MB | increment MB | "
        "wake-ups/s at real time | scipy imported | torch imported |",
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
    """Per variant: model ms, end to end ms, naive ms (p50), CPU-s per hour, offline s, KB."""
    return [
        [
            f"{r['model']} {r['precision']} {r['threads']}t",
            f"{r['model_ms_p50']:.3f}",
            f"{r['stream']['end_to_end_ms']['p50']:.3f}",
            f"{r['naive_stream']['end_to_end_ms']['p50']:.3f}",
            f"{r['stream']['cpu_s_per_hour']:.3f}",
            f"{r['offline_s']:.3f}",
            f"{r['bytes'] / 1024:.0f}",
        ]
        for r in result["rows"]
    ]


def write(result: dict[str, Any], out: Path, stem: str = "bench") -> None:
    write_report(out, stem, result, markdown(result))
