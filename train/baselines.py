"""Floors for heart-based staging: heart-rate-variability features and a class-balanced
logistic regression on them (scikit-learn, in the ``train`` extra)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgesleep.dsp import EPOCH_S
from edgesleep.dsp.beats import GRID_HZ, RR_RANGE_S

WINDOW_S = 300.0  # the 5 min around each epoch
N_FEATURES = 9


def hrv_features(beat_times_s: np.ndarray, n_epochs: int) -> np.ndarray:
    """9 heart-rate-variability features of the 5 min around each epoch, per-night z-scored.

    Mean RR, SDNN, RMSSD, pNN50, mean and sd of the heart rate, and the power of the 2-Hz
    heart-rate series in 0.04-0.15 Hz (LF), 0.15-0.4 Hz (HF) and their log ratio.

    Parameters
    ----------
    beat_times_s : ndarray of shape (n_beats,), R-peak times in s from the night's start
    n_epochs : int

    Returns
    -------
    ndarray of shape (n_epochs, 9)
    """
    t = np.asarray(beat_times_s)
    rr = np.diff(t)
    ok = (rr > RR_RANGE_S[0]) & (rr < RR_RANGE_S[1])
    t_rr, rr = t[1:][ok], rr[ok]
    grid = np.arange(0, n_epochs * EPOCH_S, 1 / GRID_HZ)
    hr = np.interp(grid, t_rr, 60 / rr) if rr.size else np.zeros_like(grid)
    n_grid = int(WINDOW_S * GRID_HZ)
    out = np.zeros((n_epochs, N_FEATURES))
    freqs = np.fft.rfftfreq(n_grid, 1 / GRID_HZ)
    lf, hf = (freqs >= 0.04) & (freqs < 0.15), (freqs >= 0.15) & (freqs < 0.4)
    for i in range(n_epochs):
        lo = EPOCH_S * i - (WINDOW_S - EPOCH_S) / 2
        r = rr[(t_rr >= lo) & (t_rr < lo + WINDOW_S)]
        g0 = int(np.clip(lo * GRID_HZ, 0, grid.size - n_grid))
        seg = hr[g0 : g0 + n_grid]
        power = np.abs(np.fft.rfft((seg - seg.mean()) * np.hanning(seg.size))) ** 2
        p_lf, p_hf = power[lf].sum() + 1e-9, power[hf].sum() + 1e-9
        if r.size >= 3:
            d = np.diff(r)
            out[i, :6] = [
                r.mean(), r.std(), np.sqrt(np.mean(d**2)), np.mean(np.abs(d) > 0.05),
                np.mean(60 / r), np.std(60 / r),
            ]  # fmt: skip
        out[i, 6:] = [np.log(p_lf), np.log(p_hf), np.log(p_lf / p_hf)]
    return (out - out.mean(axis=0)) / (out.std(axis=0) + 1e-9)


def with_context(features: np.ndarray, context: int = 2) -> np.ndarray:
    """Features of epochs i - context .. i + context side by side (edges repeated).

    Parameters
    ----------
    features : ndarray of shape (n_epochs, n_features)

    Returns
    -------
    ndarray of shape (n_epochs, (2 * context + 1) * n_features)
    """
    padded = np.pad(features, ((context, context), (0, 0)), mode="edge")
    n = features.shape[0]
    return np.concatenate([padded[k : k + n] for k in range(2 * context + 1)], axis=1)


def floor_probabilities(
    train: Sequence[np.ndarray], labels: Sequence[np.ndarray], test: np.ndarray, n_classes: int
) -> np.ndarray:
    """Class-balanced logistic regression on standardised features.

    Parameters
    ----------
    train : per night, ndarray of shape (n_epochs, n_features)
    labels : per night, ndarray of shape (n_epochs,), class indices (negative: not scored)
    test : ndarray of shape (n_test_epochs, n_features)

    Returns
    -------
    ndarray of shape (n_test_epochs, n_classes), probabilities (0 for classes never seen)
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = np.concatenate(train), np.concatenate(labels)
    keep = y >= 0
    model = make_pipeline(
        StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=2000)
    )
    model.fit(x[keep], y[keep])
    proba = np.zeros((test.shape[0], n_classes))
    proba[:, model.classes_] = model.predict_proba(test)
    return proba
