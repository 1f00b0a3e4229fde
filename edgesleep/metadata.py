"""The export format: what every exported graph carries, and its checks (stdlib only).

An export (``edgesleep export``) writes, per precision, a folder with four graphs:
``encoder.onnx`` (input images -> epoch vectors), ``sequence.onnx`` (a window of epoch
vectors -> logits at every position), ``model.onnx`` (the whole model, for other
runtimes) and ``step.onnx`` (what a streaming device calls once per new epoch: the new
image and the cached epoch vectors in, the logits the readout takes and the window out;
exports before it stream in two calls, ``readout.streaming`` "window"). Each file
carries, as ONNX metadata (``custom_metadata_map``):

- ``edgesleep``: one JSON document (:class:`ModelInfo`): model (name, version, config),
  input kind and its parameters, channel, unit, labels, L, readout (causal, receptive field,
  streaming mode, the cached epochs of the step), FLOPs, normalisation, provenance, the
  session options the runtime must set, the edgesleep version, an export id shared by the
  graphs, a model card
  (``card``: data, protocol, metrics, intended use, limits; null unless one was given),
  and (format 2) ``clock``: null, or what the encoder's second input ``clock`` takes
  (hours from the recording's start to each epoch's onset; a stream's first sample, a
  file's first);
- ``edgesleep.sha256``: the SHA-256 of the file's bytes with these 64 hex digits replaced
  by 64 zeros. The runtime checks it with the standard library alone (no onnx package):
  any change to weights, graph or metadata is refused.

A file of a format version this runtime does not read (:data:`READS`) is refused with a
message to re-export it. Format 2 added ``clock``; format 1 files are read as models
without one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from edgesleep import __version__
from edgesleep.dsp.inputs import HEART, SIGNAL_OF_SERIES, get_kind
from edgesleep.errors import InputError
from edgesleep.stages import CLASS_LABELS

try:  # CPython's own SHA-256: hashlib's (OpenSSL's) costs a streaming process 3.5 MB
    from _sha256 import sha256  # Python 3.11
except ImportError:  # pragma: no cover (other versions and interpreters)
    try:
        from _sha2 import sha256  # type: ignore[no-redef]  # Python 3.12+
    except ImportError:
        from hashlib import sha256  # type: ignore[assignment]

META_KEY = "edgesleep"
SHA_KEY = "edgesleep.sha256"
FORMAT_VERSION = 2  # what an export writes
READS = (1, 2)  # format versions this runtime reads
CLOCK = {"input": "clock", "unit": "h", "from": "recording start", "to": "epoch onset"}
ZERO_DIGEST = "0" * 64
GRAPHS = ("encoder", "sequence", "model", "step")
PRECISIONS = ("int8", "fp32")  # preference order when a folder has both
TARGETS = ("portable", "x86", "arm64")  # int8 schemes (edgesleep.export.quantize)
STREAMING = ("step", "window")  # streaming modes this runtime runs (readout.streaming)


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if byte < 0x80:
            return value, pos


def _fields(data: bytes) -> list[tuple[int, bytes | int]]:
    """Top-level (field number, value) pairs of a protobuf message; bytes for
    length-delimited fields."""
    out: list[tuple[int, bytes | int]] = []
    pos = 0
    while pos < len(data):
        tag, pos = _varint(data, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            out.append((number, value))
        elif wire == 2:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise ValueError("truncated field")
            out.append((number, data[pos : pos + size]))
            pos += size
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise ValueError(f"wire type {wire}")
    if pos != len(data):
        raise ValueError("truncated field")
    return out


def read_metadata(data: bytes) -> dict[str, str]:
    """The ``metadata_props`` of a serialised ONNX ``ModelProto`` (field 14 of
    ``StringStringEntryProto``: key 1, value 2), read without onnx or an ONNX Runtime
    session (the protobuf runtime would cost a streaming process 2.5 MB).

    Raises
    ------
    ValueError
        If ``data`` is not a protobuf message.
    """
    meta = {}
    for number, value in _fields(data):
        if number == 14 and isinstance(value, bytes):
            entry = {n: v for n, v in _fields(value) if isinstance(v, bytes)}
            meta[entry.get(1, b"").decode()] = entry.get(2, b"").decode()
    return meta


def file_digest(data: bytes, digest: str) -> str:
    """SHA-256 of ``data`` with the one occurrence of ``digest`` replaced by zeros."""
    token = digest.encode()
    if data.count(token) != 1:
        raise ValueError("the digest must occur exactly once in the file")
    return sha256(data.replace(token, ZERO_DIGEST.encode())).hexdigest()


@dataclass(frozen=True)
class ModelInfo:
    """The parsed ``edgesleep`` metadata of one graph (see the module docstring)."""

    raw: dict[str, Any]

    @property
    def graph(self) -> str:
        return str(self.raw["graph"])

    @property
    def model(self) -> str:
        return str(self.raw["model"]["name"])

    @property
    def channel(self) -> str:
        return str(self.raw["channel"])

    @property
    def card(self) -> dict[str, Any] | None:
        """The model card (data, protocol, cross-validated metrics, intended use, limits) of
        a shipped model; None for an export without one."""
        card = self.raw.get("card")
        return dict(card) if card else None

    @property
    def signal_channel(self) -> str:
        """The channel this model reads from a recording or a signal stream: its channel, or
        ECG for a model trained on heart series (whose channel names a series, e.g.
        ``heart``, not a signal)."""
        series = get_kind(str(self.input["kind"])).series
        return SIGNAL_OF_SERIES if self.channel in (HEART, *series) else self.channel

    @property
    def input(self) -> dict[str, Any]:
        return dict(self.raw["input"])

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.raw["labels"])

    @property
    def n_classes(self) -> int:
        return len(self.labels)

    @property
    def seq_len(self) -> int:
        return int(self.raw["seq_len"])

    @property
    def epoch_dim(self) -> int:
        return int(self.raw["epoch_dim"])

    @property
    def precision(self) -> str:
        return str(self.raw["precision"])

    @property
    def session_options(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in self.raw["session_options"].items()}

    @property
    def fixed_delay(self) -> int | None:
        """None for a model whose windows are fused (any delay 0..L-1); for a causal model
        the delay it was trained for (``readout.delay``; exports of 0.1: ``lookahead``)."""
        readout = self.raw["readout"]
        if not readout.get("causal"):
            return None
        return int(readout["delay"] if "delay" in readout else readout.get("lookahead", 0))

    @property
    def streaming(self) -> str:
        """How the device runs the model (format 1 exports before the field: "window")."""
        return str(self.raw["readout"].get("streaming", "window"))

    @property
    def clocked(self) -> bool:
        """Whether the encoder takes each epoch's clock (``clock``; format 1: never)."""
        return self.raw.get("clock") is not None

    @property
    def synthetic(self) -> bool:
        """Whether the model was trained on synthetic data (from its provenance)."""
        return bool(self.raw["provenance"].get("synthetic", False))


