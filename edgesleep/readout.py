"""Sequence readout: fusing the windows that contain an epoch (numpy only).

The sequence model runs on the window of the last ``min(L, t + 1)`` epochs ending at each
epoch ``t`` (the first ``L - 1`` epochs of a night get shorter windows). With a delay of
``K`` epochs, epoch ``i`` is scored from the windows ending at ``i, i + 1, ..., i + K``
(those that exist): their log-probabilities for epoch ``i`` are summed (multiplicative
fusion) and renormalised. ``K = 0`` is the last position of the window ending at ``i``;
``K = L - 1`` is the paper's fusion over every window that contains ``i``. Offline
evaluation and the streaming stager both call this module.

A **causal** model (position t never sees epochs after t) gains nothing from fusion: the
windows ending at ``i .. i + K`` see the same past of ``i``, and summing their nearly equal
log-probabilities only saturates them. Such a model is trained for its delay ``K`` instead
(its ``fixed_delay``: the output at position t stages epoch ``t - K``), and its one
readout is :class:`CausalReadout`: epoch ``i`` from the last position of the window ending at
``i + K`` (the last ``K`` epochs of a night, which no window looks ahead of, take the last
output). Any other delay is refused for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from edgesleep.dsp.stft import EPOCH_S

# epochs (encoder) or windows (sequence model) per call when scoring offline: past ~64 a
# call costs no less per epoch, and ONNX Runtime's scratch memory grows with the batch
BATCH = 64


# a model's clock saturates here (``edgesleep.train.student.Clock``): later hours read as
# this one, so a record that starts long before the night tells the model the wrong hour
CLOCK_MAX_H = 12.0


def clock_warning(model_clocked: bool, span_s: float) -> str | None:
    """What to tell a user whose record is longer than a clock covers (None: nothing)."""
    if not model_clocked or span_s <= CLOCK_MAX_H * 3600:
        return None
    return (f"the model reads the time since the recording started, and this record spans "
            f"{span_s / 3600:.1f} h from its first sample: its stages assume the record "
            "starts at bedtime (within an hour); trim it to the night")  # fmt: skip


def epoch_clock_h(epochs: np.ndarray | Sequence[int]) -> np.ndarray:
    """The clock input of a model that takes one (``clock`` in its config): hours from the
    recording's start (a stream's first sample, a file's first) to each epoch's onset.

    Parameters
    ----------
    epochs : (n,) epoch indices from the recording's start (gaps count: a stream's epoch
        t after a dropout is still t)

    Returns
    -------
    ndarray of shape (n,), float32, hours
    """
    return (np.asarray(epochs, dtype=np.float64) * (EPOCH_S / 3600.0)).astype(np.float32)


class Scorer(Protocol):
    """What scores epochs: an exported model (:class:`edgesleep.ort.ExportedModel`) or a
    checkpoint's torch model (``edgesleep.train.evaluate.TorchScorer``). Both take images
    as the input kind computes them (not normalised), and each epoch's clock
    (:func:`epoch_clock_h`), which only a model with a clock reads."""

    @property
    def seq_len(self) -> int: ...

    @property
    def fixed_delay(self) -> int | None:
        """None for a model whose windows are fused; for a causal model, the epochs it was
        trained for (its only readout delay)."""
        ...

    def encode(self, images: np.ndarray, clock_h: np.ndarray | None = None) -> np.ndarray:
        """(n, n_frames, n_freqs) images [, (n,) hours: required by a model with a clock]
        -> (n, epoch_dim) epoch vectors."""
        ...

    def logits(self, vectors: np.ndarray) -> np.ndarray:
        """(batch, L, epoch_dim) vectors -> (batch, L, n_classes) logits."""
        ...


def window_start(t: int, seq_len: int) -> int:
    """First epoch of the window that ends at epoch ``t``."""
    return max(0, t - seq_len + 1)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-probabilities along the last axis."""
    # the ufuncs' reduce directly: the same numbers as .max()/.sum(), without their
    # Python layer (this runs a few times per epoch in a stream)
    shifted = logits - np.maximum.reduce(logits, axis=-1, keepdims=True)
    return shifted - np.log(np.add.reduce(np.exp(shifted), axis=-1, keepdims=True))


class Fusion:
    """The readout, incrementally: add the window ending at each epoch in turn; epoch
    ``t - K`` is final once the window ending at ``t`` is in.

    ``pending`` maps each epoch not final yet to its summed log-probabilities so far.
    """

    def __init__(self, seq_len: int, delay: int) -> None:
        if not 0 <= delay < seq_len:
            raise ValueError(f"delay must be in 0..{seq_len - 1} (L - 1), got {delay}")
        self.seq_len, self.delay = seq_len, delay
        self.pending: dict[int, np.ndarray] = {}

    def add(self, t: int, logp: np.ndarray) -> range:
        """Add the log-probabilities of the window ending at epoch ``t``, shape (m,
        n_classes): its last m positions, at least the ``min(K + 1, window length)`` the
        readout takes (the whole window, or what a step graph returns); return the epochs
        it updated."""
        first = max(window_start(t, self.seq_len), t - self.delay)  # t - K <= i <= t
        if logp.shape[0] < t + 1 - first:
            raise ValueError(f"window {t}: {logp.shape[0]} positions, {t + 1 - first} needed")
        for i in range(first, t + 1):
            self.pending[i] = self.pending.get(i, 0.0) + logp[i - t - 1]
        return range(first, t + 1)

    def final(self, t: int) -> tuple[int, np.ndarray] | None:
        """After :meth:`add` of window ``t``: the epoch that became final and its summed
        log-probabilities, or None in the first K epochs."""
        i = t - self.delay
        return (i, self.pending.pop(i)) if i >= 0 else None

    def drain(self) -> list[tuple[int, np.ndarray]]:
        """End of the night: every pending epoch, fused over the windows that exist."""
        out = sorted(self.pending.items())
        self.pending.clear()
        return out


