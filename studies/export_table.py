"""The export table: size, parity, accuracy delta and per-epoch latency, fp32 and int8,
for SeqSleepNet and the student, on SYNTHETIC nights.

Run: ``python studies/export_table.py [--out studies/results] [--keep runs/export-study]``
(writes ``export.json`` / ``export.md``; ~5 min on a laptop-class CPU; ``--keep`` keeps the
exported models, e.g. ``runs/export-study/student-x86``, for ``edgesleep bench``). Both
models train on "EEG Fpz-Cz" of 6 synthetic nights (3 subjects: 2 train, 1 validation),
are exported, quantized (calibrated on their training nights) and compared with torch on 2
held-out nights of another seed. The student is quantized with every ``--target`` scheme.
Latency: median over 500 calls at one thread, batch 1: the encoder on one epoch, the
sequence model on one window of L vectors; and the encoder per epoch in batches of 256.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from edgesleep.export.pipeline import ExportOptions, export_model
from edgesleep.export.quantize import SCHEMES
from edgesleep.io.writers import write_report
from edgesleep.ort import cpu_info
from edgesleep.synth.psg import GENERATOR_VERSION, synthesize_dataset
from edgesleep.train.specs import TrainSpec
from edgesleep.train.training import TrainOptions
from edgesleep.train.transfer import train_model

CHANNEL = "EEG Fpz-Cz"
MODELS = {"seqsleepnet": 1e-4, "student": 1e-3}  # name -> learning rate


def node_counts(folder: Path) -> dict[str, int]:
    graphs = ("encoder", "sequence", "step")
    return {g: len(onnx.load(folder / f"{g}.onnx").graph.node) for g in graphs}


def ort_call_floor_ms(repeats: int = 2000) -> float:
    """Median ms of one call of an Identity graph on one (29, 129) image at one thread: what
    onnxruntime's Python binding costs per call before any kernel runs."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 29, 129])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 29, 129])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "floor", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options)
    image = np.zeros((1, 29, 129), np.float32)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        session.run(None, {"x": image})
        times.append(time.perf_counter() - t0)
    return round(1000 * float(np.median(times)), 4)


def run(work: Path) -> dict[str, Any]:
    train_dir, test_dir = work / "train", work / "test"
    synthesize_dataset(train_dir, n_nights=6, seed=700)
    synthesize_dataset(test_dir, n_nights=2, seed=701)
    rows = []
    for name, lr in MODELS.items():
        ckpt = work / f"{name}.pt"
        opts = TrainOptions(passes=10, eval_every=60, patience=3, lr=lr, class_weighting=True)
        train_model(TrainSpec(train_dir, CHANNEL, ckpt, name, 5, train=opts))
        targets = list(SCHEMES) if name == "student" else ["portable"]
        for target in targets:
            folder = work / f"{name}-{target}"
            options = ExportOptions(True, target, train_dir, test_dir, latency_repeats=500)
            report = export_model(ckpt, folder, options)
            for variant, v in report["variants"].items():
                if variant == "fp32" and target != targets[0]:
                    continue
                rows.append(
                    {
                        "model": name,
                        "precision": variant,
                        "target": target if variant == "int8" else None,
                        "bytes": v["bytes"],
                        "parity": v["parity"],
                        "latency_ms": v["latency_1_thread"],
                        "nodes": node_counts(folder / variant),
                        "quantization": v["quantization"],
                        "flops": report["flops"],
                    }
                )
    return {
        "synthetic": True,
        "generator_version": GENERATOR_VERSION,
        "channel": CHANNEL,
        "cpu": cpu_info(),
        "ort_call_floor_ms": ort_call_floor_ms(),
        "command": "python studies/export_table.py",
        "rows": rows,
    }


def markdown(result: dict[str, Any]) -> str:
    cpu = result["cpu"]
    lines = [
        "# Export: size, parity, accuracy delta, latency (SYNTHETIC nights)",
        "",
        f"Models trained on {result['channel']} of 6 synthetic nights; parity and accuracy on "
        "2 held-out synthetic nights (paper's readout, K = L - 1); accuracy delta = exported "
        "minus torch fp32, in points. Latency: median ms per call, one thread, batch 1 "
        f"(encoder: one epoch; sequence: one window of L = 20 vectors; step: one call with "
        f"19 cached vectors at delay 0, what a stream makes per epoch). CPU: {cpu['model']} "
        f"({', '.join(cpu['isa'])}), onnxruntime {cpu['onnxruntime']}. "
        f"Command: `{result['command']}`. One onnxruntime call of an Identity graph on one "
        f"image costs {result['ort_call_floor_ms']:.4f} ms here (the per-call floor).",
        "",
        "| model | precision | target | model.onnx KB | vs fp32 | step.onnx KB | max logit diff | "
        "argmax agree | acc | acc delta | nodes (enc + seq; step) | encoder + sequence ms | "
        "step ms | speed-up (step) | encoder ms/epoch in batches of 256 | batched speed-up |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    fp32 = [r for r in result["rows"] if r["precision"] == "fp32"]

    fp32_ms = {r["model"]: r["latency_ms"]["step_ms"] for r in fp32}
    fp32_batched = {r["model"]: r["latency_ms"]["encoder_batched_ms_per_epoch"] for r in fp32}
    fp32_size = {r["model"]: r["bytes"]["model"] for r in fp32}
    for r in result["rows"]:
        p, lat = r["parity"], r["latency_ms"]
        lines.append(
            f"| {r['model']} | {r['precision']} | {r['target'] or '-'} | "
            f"{r['bytes']['model'] / 1024:.1f} | "
            f"{100 * r['bytes']['model'] / fp32_size[r['model']]:.0f} % | "
            f"{r['bytes']['step'] / 1024:.1f} | "
            f"{p['max_abs_logit_diff']:.4f} | {100 * p['window_argmax_agreement']:.2f} % | "
            f"{p['accuracy_onnx']:.3f} | {p['accuracy_delta_points']:+.2f} | "
            f"{r['nodes']['encoder']} + {r['nodes']['sequence']}; {r['nodes']['step']} | "
            f"{lat['encoder_ms'] + lat['sequence_ms']:.3f} | {lat['step_ms']:.3f} | "
            f"{fp32_ms[r['model']] / lat['step_ms']:.2f}x | "
            f"{lat['encoder_batched_ms_per_epoch']:.4f} | "
            f"{fp32_batched[r['model']] / lat['encoder_batched_ms_per_epoch']:.2f}x |"
        )
    lines += [
        "",
        "Quantization: SeqSleepNet weight-only int8 (ONNX Runtime quantizes no GRU; "
        "`session.disable_quant_qdq=1` folds the DequantizeLinear nodes at load); student "
        "static QDQ (uint8 activations, int8 per-channel weights; `portable` = 7-bit weights).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("studies/results"))
    parser.add_argument(
        "--keep", type=Path, default=None, help="Keep data and exported models here (for bench)."
    )
    args = parser.parse_args()
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        result = run(args.keep)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            result = run(Path(tmp))
    text = markdown(result)
    write_report(args.out, "export", result, text)
    print(text)


if __name__ == "__main__":
    main()
