"""What ``edgesleep export`` does: checkpoint -> fp32 graphs (-> int8 graphs) -> parity report.

Output folder::

    OUT/fp32/{encoder,sequence,model,step}.onnx
    OUT/int8/{encoder,sequence,model,step}.onnx     with --quantize
    OUT/report.json, OUT/report.md             sizes, ops, FLOPs, parity, latency

Quantization method: what the architecture declares (``quantization``): "weight-only" int8
(e.g. SeqSleepNet, whose GRUs ONNX Runtime does not quantize) or "static-qdq", calibrated on
``calibration`` nights (e.g. the student: Conv/MatMul/Gemm only). Each precision's step
graph (what a streaming device calls) is composed from that precision's graphs.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch

from edgesleep.errors import UsageError
from edgesleep.export.graphs import (
    check_graph,
    export_graphs,
    flops,
    graph_metadata,
    metadata,
    new_export_id,
    save,
    step_of,
    takes_clock,
)
from edgesleep.export.quantize import SCHEMES, Scheme, static_qdq, weight_only
from edgesleep.installed import write_sums
from edgesleep.io.dataset import Dataset, Entry, read_dataset
from edgesleep.metadata import GRAPHS
from edgesleep.metrics import evaluate
from edgesleep.ort import ExportedModel, StepStream
from edgesleep.readout import default_delay, epoch_clock_h
from edgesleep.train import checkpoint as ckpt_io
from edgesleep.train.checkpoint import Checkpoint
from edgesleep.train.data import NightFeatures, load_features, normalise
from edgesleep.train.evaluate import predict_nights
from edgesleep.train.models import model_class
from edgesleep.train.sequence_model import Quantization

log = logging.getLogger("edgesleep")
CALIBRATION_EPOCHS = 1024  # encoder calibration: epochs drawn evenly from the nights
CALIBRATION_WINDOWS = 128  # sequence / whole-model calibration windows
PARITY_NIGHTS = 4
CALIBRATION_NIGHTS = 200


@dataclass(frozen=True)
class ExportOptions:
    quantize: bool = False
    target: str = "portable"
    calibration: Path | None = None
    data: Path | None = None  # labelled nights for parity (default: the calibration set)
    latency_repeats: int = 200
    card: dict[str, Any] | None = None  # a model card carried in the metadata
    parity_nights: int = PARITY_NIGHTS  # the first nights of the parity data compared


MAX_CARD_BYTES = 64 * 1024


def read_card(path: Path) -> dict[str, Any]:
    """A model card from a JSON file: an object with at least ``name``, ``data`` (cohort ->
    {citation, licence, ...}), ``intended_use`` and ``limits``.

    Raises
    ------
    InputError
        Not such a JSON object, or larger than 64 KB.
    """
    from edgesleep.errors import InputError
    from edgesleep.installed import CARD_KEYS

    raw = path.read_bytes()[: MAX_CARD_BYTES + 1]
    try:
        card = json.loads(raw.decode("utf-8")) if len(raw) <= MAX_CARD_BYTES else None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: not a JSON model card ({err})") from None
    missing = [k for k in CARD_KEYS if not isinstance(card, dict) or not card.get(k)]
    if not isinstance(card, dict) or missing:
        raise InputError(f"{path}: a model card is a JSON object of at most 64 KB with "
                         f"{list(CARD_KEYS)}; missing {missing}")  # fmt: skip
    return card


def _load(dataset: Dataset, entries: Sequence[Entry], ckpt: Checkpoint) -> list[NightFeatures]:
    """The checkpoint's input of ``entries`` (its channel, classes and kind; in bed)."""
    return load_features(
        dataset, ckpt.channel, ckpt.n_classes, "in-bed", entries, kind=ckpt.input_kind
    )


def _nights(path: Path, ckpt: Checkpoint, limit: int) -> list[NightFeatures]:
    dataset = read_dataset(path)
    return _load(dataset, dataset.entries[:limit], ckpt)


def calibration_nights(path: Path, ckpt: Checkpoint) -> list[NightFeatures]:
    """The nights int8 is calibrated on: every night of the checkpoint's training subjects
    in ``path`` (every night there if none of them is; at most ``CALIBRATION_NIGHTS``,
    spread evenly over the list), so the ranges cover every subject trained on."""
    dataset = read_dataset(path)
    trained = set(map(str, ckpt.provenance.get("train_subjects", ())))
    entries = [e for e in dataset.entries if e.subject in trained] or list(dataset.entries)
    if len(entries) > CALIBRATION_NIGHTS:
        keep = np.linspace(0, len(entries) - 1, CALIBRATION_NIGHTS).round().astype(int)
        entries = [entries[i] for i in keep]
    log.info("int8 calibration: %d nights of %d subjects", len(entries),
             len({e.subject for e in entries}))  # fmt: skip
    return _load(dataset, entries, ckpt)


