"""Exported models on the device: ONNX Runtime sessions over verified graphs (the format:
:mod:`edgesleep.metadata`). This module imports numpy and onnxruntime only.
"""

from __future__ import annotations

import logging
import platform
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from edgesleep.errors import InputError, UsageError
from edgesleep.metadata import (
    PRECISIONS,
    SHA_KEY,
    ModelInfo,
    check_info,
    file_digest,
    read_metadata,
)
from edgesleep.readout import epoch_clock_h

log = logging.getLogger("edgesleep")

GRAPH_FILES = ("step", "encoder", "sequence")  # the graphs the runtime opens, in this order
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
    """One verified graph; its ONNX Runtime session is made at the first call.

    The file's metadata and SHA-256 are checked when it is opened (no session needed), so
    a bad file is refused before any data flows; a graph that is never called (the
    encoder and sequence graphs of a stream that runs the step graph) costs no session.
    """

    def __init__(self, path: Path, threads: int = 1) -> None:
        try:
            data = path.read_bytes()
        except OSError as err:
            raise InputError(f"{path}: cannot read ({err.strerror})") from None
        try:
            meta = read_metadata(data)
        except ValueError:
            raise InputError(f"{path}: not an ONNX model (unreadable protobuf)") from None
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
        self.path, self.threads = path, threads
        self._session: ort.InferenceSession | None = None

    @property
    def session(self) -> ort.InferenceSession:
        if self._session is None:
            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            for key, value in self.info.session_options.items():
                options.add_session_config_entry(key, value)
            try:
                self._session = ort.InferenceSession(
                    str(self.path), sess_options=options, providers=["CPUExecutionProvider"]
                )
            except Exception as err:  # noqa: BLE001 (ORT raises several types for bad files)
                raise InputError(f"{self.path}: not a valid ONNX graph ({err})") from None
            self.input_name = self._session.get_inputs()[0].name
        return self._session

    def __call__(self, x: np.ndarray, **more: np.ndarray) -> np.ndarray:
        """The first output for ``x`` as the first input (and ``more`` inputs by name)."""
        session = self.session
        return np.asarray(session.run(None, {self.input_name: x, **more})[0])


class ExportedModel:
    """An exported model: its encoder and sequence graphs (offline scoring, batched) and its
    step graph (streaming, one call per new epoch), each opened and verified at once, each
    session made when first used. A folder with the step graph alone (what a streaming
    device needs) scores offline through it, one epoch at a time.

    Parameters
    ----------
    path : folder written by ``edgesleep export`` (the int8 variant is taken when there is
        one, unless ``precision="fp32"``), a variant folder, or one of its ``.onnx`` files
    threads : intra-op threads of each session
    """

    def __init__(self, path: str | Path, precision: str | None = None, threads: int = 1) -> None:
        folder = resolve(Path(path), precision)
        self.folder = folder
        present = [n for n in GRAPH_FILES if (folder / f"{n}.onnx").is_file()]
        missing = [f"{n}.onnx" for n in ("encoder", "sequence") if n not in present]
        if len(missing) == 1 or "step" not in present and missing:
            others = " or ".join(p for p in PRECISIONS if p != folder.name) or "another"
            raise InputError(
                f"{folder}: an incomplete export (no {' or '.join(missing)}); export the "
                f"checkpoint again, or pass --precision {others}"
            )
        self.graphs = {name: Graph(folder / f"{name}.onnx", threads) for name in present}
        first = next(iter(self.graphs))
        self.info = self.graphs[first].info
        for name, graph in self.graphs.items():
            mine, theirs = self.info.raw, graph.info.raw
            for key in ("export_id", "precision"):
                if mine[key] != theirs[key]:
                    raise InputError(
                        f"{folder}: {first}.onnx and {name}.onnx come from different exports "
                        f"({key} {mine[key]} vs {theirs[key]}); export the checkpoint again"
                    )
            if graph.info.graph != name:
                raise InputError(f"{folder}: graph files are swapped or renamed; re-export")

    @property
    def batched(self) -> bool:
        """Whether the encoder and sequence graphs are here (batched offline scoring)."""
        return "encoder" in self.graphs and "sequence" in self.graphs

    @property
    def seq_len(self) -> int:
        return self.info.seq_len

    @property
    def fixed_delay(self) -> int | None:
        return self.info.fixed_delay

    @property
    def clocked(self) -> bool:
        """Whether the model takes each epoch's clock (:func:`edgesleep.readout.epoch_clock_h`)."""
        return self.info.clocked

    @property
    def step(self) -> Graph | None:
        """The step graph (exports before it: None; they stream in two calls)."""
        return self.graphs.get("step")

    def _graph(self, name: str) -> Graph:
        if name not in self.graphs:
            raise InputError(
                f"{self.folder}: no {name}.onnx (a streaming-only export: it stages through "
                "step.onnx); copy the whole export for batched scoring"
            )
        return self.graphs[name]

    def encode(self, images: np.ndarray, clock_h: np.ndarray | None = None) -> np.ndarray:
        """(n_epochs, n_frames, n_freqs) images (not normalised; (29, 129) dB for the STFT,
        (27, 20) beats/min for beat intervals) [, (n_epochs,) hours from the recording's
        start: required by a model with a clock, ignored otherwise] -> (n_epochs,
        epoch_dim)."""
        images = np.ascontiguousarray(images, dtype=np.float32)
        if not self.clocked:
            return self._graph("encoder")(images)
        if clock_h is None or np.shape(clock_h) != images.shape[:1]:
            raise ValueError(f"{self.folder}: a model with a clock needs one hour per image")
        return self._graph("encoder")(images, clock=np.asarray(clock_h, np.float32))

    def logits(self, vectors: np.ndarray) -> np.ndarray:
        """(batch, L, epoch_dim) -> (batch, L, n_classes)."""
        return self._graph("sequence")(np.ascontiguousarray(vectors, dtype=np.float32))


