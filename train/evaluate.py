"""A torch model as a :class:`edgesleep.readout.Scorer`, and pooled metrics over nights.

Every path from a model to per-epoch probabilities (validation while training, ``evaluate``,
``cv``, the studies, export parity) goes through :func:`edgesleep.readout.probabilities`;
only the scorer differs (torch here, ONNX Runtime on the device).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from edgesleep.metrics import evaluate
from edgesleep.readout import Scorer, probabilities
from edgesleep.train.data import NightFeatures, normalise
from edgesleep.train.sequence_model import EpochSequenceModel


class TorchScorer:
    """A torch model with its normalisation statistics; takes images as the input kind
    makes them, like an export (whose graphs have the normalisation inside).

    Parameters
    ----------
    model : the model (put in eval mode at each call)
    mean, std : ndarray of shape (n_freqs,), the per-bin normalisation
    """

    def __init__(self, model: EpochSequenceModel, mean: np.ndarray, std: np.ndarray) -> None:
        self.model, self.mean, self.std = model, mean, std

    @property
    def seq_len(self) -> int:
        return int(self.model.cfg.seq_len)

    @property
    def fixed_delay(self) -> int | None:
        return self.model.fixed_delay if self.model.causal else None

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def encode(self, images: np.ndarray, clock_h: np.ndarray | None = None) -> np.ndarray:
        self.model.eval()
        x = torch.from_numpy(normalise(images, self.mean, self.std)).to(self.device)
        clock = None
        if self.model.clocked:
            if clock_h is None:
                raise ValueError("a model with a clock needs each epoch's hours (clock_h)")
            clock = torch.from_numpy(np.asarray(clock_h, np.float32)).to(self.device)
        return self.model.encode(x, clock).float().cpu().numpy()

    @torch.no_grad()
    def logits(self, vectors: np.ndarray) -> np.ndarray:
        self.model.eval()
        # a copy: a night of exactly L epochs comes as a read-only sliding-window view
        z = torch.from_numpy(np.array(vectors, np.float32)).to(self.device)
        return self.model.sequence(z).float().cpu().numpy()


def predict_nights(
    scorer: Scorer, nights: Sequence[NightFeatures], delays: Sequence[int]
) -> dict[int, list[np.ndarray]]:
    """Predicted classes per delay K and night, each of shape (n_epochs,)."""
    out: dict[int, list[np.ndarray]] = {k: [] for k in delays}
    for night in nights:
        for k, probs in probabilities(scorer, night.images, delays).items():
            out[k].append(probs.argmax(axis=1))
    return out


def evaluate_nights(
    scorer: Scorer, nights: Sequence[NightFeatures], n_classes: int, delays: Sequence[int]
) -> dict[int, dict[str, object]]:
    """Metrics pooled over the scored epochs of all nights, per delay K."""
    truth = np.concatenate([n.labels for n in nights])
    predicted = predict_nights(scorer, nights, delays)
    return {k: evaluate(truth, np.concatenate(p), n_classes) for k, p in predicted.items()}


class FusedAnyway:
    """A scorer whose windows are fused even if its model is causal: for the studies that
    show what fusion does to a causal model (it saturates its probabilities). The stager,
    the CLI and evaluation never read a causal model this way."""

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer
        self.encode, self.logits = scorer.encode, scorer.logits

    @property
    def seq_len(self) -> int:
        return self.scorer.seq_len

    @property
    def fixed_delay(self) -> int | None:
        return None