class CausalReadout:
    """The readout of a causal model trained to look ``delay`` epochs ahead, with
    :class:`Fusion`'s interface: the window ending at ``t`` stages epoch ``t - delay`` from
    its last position."""

    def __init__(self, seq_len: int, delay: int) -> None:
        if not 0 <= delay < seq_len:
            raise ValueError(f"delay must be in 0..{seq_len - 1} (L - 1), got {delay}")
        self.seq_len, self.delay = seq_len, delay
        self.pending: dict[int, np.ndarray] = {}
        self.last: tuple[int, np.ndarray] | None = None

    def add(self, t: int, logp: np.ndarray) -> range:
        """Add the log-probabilities of the window ending at epoch ``t``; return the epoch
        it stages (none in the first ``delay`` windows)."""
        self.last = (t, logp[-1])
        if t - self.delay < 0:
            return range(0)
        self.pending[t - self.delay] = logp[-1]
        return range(t - self.delay, t - self.delay + 1)

    def final(self, t: int) -> tuple[int, np.ndarray] | None:
        i = t - self.delay
        return (i, self.pending.pop(i)) if i in self.pending else None

    def drain(self) -> list[tuple[int, np.ndarray]]:
        """End of the night: the epochs no window looked ahead of take the last output."""
        out = sorted(self.pending.items())
        self.pending.clear()
        if self.last is not None:
            t, logp = self.last
            out += [(i, logp) for i in range(max(0, t - self.delay + 1), t + 1)]
            self.last = None
        return out


Readout = Fusion | CausalReadout


def readout_for(scorer: Scorer, delay: int | None) -> Readout:
    """The readout of ``scorer`` at ``delay`` (None: its default: L - 1 fused, or a causal
    model's fixed delay).

    Raises
    ------
    ValueError
        A delay outside 0..L-1, or another delay than a causal model's fixed delay.
    """
    fixed = scorer.fixed_delay
    if fixed is None:
        return Fusion(scorer.seq_len, scorer.seq_len - 1 if delay is None else delay)
    if delay is not None and delay != fixed:
        raise ValueError(
            f"delay {delay}: this model is causal and was trained for a delay of {fixed} "
            f"epoch(s), so its readout delay is {fixed} (fusing the windows of a causal "
            "model only saturates its probabilities); train it with another delay"
        )
    return CausalReadout(scorer.seq_len, fixed)


def default_delay(scorer: Scorer) -> int:
    """The delay without ``--delay``: L - 1 (the paper's fusion), or a causal model's fixed
    delay."""
    return scorer.seq_len - 1 if scorer.fixed_delay is None else scorer.fixed_delay


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
    return read_out(window_logp, Fusion(seq_len, delay))


def read_out(window_logp: list[np.ndarray], readout: Readout) -> np.ndarray:
    """Per-epoch probabilities from the windows' log-probabilities through ``readout``."""
    if not window_logp:
        return np.zeros((0, 0))
    totals = []
    for t, logp in enumerate(window_logp):
        readout.add(t, logp)
        done = readout.final(t)
        if done is not None:
            totals.append(done[1])
    totals += [total for _, total in readout.drain()]
    return np.exp(log_softmax(np.stack(totals)))


def window_log_probs(scorer: Scorer, images: np.ndarray, first: int = 0) -> list[np.ndarray]:
    """Log-probabilities of the window ending at each epoch of a night, in batches.

    Parameters
    ----------
    scorer : the model
    images : ndarray of shape (n_epochs, n_frames, n_freqs), as the input kind makes them
    first : the first image's epoch index from the recording's start (its clock)

    Returns
    -------
    list of ndarray, item t of shape (t - window_start(t) + 1, n_classes), float64
    """
    if images.shape[0] == 0:
        return []
    n_epochs = images.shape[0]
    clock = epoch_clock_h(np.arange(first, first + n_epochs))
    vectors = [scorer.encode(images[i : i + BATCH], clock[i : i + BATCH])
               for i in range(0, n_epochs, BATCH)]  # fmt: skip
    return sequence_log_probs(scorer, np.concatenate(vectors))


def sequence_log_probs(scorer: Scorer, vectors: np.ndarray) -> list[np.ndarray]:
    """:func:`window_log_probs` from the epoch vectors, shape (n_epochs, epoch_dim)."""
    n_epochs, seq_len, sequence = vectors.shape[0], scorer.seq_len, scorer.logits
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


def probabilities(
    scorer: Scorer, images: np.ndarray, delays: Sequence[int], first: int = 0
) -> dict[int, np.ndarray]:
    """Per-epoch probabilities of a night for each readout delay K: the one path from a
    model to probabilities (evaluation, cross-validation, studies, export parity).

    Parameters
    ----------
    images : ndarray of shape (n_epochs, n_frames, n_freqs)
    first : the first image's epoch index from the recording's start (its clock)

    Returns
    -------
    dict
        K -> ndarray of shape (n_epochs, n_classes)

    Raises
    ------
    ValueError
        A delay a causal model was not trained for (:func:`readout_for`).
    """
    readouts = {k: readout_for(scorer, k) for k in delays}  # refused before any work
    logp = window_log_probs(scorer, images, first)
    return {k: read_out(logp, readout) for k, readout in readouts.items()}
