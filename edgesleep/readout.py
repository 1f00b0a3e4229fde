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

from collections.abc import Callable

import numpy as np

BATCH = 512  # epochs (encoder) or windows (sequence model) per call when scoring offline


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


def window_log_probs(
    encode: Callable[[np.ndarray], np.ndarray],
    sequence: Callable[[np.ndarray], np.ndarray],
    images: np.ndarray,
    seq_len: int,
) -> list[np.ndarray]:
    """Log-probabilities of the window ending at each epoch of a night, in batches.

    Parameters
    ----------
    encode : (n, 29, 129) images -> (n, epoch_dim) epoch vectors
    sequence : (batch, L, epoch_dim) vectors -> (batch, L, n_classes) logits
    images : ndarray of shape (n_epochs, 29, 129), as ``encode`` takes them

    Returns
    -------
    list of ndarray, item t of shape (t - window_start(t) + 1, n_classes), float64
    """
    n_epochs = images.shape[0]
    if n_epochs == 0:
        return []
    vectors = np.concatenate([encode(images[i : i + BATCH]) for i in range(0, n_epochs, BATCH)])
    out: list[np.ndarray] = []
    for t in range(min(seq_len - 1, n_epochs)):  # the first epochs: shorter windows
        logits = sequence(vectors[None, window_start(t, seq_len) : t + 1])
        out.append(log_softmax(np.asarray(logits[0], dtype=np.float64)))
    if n_epochs >= seq_len:
        windows = np.lib.stride_tricks.sliding_window_view(vectors, seq_len, axis=0)
        windows = windows.transpose(0, 2, 1)  # (n_windows, L, dim)
        for i in range(0, windows.shape[0], BATCH):
            logits = sequence(np.ascontiguousarray(windows[i : i + BATCH]))
            out.extend(log_softmax(np.asarray(logits, dtype=np.float64)))
    return out
