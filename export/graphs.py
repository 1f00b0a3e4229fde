"""torch -> ONNX: the encoder, sequence and whole-model graphs of a checkpoint, the step graph
composed from them, their FLOPs, and the metadata every exported file carries (format:
:mod:`edgesleep.metadata`).

The step graph is what a streaming device calls once per new epoch (see
``EpochSequenceModel.step_tail``): the encoder graph, a few glue nodes (append the new epoch
vector to the cached ones; the caller keeps the last ``stream_context``) and either the
sequence graph on the last vectors (a causal model) or the architecture's readout tail. It is
composed from the encoder and sequence (or tail) graphs of the same precision, so int8
streaming computes what int8 offline scoring computes, node for node.

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
import onnx.numpy_helper
import onnxruntime as ort
import torch
from onnx import helper
from torch import nn

from edgesleep import __version__
from edgesleep.dsp.inputs import get_kind
from edgesleep.metadata import CLOCK, FORMAT_VERSION, META_KEY, SHA_KEY, ZERO_DIGEST, file_digest
from edgesleep.train.checkpoint import Checkpoint
from edgesleep.train.sequence_model import EpochSequenceModel

OPSET = 17


class NormalisedEncoder(nn.Module):
    """(batch, n_frames, n_freqs) input images [, (batch,) hours: a model with a clock] ->
    (batch, epoch_dim), normalisation inside: folded into the encoder when it offers that
    (``encoder.normalised(mean, std)``, see ``EpochSequenceModel``), else applied to the
    images first."""

    norm_mean: torch.Tensor
    norm_std: torch.Tensor

    def __init__(self, model: EpochSequenceModel, mean: np.ndarray, std: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("norm_mean", torch.from_numpy(np.asarray(mean, np.float32)))
        self.register_buffer("norm_std", torch.from_numpy(np.asarray(std, np.float32)))
        fold = getattr(model.encoder, "normalised", None)
        self.folded = fold is not None
        self.encoder = fold(self.norm_mean, self.norm_std) if fold else model.encoder
        self.clocked = model.clocked

    def forward(self, x: torch.Tensor, clock_h: torch.Tensor | None = None) -> torch.Tensor:
        x = x if self.folded else (x - self.norm_mean) / self.norm_std
        return self.encoder(x, clock_h) if self.clocked else self.encoder(x)


class WholeModel(nn.Module):
    """(batch, L, n_frames, n_freqs) images [, (batch, L) hours: a model with a clock] ->
    logits (batch, L, n_classes), normalised inside."""

    def __init__(self, model: EpochSequenceModel, mean: np.ndarray, std: np.ndarray) -> None:
        super().__init__()
        self.encoder = NormalisedEncoder(model, mean, std)
        self.sequence = model.sequence

    def forward(self, x: torch.Tensor, clock_h: torch.Tensor | None = None) -> torch.Tensor:
        batch, seq = x.shape[0], x.shape[1]
        flat = None if clock_h is None else clock_h.reshape(batch * seq)
        z = self.encoder(x.reshape(batch * seq, x.shape[2], x.shape[3]), flat)
        return self.sequence(z.reshape(batch, seq, -1))


def _to_onnx(
    module: nn.Module,
    example: torch.Tensor | tuple[torch.Tensor, ...],
    names: tuple[str, ...],
    axes: dict[int, str],
) -> onnx.ModelProto:
    """Export ``module``; ``names``: its input names then its one output's; ``axes``: the
    dynamic axes of the first input (those below 2 also of the output and of every other
    input: a clock, (batch,) or (batch, seq))."""
    buf = io.BytesIO()
    inputs = example if isinstance(example, tuple) else (example,)
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
            inputs,
            buf,  # type: ignore[arg-type]  # the legacy exporter writes to file objects
            dynamo=False,
            opset_version=OPSET,
            input_names=list(names[:-1]),
            output_names=[names[-1]],
            dynamic_axes={
                names[0]: axes,
                **{n: {k: v for k, v in axes.items() if k < 2} for n in names[1:]},
            },
            do_constant_folding=True,
        )
    return prune(onnx.load_from_string(buf.getvalue()))


def prune(proto: onnx.ModelProto) -> onnx.ModelProto:
    """Drop what the exporter builds for nothing: a GRU's initial state of zeros made from
    the input's shape (ONNX's GRU starts from zeros when ``initial_h`` is absent), then
    every node and initializer whose outputs nothing uses. Fewer nodes, fewer per-node
    costs at batch 1."""
    graph = proto.graph
    made_by = {out: node for node in graph.node for out in node.output}
    for node in graph.node:
        if node.op_type == "GRU" and len(node.input) > 5 and node.input[5] in made_by:
            source = made_by[node.input[5]]
            value = [a for a in source.attribute if a.name == "value"]
            zeros = not value or not np.any(onnx.numpy_helper.to_array(value[0].t))
            if source.op_type == "ConstantOfShape" and zeros:
                del node.input[4:]  # no sequence_lens, no initial_h
    needed = {o.name for o in graph.output}
    kept = []
    for node in reversed(graph.node):
        if any(out in needed for out in node.output):
            kept.append(node)
            needed.update(x for x in node.input if x)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    inits = [i for i in graph.initializer if i.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(inits)
    return proto


def export_graphs(ckpt: Checkpoint) -> dict[str, onnx.ModelProto]:
    """The fp32 ``encoder``, ``sequence`` and ``model`` graphs of a checkpoint, and its
    readout ``tail`` if the architecture has one (the step graph's last part, not saved on
    its own)."""
    model = ckpt.build()
    enc = NormalisedEncoder(model, ckpt.norm_mean, ckpt.norm_std)
    image = (int(ckpt.config["n_frames"]), int(ckpt.config["n_freqs"]))
    with torch.no_grad():
        dim = int(enc(torch.zeros(1, *image), torch.zeros(1)).shape[1])
    # a model with a clock: a second input to the encoder and whole-model graphs
    clock, clocks = (("clock",), ("clocks",)) if model.clocked else ((), ())
    enc_in = (torch.randn(2, *image), torch.rand(2) * 9) if clock else torch.randn(2, *image)
    whole_in = ((torch.randn(2, 3, *image), torch.rand(2, 3) * 9) if clock
                else torch.randn(2, 3, *image))  # fmt: skip
    # batch 2 and L 3 in the examples: nothing gets specialised to 1 or to L = 20
    tail = model.step_tail()
    if tail is not None:  # window length 4, delay 1: neither gets specialised
        example = (torch.randn(4, dim), torch.tensor([-2]))
        extra = {"tail": _to_onnx(tail, example, ("window", "first", "logits"), {0: "seq"})}
    else:
        extra = {}
    return {
        **extra,
        "encoder": _to_onnx(enc, enc_in, ("image", *clock, "vector"), {0: "batch"}),
        "sequence": _to_onnx(
            model.sequence, torch.randn(2, 3, dim), ("vectors", "logits"), {0: "batch", 1: "seq"}
        ),
        "model": _to_onnx(
            WholeModel(model, ckpt.norm_mean, ckpt.norm_std),
            whole_in,
            ("images", *clocks, "logits"),
            {0: "batch", 1: "seq"},
        ),
    }


INT64_MAX = 2**63 - 1


def _inline(
    graph: onnx.GraphProto, prefix: str, names: dict[str, str]
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """``graph``'s nodes and initializers with every name prefixed, but the graph inputs
    and outputs in ``names`` renamed to the outer graph's names."""

    def rename(x: str) -> str:
        return names.get(x, f"{prefix}/{x}") if x else x

    nodes = []
    for node in graph.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        copy.name = f"{prefix}/{node.name}" if node.name else ""
        copy.input[:] = [rename(x) for x in node.input]
        copy.output[:] = [rename(x) for x in node.output]
        nodes.append(copy)
    inits = []
    for init in graph.initializer:
        copy = onnx.TensorProto()
        copy.CopyFrom(init)
        copy.name = rename(init.name)
        inits.append(copy)
    return nodes, inits