REQUIRED = (
    "format",
    "graph",
    "model",
    "input",
    "channel",
    "unit",
    "labels",
    "seq_len",
    "epoch_dim",
    "readout",
    "flops",
    "normalisation",
    "provenance",
    "session_options",
    "precision",
    "edgesleep_version",
    "export_id",
)


TYPES: dict[str, type] = {
    "graph": str, "model": dict, "input": dict, "channel": str, "unit": str, "labels": list,
    "seq_len": int, "epoch_dim": int, "readout": dict, "flops": dict, "normalisation": dict,
    "provenance": dict, "session_options": dict, "precision": str, "edgesleep_version": str,
    "export_id": str,
}  # fmt: skip


# Stated bounds of every field the runtime uses (the hash has no key: an edited file can be
# re-hashed, so the values are checked whatever it says)
MAX_SEQ_LEN = 256  # epochs in a window (the papers: 20)
MAX_EPOCH_DIM = 4096
MAX_CONTEXT = 4096  # cached epochs of a step graph, epochs of a receptive field
SESSION_OPTIONS = {"session.disable_quant_qdq": ("0", "1"),
                   "session.x64quantprecision": ("0", "1")}  # fmt: skip


def _int_in(name: str, field: str, value: Any, lo: int, hi: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise InputError(
            f"{name}: edgesleep metadata {field} = {str(value)[:40]} is not an integer in "
            f"{lo}..{hi} (edited?); re-export the model"
        )
    return value


def _check_fields(name: str, raw: dict[str, Any]) -> None:
    """Refuse metadata whose fields have the wrong type, lie outside their stated bounds
    or name an unknown class set, option or mode."""
    wrong = [k for k, t in TYPES.items() if not isinstance(raw[k], t) or isinstance(raw[k], bool)]
    if wrong:
        raise InputError(
            f"{name}: edgesleep metadata fields {wrong} are not what an export writes "
            "(edited?); re-export the model"
        )
    seq_len = _int_in(name, "seq_len", raw["seq_len"], 1, MAX_SEQ_LEN)
    _int_in(name, "epoch_dim", raw["epoch_dim"], 1, MAX_EPOCH_DIM)
    if tuple(raw["labels"]) not in CLASS_LABELS.values():
        raise InputError(
            f"{name}: labels {str(raw['labels'])[:80]} are not a known class set "
            f"({[list(v) for v in CLASS_LABELS.values()]}); re-export the model"
        )
    for field, allowed in (("graph", GRAPHS), ("precision", PRECISIONS)):
        if raw[field] not in allowed:
            raise InputError(f"{name}: edgesleep metadata {field} {str(raw[field])[:40]!r} is "
                             f"not one of {allowed}; re-export the model")  # fmt: skip
    readout = raw["readout"]
    if not isinstance(readout.get("causal", False), bool):
        raise InputError(f"{name}: edgesleep metadata readout.causal is not true or false")
    for field in ("delay", "lookahead", "default_delay"):  # the last two: exports of 0.1
        if readout.get(field) is not None:
            _int_in(name, f"readout.{field}", readout[field], 0, seq_len - 1)
    if readout.get("receptive_field_epochs") is not None:  # None: a fused model's
        _int_in(name, "readout.receptive_field_epochs", readout["receptive_field_epochs"], 1,
                MAX_CONTEXT)  # fmt: skip
    if readout.get("streaming", "window") == "step":
        if "stream_context" not in readout:
            raise InputError(f"{name}: edgesleep metadata readout.stream_context is missing "
                             "(a step graph needs it); re-export the model")  # fmt: skip
        _int_in(name, "readout.stream_context", readout["stream_context"], 0, MAX_CONTEXT)
    for key, value in raw["session_options"].items():
        if value not in SESSION_OPTIONS.get(key, ()):
            raise InputError(
                f"{name}: session option {str(key)[:60]}={str(value)[:20]} is not one an "
                f"export sets ({sorted(SESSION_OPTIONS)}); re-export the model"
            )
    quant = raw.get("quantization")
    if quant is not None and (not isinstance(quant, dict) or quant.get("scheme", "portable")
                              not in TARGETS):  # fmt: skip
        raise InputError(f"{name}: edgesleep metadata quantization is not what an export "
                         "writes; re-export the model")  # fmt: skip
    if not isinstance(raw["model"].get("name"), str) or len(raw["export_id"]) > 64:
        raise InputError(f"{name}: edgesleep metadata model or export_id is not what an "
                         "export writes; re-export the model")  # fmt: skip


def check_info(name: str, meta: dict[str, str]) -> ModelInfo:
    if META_KEY not in meta or SHA_KEY not in meta:
        raise InputError(
            f"{name}: no edgesleep metadata; export the checkpoint with `edgesleep export`"
        )
    try:
        raw = json.loads(meta[META_KEY])
    except json.JSONDecodeError as err:
        raise InputError(f"{name}: edgesleep metadata is not valid JSON ({err})") from None
    missing = [k for k in REQUIRED if k not in raw] if isinstance(raw, dict) else ["all"]
    if missing:
        raise InputError(f"{name}: edgesleep metadata lacks {missing}; re-export the model")
    if raw["format"] not in READS:
        raise InputError(
            f"{name}: metadata format {str(raw['format'])[:20]}, this edgesleep "
            f"({__version__}) reads {' and '.join(map(str, READS))}; re-export with this "
            "version, or update edgesleep"
        )
    if raw.get("clock") not in (None, CLOCK):
        raise InputError(f"{name}: edgesleep metadata clock {str(raw['clock'])[:60]} is not "
                         f"null or {CLOCK}; re-export the model")  # fmt: skip
    _check_fields(name, raw)
    info = ModelInfo(raw)
    try:
        computed = get_kind(str(info.input.get("kind"))).spec()
    except InputError as err:
        raise InputError(f"{name}: {err}; update edgesleep or re-export the model") from None
    if info.input != computed:
        raise InputError(
            f"{name}: the model expects the input {info.input}, this runtime computes "
            f"{computed}; re-export with a matching edgesleep"
        )
    if info.raw["unit"] != "uV":
        raise InputError(f"{name}: unit {info.raw['unit']!r}; models take µV ('uV')")
    if info.streaming not in STREAMING:
        raise InputError(
            f"{name}: streaming mode {info.streaming!r}; this runtime runs {STREAMING}: "
            "update edgesleep"
        )
    return info