class StepStream:
    """Streaming model calls through the step graph: one call per new epoch.

    :meth:`logits` takes the new epoch's image and returns the logits of the last positions
    of the window ending at it that the readout at ``delay`` needs (see
    ``EpochSequenceModel.step_tail``); the last ``stream_context`` epoch vectors (from the
    metadata) stay here between calls.
    """

    def __init__(self, model: ExportedModel, delay: int) -> None:
        if model.step is None:
            raise InputError(f"{model.folder}: no step.onnx (an older export); re-export it")
        self.graph = model.step  # its session is made at the first call
        self.clocked = model.clocked
        self.context = int(model.info.raw["readout"]["stream_context"])
        self.empty = np.zeros((0, model.info.epoch_dim), np.float32)
        self.feeds: dict[str, np.ndarray] = {}
        if model.fixed_delay is None:  # a fused model's step takes first = -(K + 1)
            self.feeds["first"] = np.array([-1 - delay], np.int64)
        self.reset()

    def reset(self) -> None:
        """A new segment: no cached epochs."""
        self.feeds["past"] = self.empty

    def logits(self, image: np.ndarray, epoch: int | None = None) -> np.ndarray:
        """(n_frames, n_freqs) image of epoch ``epoch`` (from the recording's start: the
        clock of a model that takes one) -> (m, n_classes) logits of the window's last m
        positions."""
        self.feeds["image"] = np.asarray(image, np.float32)[None]
        if self.clocked:
            if epoch is None:
                raise ValueError("a model with a clock needs each epoch's index")
            self.feeds["clock"] = epoch_clock_h([epoch])
        logits, window = self.graph.session.run(None, self.feeds)
        self.feeds["past"] = window[max(0, window.shape[0] - self.context) :]
        return np.asarray(logits)


class WindowStream:
    """Streaming model calls in two: the encoder on the new epoch, then the sequence graph
    on the window of the last L cached epoch vectors (exports without a step graph; kept as
    the bench's baseline). :meth:`logits` returns the whole window's logits."""

    def __init__(self, model: ExportedModel) -> None:
        self.model = model
        self.vectors: deque[np.ndarray] = deque(maxlen=model.seq_len)

    def reset(self) -> None:
        self.vectors.clear()

    def window(self, image: np.ndarray, epoch: int | None = None) -> np.ndarray:
        """Encode the new epoch once; the window of cached vectors, (1, n, dim)."""
        clock = None if epoch is None else epoch_clock_h([epoch])
        self.vectors.append(self.model.encode(image[None], clock)[0])
        return np.stack(self.vectors)[None]

    def logits(self, image: np.ndarray, epoch: int | None = None) -> np.ndarray:
        return np.asarray(self.model.logits(self.window(image, epoch))[0])


def resolve(path: Path, precision: str | None) -> Path:
    """The variant folder holding the graphs (``encoder.onnx`` and ``sequence.onnx``, or
    ``step.onnx``)."""
    if precision is not None and precision not in PRECISIONS:
        raise UsageError(f"precision {precision!r}: choose one of {PRECISIONS}")
    if path.is_file():
        path = path.parent
    if not path.is_dir():
        raise InputError(f"{path}: no such model folder or file")
    if is_variant(path):
        return path
    order = (precision,) if precision else PRECISIONS
    for variant in order:
        if is_variant(path / variant):
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


def is_variant(folder: Path) -> bool:
    """Whether ``folder`` holds an exported variant's graphs."""
    return any((folder / f"{name}.onnx").is_file() for name in ("encoder", "step"))