def _ints(name: str, values: list[int]) -> onnx.TensorProto:
    return helper.make_tensor(name, onnx.TensorProto.INT64, [len(values)], values)


def takes_clock(encoder: onnx.ModelProto) -> bool:
    """Whether an encoder graph takes each epoch's clock (a model with ``clock``)."""
    return any(i.name == "clock" for i in encoder.graph.input)


def compose_step(
    encoder: onnx.ModelProto, body: onnx.ModelProto, context: int, tail: bool, n_classes: int
) -> onnx.ModelProto:
    """The step graph of one precision (see the module docstring).

    Inputs: ``image`` (1, n_frames, n_freqs) as the input kind computes it, ``clock`` (1,)
    hours when the encoder takes one, ``past``
    (P, dim) the cached epoch vectors (P = 0 at the start of a segment, at most
    ``context``), and with a readout ``tail`` ``first`` (1,) int64, -(K + 1) for delay K.
    Outputs: ``logits`` (m, n_classes), the last m positions of the window ending at the
    new epoch (m = 1 for a causal model: ``body`` is its sequence graph; min(P + 1, K + 1)
    with a tail: ``body`` is the tail graph), and ``window`` (P + 1, dim): the cached
    vectors and the new one, whose last ``context`` rows are the next call's ``past``
    (kept by the caller: a view, where a Slice node would cost a node per call).
    """
    dim = body.graph.input[0].type.tensor_type.shape.dim[-1].dim_value
    image = [d.dim_value for d in encoder.graph.input[0].type.tensor_type.shape.dim[1:]]
    clocked = takes_clock(encoder)
    enc_nodes, enc_inits = _inline(
        encoder.graph, "encoder", {"image": "image", "clock": "clock", "vector": "new"}
    )
    glue = [helper.make_node("Concat", ["past", "new"], ["window"], axis=0, name="glue/window")]
    consts = []
    inputs = [
        helper.make_tensor_value_info("image", onnx.TensorProto.FLOAT, [1, *image]),
        *([helper.make_tensor_value_info("clock", onnx.TensorProto.FLOAT, [1])] if clocked
          else []),
        helper.make_tensor_value_info("past", onnx.TensorProto.FLOAT, ["past", dim]),
    ]  # fmt: skip
    if tail:
        body_nodes, body_inits = _inline(
            body.graph, "tail", {"window": "window", "first": "first", "logits": "logits"}
        )
        inputs.append(helper.make_tensor_value_info("first", onnx.TensorProto.INT64, [1]))
    else:  # the sequence graph on the last context + 1 vectors, its last position
        body_nodes, body_inits = _inline(
            body.graph, "sequence", {"vectors": "recent", "logits": "all_logits"}
        )
        glue += [
            helper.make_node("Slice", ["window", "recent_start", "end", "axis_0"],
                             ["recent_2d"], name="glue/recent"),
            helper.make_node("Unsqueeze", ["recent_2d", "axis_0"], ["recent"],
                             name="glue/batch"),
        ]  # fmt: skip
        body_nodes.append(helper.make_node(
            "Gather", ["all_logits", "batch_last"], ["logits"], axis=1, name="glue/last"
        ))  # fmt: skip
        last = helper.make_tensor("batch_last", onnx.TensorProto.INT64, [], [-1])  # a scalar
        consts += [_ints("axis_0", [0]), _ints("end", [INT64_MAX]),
                   _ints("recent_start", [-(context + 1)]), last]  # fmt: skip
    outputs = [
        helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, ["positions", n_classes]),
        helper.make_tensor_value_info("window", onnx.TensorProto.FLOAT, ["window", dim]),
    ]  # fmt: skip
    graph = helper.make_graph(
        [*enc_nodes, *glue, *body_nodes], "step", inputs, outputs,
        [*enc_inits, *consts, *body_inits],
    )  # fmt: skip
    opsets: dict[str, int] = {}
    for proto in (encoder, body):
        for o in proto.opset_import:
            opsets[o.domain] = max(opsets.get(o.domain, 0), o.version)
    return helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(d, v) for d, v in sorted(opsets.items())],
        ir_version=max(encoder.ir_version, body.ir_version),
    )


