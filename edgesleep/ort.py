"""Exported models on the device: the metadata contract and ONNX Runtime sessions.

An export (``edgesleep export``) writes, per precision, a folder with three graphs:
``encoder.onnx`` (input images -> epoch vectors), ``sequence.onnx`` (a window of epoch
vectors -> logits at every position) and ``model.onnx`` (the whole model, for other
runtimes). Each file carries, as ONNX metadata (``custom_metadata_map``):

- ``edgesleep``: one JSON document (:class:`ModelInfo`): model, input kind and its
  parameters, channel, unit, rate, labels, L, readout, FLOPs, normalisation, provenance,
  the session options the runtime must set, the edgesleep version, an export id shared by
  the three graphs;
- ``edgesleep.sha256``: the SHA-256 of the file's bytes with these 64 hex digits replaced
  by 64 zeros. The runtime checks it with :mod:`hashlib` alone (no onnx package): any
  change to weights, graph or metadata is refused.

This module imports numpy and onnxruntime only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from edgesleep import __version__
from edgesleep.dsp import beats
from edgesleep.dsp import stft as dsp
from edgesleep.errors import InputError
from edgesleep.stages import class_labels

log = logging.getLogger("edgesleep")

META_KEY = "edgesleep"
SHA_KEY = "edgesleep.sha256"
FORMAT_VERSION = 1
ZERO_DIGEST = "0" * 64
GRAPHS = ("encoder", "sequence", "model")
PRECISIONS = ("int8", "fp32")
INPUT_KINDS = ("stft", "beats")


def stft_input() -> dict[str, Any]:
    """The STFT this runtime computes (:mod:`edgesleep.dsp.stft`), as metadata."""
    return {
        "kind": "stft",
        "sfreq": dsp.SFREQ,
        "epoch_s": dsp.EPOCH_S,
        "window": "hamming-symmetric",
        "window_samples": dsp.WIN_SAMPLES,
        "hop_samples": dsp.HOP_SAMPLES,
        "nfft": dsp.NFFT,
        "n_frames": dsp.N_FRAMES,
        "n_freqs": dsp.N_FREQS,
        "scale": "10*log10(max(|X|^2, 1e-10)), dB",
    }


def beats_input() -> dict[str, Any]:
    """The beat-interval input this runtime computes (:mod:`edgesleep.dsp.beats`)."""
    return {
        "kind": "beats",
        "epoch_s": beats.EPOCH_S,
        "detector": "pan-tompkins-streaming-1",
        "grid_hz": beats.GRID_HZ,
        "frame_s": beats.FRAME_S,
        "context_epochs": beats.CONTEXT_EPOCHS,
        "baseline_tau_s": beats.BASELINE_TAU_S,
        "rr_range_s": list(beats.RR_RANGE_S),
        "n_frames": beats.N_BEAT_FRAMES,
        "n_freqs": beats.SAMPLES_PER_FRAME,
        "scale": "beats/min minus the night's running baseline",
    }


def input_spec(kind: str) -> dict[str, Any]:
    """The metadata of input ``kind`` ("stft" or "beats") as this runtime computes it."""
    if kind not in INPUT_KINDS:
        raise InputError(f"unknown input kind {kind!r}; known {INPUT_KINDS}")
    return stft_input() if kind == "stft" else beats_input()


def file_digest(data: bytes, digest: str) -> str:
    """SHA-256 of ``data`` with the one occurrence of ``digest`` replaced by zeros."""
    token = digest.encode()
    if data.count(token) != 1:
        raise ValueError("the digest must occur exactly once in the file")
    return hashlib.sha256(data.replace(token, ZERO_DIGEST.encode())).hexdigest()


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


def _check_info(name: str, meta: dict[str, str]) -> ModelInfo:
    if META_KEY not in meta or SHA_KEY not in meta:
        raise InputError(
            f"{name}: no edgesleep metadata; export the checkpoint with `edgesleep export`"
        )
    try:
        raw = json.loads(meta[META_KEY])
    except json.JSONDecodeError as err:
        raise InputError(f"{name}: edgesleep metadata is not valid JSON ({err})") from None
    missing = [k for k in REQUIRED if k not in raw]
    if missing:
        raise InputError(f"{name}: edgesleep metadata lacks {missing}; re-export the model")
    if raw["format"] != FORMAT_VERSION:
        raise InputError(
            f"{name}: metadata format {raw['format']}, this edgesleep ({__version__}) reads "
            f"{FORMAT_VERSION}; re-export with this version"
        )
    info = ModelInfo(raw)
    if info.input.get("kind") not in INPUT_KINDS:
        raise InputError(f"{name}: unknown input kind {info.input.get('kind')!r}")
    if info.input != input_spec(info.input["kind"]):
        raise InputError(
            f"{name}: the model expects the input {info.input}, this runtime computes "
            f"{input_spec(info.input['kind'])}; re-export with a matching edgesleep"
        )
    if info.labels != class_labels(info.n_classes):
        raise InputError(f"{name}: labels {info.labels} are not a known class set")
    if info.raw["unit"] != "uV":
        raise InputError(f"{name}: unit {info.raw['unit']!r}; models take µV ('uV')")
    return info


ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "asimd", "asimddp", "i8mm")


def cpu_info() -> dict[str, Any]:
    """CPU model, architecture and the ISA flags that decide which int8 kernels run."""
    model, flags = platform.processor() or "unknown", set()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "cpu model") and model in ("unknown", "", platform.machine()):
            model = value.strip()
        elif key in ("flags", "features"):
            flags |= set(value.split())
    return {
        "machine": platform.machine(),
        "model": model,
        "isa": sorted(f for f in ISA_FLAGS if f in flags),
        "onnxruntime": ort.__version__,
    }


def _check_target(name: str, info: ModelInfo) -> None:
    """Refuse an int8 scheme that saturates on this CPU (arm64 scheme on x86 without VNNI)."""
    quant = info.raw.get("quantization") or {}
    if quant.get("scheme") != "arm64" or platform.machine().lower() not in ("x86_64", "amd64"):
        return
    isa = cpu_info()["isa"]
    if "avx512_vnni" not in isa and "avx_vnni" not in isa:
        raise InputError(
            f"{name}: quantized for arm64 (full-range int8); on this x86 CPU without VNNI its "
            "kernels saturate and the stages would be wrong. Re-export with --target portable "
            "or --target x86"
        )


class Graph:
    """One verified graph and its ONNX Runtime session."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        try:
            data = path.read_bytes()
        except OSError as err:
            raise InputError(f"{path}: cannot read ({err.strerror})") from None
        try:
            probe = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        except Exception as err:  # noqa: BLE001 (ORT raises several types for bad files)
            raise InputError(f"{path}: not an ONNX model ({type(err).__name__})") from None
        meta = probe.get_modelmeta().custom_metadata_map
        self.info = _check_info(str(path), meta)
        _check_target(str(path), self.info)
        try:
            actual = file_digest(data, meta[SHA_KEY])
        except ValueError:
            actual = "unverifiable"
        if actual != meta[SHA_KEY]:
            raise InputError(
                f"{path}: SHA-256 mismatch (file {actual[:12]}…, metadata "
                f"{meta[SHA_KEY][:12]}…): the file was modified after export; re-export it"
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        for key, value in self.info.session_options.items():
            options.add_session_config_entry(key, value)
        self.session = ort.InferenceSession(
            data, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name
        self.path = path

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run(None, {self.input_name: x})[0])


class ExportedModel:
    """An exported model's encoder and sequence graphs (and the whole-model graph if there).

    Parameters
    ----------
    path : folder written by ``edgesleep export`` (the int8 variant is taken when there is
        one, unless ``precision="fp32"``), a variant folder, or one of its ``.onnx`` files
    threads : intra-op threads of each session
    """

    def __init__(self, path: str | Path, precision: str | None = None, threads: int = 1) -> None:
        folder = resolve(Path(path), precision)
        self.folder = folder
        self.encoder = Graph(folder / "encoder.onnx", threads)
        self.sequence = Graph(folder / "sequence.onnx", threads)
        self.info = self.encoder.info
        mine, theirs = self.info.raw, self.sequence.info.raw
        for key in ("export_id", "precision"):
            if mine[key] != theirs[key]:
                raise InputError(
                    f"{folder}: encoder.onnx and sequence.onnx come from different exports "
                    f"({key} {mine[key]} vs {theirs[key]}); export the checkpoint again"
                )
        if self.info.graph != "encoder" or self.sequence.info.graph != "sequence":
            raise InputError(f"{folder}: graph files are swapped or renamed; re-export")

    def encode(self, images: np.ndarray) -> np.ndarray:
        """(n_epochs, n_frames, n_freqs) images (not normalised; (29, 129) dB for the STFT,
        (27, 20) beats/min for beat intervals) -> (n_epochs, epoch_dim)."""
        return self.encoder(np.ascontiguousarray(images, dtype=np.float32))

    def logits(self, vectors: np.ndarray) -> np.ndarray:
        """(batch, L, epoch_dim) -> (batch, L, n_classes)."""
        return self.sequence(np.ascontiguousarray(vectors, dtype=np.float32))


def resolve(path: Path, precision: str | None) -> Path:
    """The variant folder holding encoder.onnx and sequence.onnx."""
    if precision is not None and precision not in PRECISIONS:
        raise InputError(f"precision {precision!r}: choose one of {PRECISIONS}")
    if path.is_file():
        path = path.parent
    if not path.is_dir():
        raise InputError(f"{path}: no such model folder or file")
    if (path / "encoder.onnx").is_file():
        return path
    order = (precision,) if precision else PRECISIONS
    for variant in order:
        if (path / variant / "encoder.onnx").is_file():
            return path / variant
    raise InputError(
        f"{path}: no {'/'.join(order)} model here (expected {order[0]}/encoder.onnx); "
        "write one with `edgesleep export CHECKPOINT.pt --out DIR`"
    )
