"""Scoring whole nights with a torch model, and pooled metrics over nights."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from edgesleep.metrics import evaluate
from edgesleep.readout import fuse, log_softmax, window_start
from edgesleep.train.data import NightFeatures, normalise
from edgesleep.train.staging import EpochSequenceModel

ENCODER_BATCH = 512


@torch.no_grad()
def window_log_probs(
    model: EpochSequenceModel, images: np.ndarray, seq_len: int
) -> list[np.ndarray]:
    """Log-probabilities of the window ending at each epoch (see :mod:`edgesleep.readout`).

    Parameters
    ----------
    images : ndarray of shape (n_epochs, 29, 129), normalised

    Returns
    -------
    list of ndarray, item t of shape (t - window_start(t) + 1, n_classes)
    """
    model.eval()
    x = torch.from_numpy(images)
    vectors = torch.cat(
        [model.encoder(x[i : i + ENCODER_BATCH]) for i in range(0, x.shape[0], ENCODER_BATCH)]
    )
    n_epochs = vectors.shape[0]
    out: list[np.ndarray] = []
    for t in range(min(seq_len - 1, n_epochs)):  # the first epochs: shorter windows
        logits = model.sequence(vectors[None, window_start(t, seq_len) : t + 1])
        out.append(log_softmax(logits[0].numpy().astype(np.float64)))
    if n_epochs >= seq_len:
        windows = vectors.unfold(0, seq_len, 1).permute(0, 2, 1)  # (n_windows, L, dim)
        for i in range(0, windows.shape[0], ENCODER_BATCH):
            logits = model.sequence(windows[i : i + ENCODER_BATCH]).numpy()
            out.extend(log_softmax(logits.astype(np.float64)))
    return out


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
