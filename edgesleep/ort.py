"""Exported models on the device: ONNX Runtime sessions over verified graphs (the format:
:mod:`edgesleep.metadata`). This module imports numpy and onnxruntime only.
"""

from __future__ import annotations

import logging
import platform
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from edgesleep.errors import InputError, UsageError
from edgesleep.metadata import PRECISIONS, SHA_KEY, ModelInfo, check_info, file_digest

log = logging.getLogger("edgesleep")

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
        self.info: ModelInfo = check_info(str(path), meta)
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

    @property
    def seq_len(self) -> int:
        return self.info.seq_len

    @property
    def lookahead(self) -> int | None:
        return self.info.lookahead

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
        raise UsageError(f"precision {precision!r}: choose one of {PRECISIONS}")
    if path.is_file():
        path = path.parent
    if not path.is_dir():
        raise InputError(f"{path}: no such model folder or file")
    if (path / "encoder.onnx").is_file():
        return path
    order = (precision,) if precision else PRECISIONS
    for variant in order:
        if (path / variant / "encoder.onnx").is_file():
            if variant != order[0]:
                log.debug("%s: no %s variant here; using %s", path, order[0], variant)
            return path / variant
        if (path / variant).is_dir():
            others = " or ".join(p for p in PRECISIONS if p != variant)
            raise InputError(
                f"{path / variant}: an incomplete export (no encoder.onnx); export the "
                f"checkpoint again, or pass --precision {others}"
            )
    raise InputError(
        f"{path}: no {'/'.join(order)} model here (expected {order[0]}/encoder.onnx); "
        "write one with `edgesleep export CHECKPOINT.pt --out DIR`"
    )