def _windows(images: np.ndarray, seq_len: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` windows of L epochs spread over a night, shape (count, L, *image), and
    their epochs' clocks (count, L) in hours from the night's start."""
    starts = np.linspace(0, images.shape[0] - seq_len, count).astype(int)
    clocks = epoch_clock_h(starts[:, None] + np.arange(seq_len)).reshape(count, seq_len)
    return np.stack([images[s : s + seq_len] for s in starts]), clocks


def windows_of(
    nights: Sequence[NightFeatures], seq_len: int, total: int
) -> tuple[np.ndarray, np.ndarray]:
    """About ``total`` windows of L epochs spread over the nights at least L long (a night
    shorter than L, e.g. a 2-h record under a 256-epoch model, gives none), or over the
    longest night, as long as it is, when none is; shape (n, L', *image), and their clocks
    (n, L') in hours (what a model with a clock takes)."""
    long = [n for n in nights if n.n_epochs >= seq_len] or [max(nights, key=lambda n: n.n_epochs)]
    length = min(seq_len, long[0].n_epochs)
    made = [_windows(n.images, length, max(1, total // len(long))) for n in long]
    return np.concatenate([w for w, _ in made]), np.concatenate([c for _, c in made])


def calibration_batches(
    nights: Sequence[NightFeatures], fp32: dict[str, onnx.ModelProto], seq_len: int
) -> dict[str, list[dict[str, np.ndarray]]]:
    """Real-shaped inputs for each graph, by input name: dB images (and their clocks, for
    a model with one), epoch vectors, windows of images."""
    images = np.concatenate([n.images for n in nights])
    clock = np.concatenate([epoch_clock_h(np.arange(n.n_epochs)) for n in nights])
    pick = np.linspace(0, images.shape[0] - 1, min(CALIBRATION_EPOCHS, images.shape[0]))
    epochs, epoch_clocks = images[pick.astype(int)], clock[pick.astype(int)]
    windows, clocks = windows_of(nights, seq_len, CALIBRATION_WINDOWS)
    clocked = takes_clock(fp32["encoder"])
    encoder = ort.InferenceSession(fp32["encoder"].SerializeToString())
    flat = {"image": windows.reshape(-1, *windows.shape[2:])}
    if clocked:
        flat["clock"] = clocks.reshape(-1)
    vectors = encoder.run(None, flat)[0].reshape(*windows.shape[:2], -1)

    def feeds(**arrays: np.ndarray) -> dict[str, np.ndarray]:
        return {k: v for k, v in arrays.items() if clocked or not k.startswith("clock")}

    return {
        "encoder": [feeds(image=epochs[i : i + 64], clock=epoch_clocks[i : i + 64])
                    for i in range(0, epochs.shape[0], 64)],
        "sequence": [{"vectors": vectors[i : i + 8]} for i in range(0, vectors.shape[0], 8)],
        "model": [feeds(images=windows[i : i + 4], clocks=clocks[i : i + 4])
                  for i in range(0, windows.shape[0], 4)],
    }  # fmt: skip


def quantize_graphs(
    fp32: dict[str, onnx.ModelProto],
    method: Quantization,
    scheme: Scheme,
    batches: dict[str, list[dict[str, np.ndarray]]] | None,
) -> tuple[dict[str, onnx.ModelProto], dict[str, Any], dict[str, str]]:
    """int8 graphs by ``method``, the quantization record and the session options they
    need."""
    if method == "weight-only":
        keep = ("norm_mean", "norm_std")
        graphs = {name: weight_only(proto, keep) for name, proto in fp32.items()}
        record: dict[str, Any] = {
            "method": "weight-only int8 (symmetric, per tensor) behind DequantizeLinear",
            "why": "declared by the architecture (e.g. GRUs, which ONNX Runtime does not "
            "quantize); the session folds the DQ nodes at load",
        }
        return graphs, record, {"session.disable_quant_qdq": "1"}
    if batches is None:
        raise UsageError(
            "static int8 quantization needs calibration nights: pass --calibration DIR "
            "(a dataset of real-shaped nights of the model's channel, e.g. its training data)"
        )
    graphs = {name: static_qdq(proto, batches[name], scheme) for name, proto in fp32.items()}
    record = {
        "method": "static QDQ, uint8 activations, int8 weights per channel, MinMax "
        "calibration; the classifier in fp32",
        "scheme": scheme.name,
        "reduce_range": scheme.reduce_range,
        "calibration_epochs": int(sum(b["image"].shape[0] for b in batches["encoder"])),
        "calibration_windows": int(sum(b["images"].shape[0] for b in batches["model"])),
    }
    return graphs, record, dict(scheme.session_options)


@dataclass(frozen=True)
class Reference:
    """What the torch model makes of the parity nights: logits of windows spread over
    them, and the predictions of the paper's readout (K = L - 1) with the labels."""

    windows: np.ndarray  # (n_windows, L, n_frames, n_freqs), not normalised
    clocks: np.ndarray  # (n_windows, L), hours from the night's start
    logits: np.ndarray  # (n_windows, L, n_classes)
    nights: Sequence[NightFeatures]
    predictions: np.ndarray  # (n_epochs,), all nights
    truth: np.ndarray  # (n_epochs,)


@torch.no_grad()
def torch_reference(ckpt: Checkpoint, nights: Sequence[NightFeatures]) -> Reference:
    seq_len, model = ckpt.seq_len, ckpt.build()
    windows, clocks = windows_of(nights, seq_len, 32 * len(nights))
    x = torch.from_numpy(normalise(windows, ckpt.norm_mean, ckpt.norm_std))
    c = torch.from_numpy(clocks) if model.clocked else None
    logits = np.concatenate([model(x[i : i + 16], None if c is None else c[i : i + 16]).numpy()
                             for i in range(0, x.shape[0], 16)])  # fmt: skip
    scorer = ckpt.scorer()
    k = default_delay(scorer)
    predictions = predict_nights(scorer, nights, [k])[k]
    truth = np.concatenate([n.labels for n in nights])
    return Reference(windows, clocks, logits, nights, np.concatenate(predictions), truth)


def parity(ref: Reference, exported: ExportedModel) -> dict[str, Any]:
    """Exported graphs against the torch reference: logits on the same windows, and
    accuracy of both with the paper's readout pooled over the nights."""
    n_classes = exported.info.n_classes
    n, length = ref.windows.shape[:2]
    vectors = exported.encode(ref.windows.reshape(n * length, *ref.windows.shape[2:]),
                              ref.clocks.reshape(n * length))  # fmt: skip
    logits = exported.logits(vectors.reshape(n, length, -1))
    k = default_delay(exported)
    got = np.concatenate(predict_nights(exported, ref.nights, [k])[k])
    acc_ref = float(evaluate(ref.truth, ref.predictions, n_classes)["accuracy"])  # type: ignore[arg-type]
    acc_onnx = float(evaluate(ref.truth, got, n_classes)["accuracy"])  # type: ignore[arg-type]
    return {
        "windows": int(n),
        "max_abs_logit_diff": float(np.abs(logits - ref.logits).max()),
        "window_argmax_agreement": float((logits.argmax(-1) == ref.logits.argmax(-1)).mean()),
        "epoch_agreement": float((ref.predictions == got).mean()),
        "accuracy_torch": acc_ref,
        "accuracy_onnx": acc_onnx,
        "accuracy_delta_points": round(100 * (acc_onnx - acc_ref), 3),
        "epochs": int(ref.truth.size),
    }


BATCH = 256  # epochs per call for the batched (offline) latency


def latency(exported: ExportedModel, image: np.ndarray, repeats: int) -> dict[str, float]:
    """Median ms per call at one new epoch: the encoder on one image and the sequence model
    on one window of L cached vectors (the two-call stream), the step graph with a full
    cache at delay 0 (the stream); and the encoder's ms per epoch in batches of 256
    (offline scoring, where compute dominates). The sessions' thread count as loaded."""
    hour = epoch_clock_h([120])  # a clock, for a model that takes one
    vectors = np.repeat(exported.encode(image[None], hour), exported.info.seq_len, axis=0)[None]
    batch = np.repeat(image[None], BATCH, axis=0)
    step = StepStream(exported, 0)
    for t in range(exported.info.seq_len):  # a full cache
        step.logits(image, t)

    def median_ms(fn: Any, x: np.ndarray, n: int) -> float:
        for _ in range(3):
            fn(x)
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn(x)
            times.append(time.perf_counter() - t0)
        return round(1000 * float(np.median(times)), 4)

    hours = np.repeat(hour, BATCH)
    return {
        "encoder_ms": median_ms(lambda x: exported.encode(x, hour), image[None], repeats),
        "sequence_ms": median_ms(exported.logits, vectors, repeats),
        "step_ms": median_ms(lambda x: step.logits(x, 120), image, repeats),
        "encoder_batched_ms_per_epoch": round(
            median_ms(lambda x: exported.encode(x, hours), batch, max(3, repeats // 50)) / BATCH,
            5,
        ),
    }


def export_model(ckpt_path: Path, out: Path, opts: ExportOptions | None = None) -> dict[str, Any]:
    """Export a checkpoint (see the module docstring); return the report."""
    opts = opts or ExportOptions()
    if opts.target not in SCHEMES:
        raise UsageError(f"--target {opts.target}: choose one of {sorted(SCHEMES)}")
    ckpt = ckpt_io.load(ckpt_path)
    fp32 = export_graphs(ckpt)
    fp32["step"] = step_of(fp32, ckpt)
    checks = {name: check_graph(proto) for name, proto in fp32.items() if name in GRAPHS}
    flop_counts = flops(fp32, ckpt.seq_len, ckpt.build().stream_context)
    export_id = new_export_id()
    epoch_dim = int(fp32["sequence"].graph.input[0].type.tensor_type.shape.dim[2].dim_value)
    report: dict[str, Any] = {
        "checkpoint": str(ckpt_path),
        "model": ckpt.model,
        "channel": ckpt.channel,
        "classes": list(ckpt.class_labels),
        "synthetic": bool(ckpt.provenance.get("synthetic", False)),
        "flops": flop_counts,
        "graphs": {},
        "variants": {},
    }
    Variant = tuple[dict[str, onnx.ModelProto], dict[str, Any] | None, dict[str, str]]
    variants: dict[str, Variant] = {"fp32": (fp32, None, {})}
    if opts.quantize:
        method = model_class(ckpt.model).quantization
        batches, calibrated = None, {}
        if method == "static-qdq" and opts.calibration is not None:
            cal = calibration_nights(opts.calibration, ckpt)
            batches = calibration_batches(cal, fp32, ckpt.seq_len)
            calibrated = {"calibration_nights": len(cal),
                          "calibration_subjects": len({n.subject for n in cal})}  # fmt: skip
        parts = {name: proto for name, proto in fp32.items() if name != "step"}
        int8, quant, options = quantize_graphs(parts, method, SCHEMES[opts.target], batches)
        int8["step"] = step_of(int8, ckpt)
        variants["int8"] = (int8, {**quant, **calibrated}, options)
    shared = {**metadata(ckpt, epoch_dim, flop_counts, export_id), "card": opts.card}
    for variant, (graphs, record, session_options) in variants.items():
        sizes = {}
        for name in GRAPHS:
            meta = {
                **graph_metadata(shared, name),
                "precision": variant,
                "quantization": record,
                "session_options": session_options,
            }
            sizes[name] = save(graphs[name], meta, out / variant / f"{name}.onnx")
            if variant == "int8":
                checks[f"int8/{name}"] = check_graph(graphs[name])
        report["variants"][variant] = {
            "bytes": sizes,
            "quantization": record,
            "session_options": session_options,
        }
    report["graphs"] = checks
    data = opts.data or opts.calibration
    nights = _nights(data, ckpt, opts.parity_nights) if data is not None else None
    if nights is not None:
        report["parity_data"] = {
            "path": str(opts.data or opts.calibration),
            "nights": [n.record for n in nights],
        }
        ref = torch_reference(ckpt, nights)
        image = nights[0].images[len(nights[0].images) // 2]
        for variant in variants:
            exported = ExportedModel(out, variant, threads=1)
            report["variants"][variant]["parity"] = parity(ref, exported)
            report["variants"][variant]["latency_1_thread"] = latency(
                exported, image, opts.latency_repeats
            )
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "report.md").write_text(report_markdown(report))
    write_sums(out)  # every file's digest: the export is a bundle `models add` installs
    return report


def report_markdown(report: dict[str, Any]) -> str:
    """The export report as Markdown: one row per precision."""
    lines = [
        f"# Export of {report['checkpoint']} ({report['model']}, {report['channel']}, "
        f"{len(report['classes'])} classes)",
        "",
        f"FLOPs per new epoch with cached epoch vectors: {report['flops']['per_new_epoch']:,} "
        f"(encoder {report['flops']['encoder_per_epoch']:,}, sequence pass "
        f"{report['flops']['sequence_per_window']:,}).",
        "",
        "| precision | encoder KB | sequence KB | model KB | step KB | max logit diff | "
        "argmax agree | acc delta (points) | encoder ms | sequence ms | step ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for variant, v in report["variants"].items():
        p, lat = v.get("parity"), v.get("latency_1_thread")
        kb = [f"{v['bytes'][g] / 1024:.1f}" for g in GRAPHS]
        cells = (
            [
                f"{p['max_abs_logit_diff']:.4f}",
                f"{100 * p['window_argmax_agreement']:.2f} %",
                f"{p['accuracy_delta_points']:+.2f}",
                f"{lat['encoder_ms']:.3f}",
                f"{lat['sequence_ms']:.3f}",
                f"{lat['step_ms']:.3f}",
            ]
            if p
            else ["-"] * 6
        )
        lines.append(f"| {variant} | {' | '.join(kb)} | {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"
