"""torch -> ONNX: the encoder, sequence and whole-model graphs of a checkpoint, their FLOPs,
and the metadata every exported file carries (format: :mod:`edgesleep.metadata`).

The legacy TorchScript exporter is used (``dynamo=False``): it exports in ~0.1 s where the
dynamo exporter takes 7-17 s, keeps batch and sequence axes dynamic, and writes GRU with
``linear_before_reset=1`` (torch's GRU); :func:`check_graph` asserts that attribute. torch is
pinned below 2.14 in the extras, where the legacy exporter still exists.

Normalisation is baked into the encoder and whole-model graphs: they take dB images as the
STFT computes them; the statistics are also in the metadata, for information.
"""

from __future__ import annotations

import io
import json
import math
import uuid
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import helper
from torch import nn

from edgesleep import __version__
from edgesleep.dsp.inputs import get_kind
from edgesleep.metadata import FORMAT_VERSION, META_KEY, SHA_KEY, ZERO_DIGEST, file_digest
from edgesleep.train.checkpoint import Checkpoint
from edgesleep.train.staging import EpochSequenceModel

OPSET = 17


class NormalisedEncoder(nn.Module):
    """(batch, n_frames, n_freqs) input images -> (batch, epoch_dim), normalisation inside."""

    norm_mean: torch.Tensor
    norm_std: torch.Tensor

    def __init__(self, model: EpochSequenceModel, mean: np.ndarray, std: np.ndarray) -> None:
        super().__init__()
        self.encoder = model.encoder
        self.register_buffer("norm_mean", torch.from_numpy(np.asarray(mean, np.float32)))
        self.register_buffer("norm_std", torch.from_numpy(np.asarray(std, np.float32)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder((x - self.norm_mean) / self.norm_std)


class WholeModel(nn.Module):
    """(batch, L, n_frames, n_freqs) images -> logits (batch, L, n_classes), normalised inside."""

    def __init__(self, model: EpochSequenceModel, mean: np.ndarray, std: np.ndarray) -> None:
        super().__init__()
        self.encoder = NormalisedEncoder(model, mean, std)
        self.sequence = model.sequence

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq = x.shape[0], x.shape[1]
        z = self.encoder(x.reshape(batch * seq, x.shape[2], x.shape[3]))
        return self.sequence(z.reshape(batch, seq, -1))


def _to_onnx(
    module: nn.Module, example: torch.Tensor, names: tuple[str, str], axes: dict[int, str]
) -> onnx.ModelProto:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # the legacy exporter is deprecated (kept on purpose, see the module docstring); its
        # GRU warning about batch sizes does not apply: h0 is built from the input's shape
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*batch_size other than 1.*")
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")
        # torch's own shape checks (e.g. the GRU's input size) are constant in a trace
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        torch.onnx.export(
            module.eval(),
            (example,),
            buf,  # type: ignore[arg-type]  # the legacy exporter writes to file objects
            dynamo=False,
            opset_version=OPSET,
            input_names=[names[0]],
            output_names=[names[1]],
            dynamic_axes={names[0]: axes, names[1]: {k: v for k, v in axes.items() if k < 2}},
            do_constant_folding=True,
        )
    return onnx.load_from_string(buf.getvalue())


def export_graphs(ckpt: Checkpoint) -> dict[str, onnx.ModelProto]:
    """The fp32 ``encoder``, ``sequence`` and ``model`` graphs of a checkpoint."""
    model = ckpt.build()
    enc = NormalisedEncoder(model, ckpt.norm_mean, ckpt.norm_std)
    image = (int(ckpt.config["n_frames"]), int(ckpt.config["n_freqs"]))
    with torch.no_grad():
        dim = int(enc(torch.zeros(1, *image)).shape[1])
    # batch 2 and L 3 in the examples: nothing gets specialised to 1 or to L = 20
    return {
        "encoder": _to_onnx(enc, torch.randn(2, *image), ("image", "vector"), {0: "batch"}),
        "sequence": _to_onnx(
            model.sequence, torch.randn(2, 3, dim), ("vectors", "logits"), {0: "batch", 1: "seq"}
        ),
        "model": _to_onnx(
            WholeModel(model, ckpt.norm_mean, ckpt.norm_std),
            torch.randn(2, 3, *image),
            ("images", "logits"),
            {0: "batch", 1: "seq"},
        ),
    }


def check_graph(proto: onnx.ModelProto) -> dict[str, Any]:
    """``onnx.checker`` plus what the runtime relies on; returns the opset and op counts.

    Raises
    ------
    ValueError
        If a GRU has ``linear_before_reset`` other than 1 (torch's GRU needs 1).
    """
    onnx.checker.check_model(proto, full_check=True)
    for node in proto.graph.node:
        if node.op_type == "GRU":
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            if attrs.get("linear_before_reset") != 1:
                raise ValueError(f"GRU {node.name}: linear_before_reset must be 1 (torch's GRU)")
    opset = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    return {"opset": opset, "ops": dict(Counter(n.op_type for n in proto.graph.node))}


def graph_flops(proto: onnx.ModelProto, shape: dict[str, int]) -> int:
    """Multiply-adds x 2 of MatMul, Gemm, Conv and GRU nodes at fixed input dims.

    ``shape`` maps the dynamic axis names ("batch", "seq") to sizes. Tensor shapes are
    taken from one ONNX Runtime run with every node output exposed (shape inference does
    not resolve all of them). Element-wise operations are left out (a few percent here).
    """
    probe = onnx.ModelProto()
    probe.CopyFrom(proto)
    known = {o.name for o in probe.graph.output}
    for node in probe.graph.node:
        probe.graph.output.extend(
            helper.make_empty_tensor_value_info(o) for o in node.output if o and o not in known
        )
    feeds = {
        value.name: np.zeros(
            [d.dim_value or shape[d.dim_param] for d in value.type.tensor_type.shape.dim],
            np.float32,
        )
        for value in probe.graph.input
    }
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    dims = {n: list(v.shape) for n, v in zip(names, session.run(names, feeds), strict=True)}
    dims.update({i.name: list(i.dims) for i in probe.graph.initializer})
    dims.update({k: list(v.shape) for k, v in feeds.items()})
    total = 0
    for node in probe.graph.node:
        if node.op_type in ("MatMul", "Gemm"):
            a, out = dims[node.input[0]], dims[node.output[0]]
            transposed = any(x.name == "transA" and x.i for x in node.attribute)
            total += 2 * math.prod(out) * (a[-2] if transposed else a[-1])
        elif node.op_type == "Conv":
            w, out = dims[node.input[1]], dims[node.output[0]]
            total += 2 * math.prod(out) * math.prod(w[1:])
        elif node.op_type == "GRU":
            x, w = dims[node.input[0]], dims[node.input[1]]  # (seq, batch, in), (dirs, 3H, in)
            hidden = w[1] // 3
            total += 2 * w[0] * x[0] * x[1] * 3 * hidden * (x[2] + hidden)
    return total


def flops(graphs: dict[str, onnx.ModelProto], seq_len: int) -> dict[str, int]:
    """FLOPs of one epoch through the encoder, one pass of the sequence model over L cached
    vectors, and their sum: the cost of one new epoch when epoch vectors are cached."""
    encoder = graph_flops(graphs["encoder"], {"batch": 1})
    sequence = graph_flops(graphs["sequence"], {"batch": 1, "seq": seq_len})
    return {
        "encoder_per_epoch": encoder,
        "sequence_per_window": sequence,
        "per_new_epoch": encoder + sequence,
        "naive_per_new_epoch": seq_len * encoder + sequence,
    }


def metadata(
    ckpt: Checkpoint, epoch_dim: int, flop_counts: dict[str, int], export_id: str
) -> dict[str, Any]:
    """The ``edgesleep`` metadata shared by an export's graphs, for fp32; each file sets
    ``graph`` (and ``normalisation.baked_into_graph``), quantization its own fields."""
    model = ckpt.build()
    declared = model.declaration()
    return {
        "format": FORMAT_VERSION,
        "model": {"name": ckpt.model, "version": declared.version, "config": ckpt.config},
        "input": get_kind(ckpt.input_kind).spec(),
        "channel": ckpt.channel,
        "unit": ckpt.unit,
        "labels": list(ckpt.class_labels),
        "seq_len": ckpt.seq_len,
        "epoch_dim": epoch_dim,
        "readout": {
            "fusion": (
                f"epoch t from the last position of the window ending at t+{model.lookahead}"
                if declared.causal
                else "sum of log-probabilities of the windows ending at t..t+K"
            ),
            "default_delay": model.lookahead if declared.causal else ckpt.seq_len - 1,
            "lookahead": model.lookahead,
            "causal": declared.causal,
            "receptive_field_epochs": model.receptive_field,
            "streaming": declared.streaming,
        },
        "flops": flop_counts,
        "normalisation": {
            "mean_db": [round(float(v), 5) for v in ckpt.norm_mean],
            "std_db": [round(float(v), 5) for v in ckpt.norm_std],
        },
        "provenance": ckpt.provenance,
        "session_options": {},
        "precision": "fp32",
        "quantization": None,
        "edgesleep_version": __version__,
        "export_id": export_id,
    }


def new_export_id() -> str:
    return uuid.uuid4().hex


def save(proto: onnx.ModelProto, meta: dict[str, Any], path: Path) -> int:
    """Write ``proto`` with ``meta`` and its SHA-256 field; return the file size in bytes."""
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    del out.metadata_props[:]
    out.producer_name, out.producer_version = "edgesleep", __version__
    helper.set_model_props(out, {META_KEY: json.dumps(meta, sort_keys=True), SHA_KEY: ZERO_DIGEST})
    data = out.SerializeToString()
    digest = file_digest(data, ZERO_DIGEST)
    data = data.replace(ZERO_DIGEST.encode(), digest.encode())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return len(data)