def compact(proto: onnx.ModelProto) -> onnx.ModelProto:
    """The graph with short names (``t0``, ``t1``, ... in hex) for every tensor but the
    graph's inputs and outputs, no node names, no doc strings and no intermediate shapes:
    in a small int8 graph the exporter's and the quantizer's names are a quarter of the
    file. Returns a copy."""
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    graph = out.graph
    keep = {v.name for v in graph.input} | {v.name for v in graph.output}
    names: dict[str, str] = {}

    def short(name: str) -> str:
        if not name or name in keep:
            return name
        return names.setdefault(name, f"t{len(names):x}")

    for init in graph.initializer:
        init.name = short(init.name)
    for node in graph.node:
        node.input[:] = [short(x) for x in node.input]
        node.output[:] = [short(x) for x in node.output]
        node.name, node.doc_string = "", ""
    del graph.value_info[:]
    graph.doc_string = out.doc_string = ""
    return out


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


def graph_flops(
    proto: onnx.ModelProto, shape: dict[str, int], ints: dict[str, int] | None = None
) -> int:
    """Multiply-adds x 2 of MatMul, Gemm, Conv and GRU nodes at fixed input dims.

    ``shape`` maps the dynamic axis names ("batch", "seq") to sizes; ``ints`` gives the
    value of each int64 input (the step graph's ``first``). Tensor shapes are
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
        if value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    }
    feeds.update({name: np.array([v], np.int64) for name, v in (ints or {}).items()})
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


def flops(graphs: dict[str, onnx.ModelProto], seq_len: int, context: int) -> dict[str, int]:
    """FLOPs of one epoch through the encoder, one pass of the sequence model over L cached
    vectors, and their sum (the two-call stream); of the naive stream (L epochs encoded);
    and of one step graph call with a full cache at delay 0 and at L - 1 (the same for a
    causal model, which has no delay)."""
    encoder = graph_flops(graphs["encoder"], {"batch": 1})
    sequence = graph_flops(graphs["sequence"], {"batch": 1, "seq": seq_len})
    past = {"past": context}
    steps = [
        graph_flops(graphs["step"], past, {"first": -1 - d} if "tail" in graphs else None)
        for d in (0, seq_len - 1)
    ]
    return {
        "encoder_per_epoch": encoder,
        "sequence_per_window": sequence,
        "per_new_epoch": encoder + sequence,
        "naive_per_new_epoch": seq_len * encoder + sequence,
        "step_per_new_epoch_delay_0": steps[0],
        "step_per_new_epoch_delay_max": steps[1],
    }


def step_of(graphs: dict[str, onnx.ModelProto], ckpt: Checkpoint) -> onnx.ModelProto:
    """The step graph composed from ``graphs`` of one precision (see :func:`compose_step`)."""
    context, n_classes = ckpt.build().stream_context, ckpt.n_classes
    if "tail" in graphs:
        return compose_step(graphs["encoder"], graphs["tail"], context, True, n_classes)
    return compose_step(graphs["encoder"], graphs["sequence"], context, False, n_classes)


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
        "clock": CLOCK if model.clocked else None,
        "readout": {
            "fusion": (
                f"epoch t from the last position of the window ending at t+{model.fixed_delay}"
                if declared.causal
                else "sum of log-probabilities of the windows ending at t..t+K"
            ),
            "delay": model.fixed_delay if declared.causal else None,  # None: any, fused
            "causal": declared.causal,
            "receptive_field_epochs": model.receptive_field,
            "streaming": declared.streaming,
            "stream_context": model.stream_context,
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


def graph_metadata(shared: dict[str, Any], name: str) -> dict[str, Any]:
    """``shared`` (an export's metadata) for its graph ``name``: the graph's name and whether
    the normalisation is baked into it (every graph but the sequence model's)."""
    baked = {**shared["normalisation"], "baked_into_graph": name != "sequence"}
    return {**shared, "graph": name, "normalisation": baked}


def save(proto: onnx.ModelProto, meta: dict[str, Any], path: Path) -> int:
    """Write ``proto`` (:func:`compact`) with ``meta`` and its SHA-256 field; return the
    file size in bytes."""
    out = compact(proto)
    del out.metadata_props[:]
    out.producer_name, out.producer_version = "edgesleep", __version__
    helper.set_model_props(out, {META_KEY: json.dumps(meta, sort_keys=True), SHA_KEY: ZERO_DIGEST})
    data = out.SerializeToString()
    digest = file_digest(data, ZERO_DIGEST)
    data = data.replace(ZERO_DIGEST.encode(), digest.encode())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return len(data)
