"""Self-describing checkpoints: weights + config + everything needed to feed the model."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgesleep import __version__
from edgesleep.errors import InputError
from edgesleep.stages import class_labels
from edgesleep.train.evaluate import TorchScorer
from edgesleep.train.models import build, model_class
from edgesleep.train.sequence_model import EpochSequenceModel

FORMAT = "edgesleep-checkpoint"
FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    """What a trained model carries.

    ``norm_mean`` / ``norm_std``: per-frequency-bin statistics, shape (129,), dB, from the
    training subjects (or re-estimated by ``adapt``). ``provenance``: dataset name, whether
    synthetic, subjects used, metrics, git commit, edgesleep version, parent checkpoint.
    """

    model: str
    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    channel: str
    norm_mean: np.ndarray
    norm_std: np.ndarray
    sfreq: float = 100.0
    unit: str = "uV"
    input_kind: str = "stft"
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return int(self.config["n_classes"])

    @property
    def class_labels(self) -> tuple[str, ...]:
        return class_labels(self.n_classes)

    @property
    def seq_len(self) -> int:
        return int(self.config["seq_len"])

    def build(self) -> EpochSequenceModel:
        """The model with these weights, in eval mode."""
        model = build(self.model, self.config)
        model.load_state_dict(self.state_dict)
        return model.eval()

    def scorer(self, device: str | torch.device = "cpu") -> TorchScorer:
        """The model as a scorer of (not normalised) images (:mod:`edgesleep.readout`), on
        ``device``."""
        return TorchScorer(self.build().to(device), self.norm_mean, self.norm_std)

    def save(self, path: str | Path) -> None:
        """Write the checkpoint atomically (a kill while writing leaves no partial file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = asdict(self)
        payload["norm_mean"] = self.norm_mean.tolist()
        payload["norm_std"] = self.norm_std.tolist()
        payload["class_labels"] = list(self.class_labels)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, **payload}, tmp)
        os.replace(tmp, path)


def load(path: str | Path) -> Checkpoint:
    """Read a checkpoint written by :meth:`Checkpoint.save`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such checkpoint")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 (any unpickling failure is the same user error)
        raise InputError(f"{path}: not an edgesleep checkpoint ({type(err).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(f"{path}: not an edgesleep checkpoint")
    if payload.get("format_version") != FORMAT_VERSION:
        raise InputError(
            f"{path}: checkpoint format {payload.get('format_version')}, this edgesleep "
            f"({__version__}) reads {FORMAT_VERSION}; train it again with this version"
        )
    try:
        model_class(payload["model"])
    except InputError as err:
        raise InputError(f"{path}: {err}") from None
    fields_ = {k: payload[k] for k in Checkpoint.__dataclass_fields__}
    fields_["norm_mean"] = np.asarray(payload["norm_mean"], dtype=np.float32)
    fields_["norm_std"] = np.asarray(payload["norm_std"], dtype=np.float32)
    return Checkpoint(**fields_)


def git_commit() -> str:
    """The repository's HEAD commit, or "unknown" outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            timeout=5,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(**fields: Any) -> dict[str, Any]:
    """Provenance with the git commit, the edgesleep version and a UTC timestamp added."""
    return {
        "git_commit": git_commit(),
        "edgesleep": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        **fields,
    }
