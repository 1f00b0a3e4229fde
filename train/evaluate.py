"""Scoring whole nights with a torch model, and pooled metrics over nights."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from edgesleep import readout
from edgesleep.metrics import evaluate
from edgesleep.readout import fuse
from edgesleep.train.data import NightFeatures, normalise
from edgesleep.train.staging import EpochSequenceModel


@torch.no_grad()
def window_log_probs(
    model: EpochSequenceModel, images: np.ndarray, seq_len: int
) -> list[np.ndarray]:
    """:func:`edgesleep.readout.window_log_probs` of a torch model on normalised images."""
    model.eval()

    def encode(x: np.ndarray) -> np.ndarray:
        return model.encoder(torch.from_numpy(x)).numpy()

    def sequence(z: np.ndarray) -> np.ndarray:
        return model.sequence(torch.from_numpy(z)).numpy()

    return readout.window_log_probs(encode, sequence, images, seq_len)


def predict_night(
    model: EpochSequenceModel,
    night: NightFeatures,
    mean: np.ndarray,
    std: np.ndarray,
    seq_len: int,
    delay: int,
) -> np.ndarray:
    """Per-epoch probabilities, shape (n_epochs, n_classes), with a delay of K epochs."""
    logp = window_log_probs(model, normalise(night.images, mean, std), seq_len)
    return fuse(logp, seq_len, delay)


def evaluate_nights(
    model: EpochSequenceModel,
    nights: Sequence[NightFeatures],
    mean: np.ndarray,
    std: np.ndarray,
    seq_len: int,
    n_classes: int,
    delays: Sequence[int],
) -> dict[int, dict[str, object]]:
    """Metrics pooled over the scored epochs of all nights, per delay K."""
    truth = np.concatenate([n.labels for n in nights])
    logps = [window_log_probs(model, normalise(n.images, mean, std), seq_len) for n in nights]
    return {
        delay: evaluate(
            truth,
            np.concatenate([fuse(lp, seq_len, delay).argmax(axis=1) for lp in logps]),
            n_classes,
        )
        for delay in delays
    }
