"""int8 that pays: weight-only storage for GRU models, static QDQ for the student.

- **Weight-only** (SeqSleepNet): ONNX Runtime quantizes no GRU, so every large fp32
  initializer is stored as int8 (symmetric, per tensor) behind a ``DequantizeLinear``. The
  file shrinks ~4x; the metadata tells the runtime to set ``session.disable_quant_qdq=1``,
  which folds those nodes into fp32 constants at load, so it runs at fp32 speed.
- **Static QDQ** (the student, Conv/MatMul/Gemm only): ``onnxruntime.quantization.
  quantize_static`` calibrated on real-shaped inputs; batch-independent, so streaming
  equals offline scoring. The classifier (the nodes of the ``classifier`` module: a
  Linear to a handful of logits) stays fp32: it is a few hundred bytes, and its logits
  decide the stage (on the shipped heart model, int8 agreed with fp32 on 97.8 % of epochs
  with it in fp32 against 97.4 % quantized, and the file got smaller).

Schemes (``--target``) for static QDQ, all uint8 activations and int8 weights, per channel:

- ``portable`` (default): ``reduce_range`` (7-bit weights), correct on x86 with AVX2 but no
  VNNI (where full-range u8s8 saturates in ``VPMADDUBSW``) and on ARM;
- ``x86``: full-range weights plus ``session.x64quantprecision=1``, which makes ORT's x64
  kernels avoid the saturating path on CPUs without VNNI;
- ``arm64``: full-range weights, no session option: ARM kernels do not saturate. Refused by
  the runtime on an x86 CPU without VNNI.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from edgesleep.metadata import TARGETS

log = logging.getLogger("edgesleep")
WEIGHT_ONLY_MIN_ELEMENTS = 64  # smaller tensors (biases of the classifier...) stay fp32


@dataclass(frozen=True)
class Scheme:
    name: str
    reduce_range: bool
    session_options: dict[str, str] = field(default_factory=dict)


SCHEMES = {
    "portable": Scheme("portable", reduce_range=True),
    "x86": Scheme("x86", reduce_range=False, session_options={"session.x64quantprecision": "1"}),
    "arm64": Scheme("arm64", reduce_range=False),
}
assert tuple(SCHEMES) == TARGETS, "the int8 targets are named in edgesleep.metadata"


def weight_only(proto: onnx.ModelProto, keep: Sequence[str] = ()) -> onnx.ModelProto:
    """Store float initializers of >= 64 elements as int8 + ``DequantizeLinear``.

    One scale per slice along the first axis (a GRU's direction, a matrix's row; one per
    tensor for vectors): a step graph's one-direction GRUs then dequantize to the very
    weights of the bidirectional GRU they were split from, and rows of different ranges (a
    filterbank with the normalisation folded in) keep their precision. ``keep`` names
    initializers to leave in fp32 (e.g. the baked normalisation).
    """
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    graph = out.graph
    # a GRU weight is judged by one direction's size, as the step graph's split GRUs are
    per_direction = {x for n in graph.node if n.op_type == "GRU" for x in n.input[1:4]}
    kept, nodes = [], []
    for init in graph.initializer:
        w = numpy_helper.to_array(init)
        size = w.size // max(w.shape[0], 1) if init.name in per_direction else w.size
        if init.data_type != TensorProto.FLOAT or size < WEIGHT_ONLY_MIN_ELEMENTS:
            kept.append(init)
            continue
        if init.name in keep or any(init.name.endswith(k) for k in keep):
            kept.append(init)
            continue
        axis = 0 if w.ndim >= 2 else None
        peak = np.abs(w).max(axis=None if axis is None else tuple(range(1, w.ndim)))
        scale = np.where(peak > 0, peak / 127, 1.0).astype(np.float32)
        shaped = scale if axis is None else scale.reshape(-1, *[1] * (w.ndim - 1))
        q = np.clip(np.round(w / shaped), -127, 127).astype(np.int8)
        kept += [
            numpy_helper.from_array(q, f"{init.name}_q"),
            numpy_helper.from_array(scale, f"{init.name}_scale"),
            numpy_helper.from_array(np.zeros_like(scale, np.int8), f"{init.name}_zero"),
        ]
        nodes.append(
            helper.make_node(
                "DequantizeLinear",
                [f"{init.name}_q", f"{init.name}_scale", f"{init.name}_zero"],
                [init.name],
                name=f"{init.name}_dq",
                axis=0,  # ignored by a per-tensor (scalar) scale
            )
        )
    del graph.initializer[:]
    graph.initializer.extend(kept)
    body = list(graph.node)
    del graph.node[:]
    graph.node.extend([*nodes, *body])
    return out


class _Reader(CalibrationDataReader):  # type: ignore[misc]
    def __init__(self, batches: Sequence[dict[str, np.ndarray]]) -> None:
        self.batches: Iterator[dict[str, np.ndarray]] = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self.batches, None)
        return None if batch is None else {k: v.astype(np.float32) for k, v in batch.items()}


def static_qdq(
    proto: onnx.ModelProto, batches: Sequence[dict[str, np.ndarray]], scheme: Scheme
) -> onnx.ModelProto:
    """Static QDQ quantization calibrated on ``batches`` (each: the graph's inputs by
    name)."""
    with tempfile.TemporaryDirectory() as tmp:
        raw, src, dst = (Path(tmp) / f"{n}.onnx" for n in ("raw", "fp32", "int8"))
        onnx.save(proto, raw)
        quant_pre_process(raw, src)  # shape inference + graph optimisation, as ORT advises
        keep_fp32 = [n.name for n in onnx.load(src).graph.node if "/classifier/" in n.name]
        extra: dict[str, Any] = {"ActivationSymmetric": False, "WeightSymmetric": True}
        quantize_static(
            src,
            dst,
            _Reader(batches),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=scheme.reduce_range,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=keep_fp32,
            extra_options=extra,
        )
        return onnx.load(dst)
