"""Sequence readout: fusing the windows that contain an epoch (numpy only).

The sequence model runs on the window of the last ``min(L, t + 1)`` epochs ending at each
epoch ``t`` (the first ``L - 1`` epochs of a night get shorter windows). With a delay of
``K`` epochs, epoch ``i`` is scored from the windows ending at ``i, i + 1, ..., i + K``
(those that exist): their log-probabilities for epoch ``i`` are summed (multiplicative
fusion) and renormalised. ``K = 0`` is the last position of the window ending at ``i``;
``K = L - 1`` is the paper's fusion over every window that contains ``i``. Offline
evaluation and the streaming stager both call this module.
"""

from __future__ import annotations

import numpy as np


def window_start(t: int, seq_len: int) -> int:
    """First epoch of the window that ends at epoch ``t``."""
    return max(0, t - seq_len + 1)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-probabilities along the last axis."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def fuse(window_logp: list[np.ndarray], seq_len: int, delay: int) -> np.ndarray:
    """Fuse per-window log-probabilities into per-epoch probabilities.

    Parameters
    ----------
    window_logp : list of ndarray, item t of shape (t - window_start(t) + 1, n_classes)
        Log-probabilities of the window ending at epoch t, for t = 0 .. n_epochs - 1.
    seq_len : int
        L.
    delay : int
        K in 0 .. L - 1.

    Returns
    -------
    ndarray of shape (n_epochs, n_classes)
        Probabilities.
    """
    if not 0 <= delay < seq_len:
        raise ValueError(f"delay must be in 0..{seq_len - 1} (L - 1), got {delay}")
    n_epochs = len(window_logp)
    if n_epochs == 0:
        return np.zeros((0, 0))
    total = np.zeros((n_epochs, window_logp[0].shape[-1]))
    for t, logp in enumerate(window_logp):
        start = window_start(t, seq_len)
        first = max(start, t - delay)  # epochs i with t - delay <= i <= t
        total[first : t + 1] += logp[first - start :]
    return np.exp(log_softmax(total))
