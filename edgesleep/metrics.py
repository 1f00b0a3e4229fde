"""Agreement between hypnograms, pooled over epochs as the SeqSleepNet papers report it.

numpy only (the demo and the stager report agreement too).
"""

from __future__ import annotations

import numpy as np


def confusion(truth: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Confusion matrix, rows = truth, columns = prediction; epochs with a negative truth
    (artefact, unscored) are left out. Shape (n_classes, n_classes), int."""
    truth, pred = np.asarray(truth), np.asarray(pred)
    keep = truth >= 0
    return np.bincount(
        truth[keep] * n_classes + pred[keep], minlength=n_classes * n_classes
    ).reshape(n_classes, n_classes)


def cohen_kappa(cm: np.ndarray) -> float:
    """Cohen's kappa of a confusion matrix (0 when chance agreement is total)."""
    cm = cm.astype(np.float64)
    total = cm.sum()
    if not total:
        return float("nan")
    observed = np.trace(cm) / total
    expected = (cm.sum(axis=0) * cm.sum(axis=1)).sum() / total**2
    return float((observed - expected) / (1 - expected)) if expected < 1 else 0.0


def scores(cm: np.ndarray) -> dict[str, object]:
    """Accuracy, Cohen's kappa, macro F1, weighted F1, and per-class sensitivity,
    specificity and F1 from a confusion matrix."""
    cm = cm.astype(np.float64)
    total = cm.sum()
    tp = np.diag(cm)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    acc = tp.sum() / total if total else float("nan")
    with np.errstate(invalid="ignore", divide="ignore"):
        sens = np.where(support > 0, tp / support, np.nan)
        spec = (total - support - predicted + tp) / (total - support)
        f1 = np.where(support + predicted > 0, 2 * tp / (support + predicted), 0.0)
    present = support > 0
    return {
        "accuracy": float(acc),
        "kappa": cohen_kappa(cm) if total else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else float("nan"),
        "weighted_f1": float((f1 * support).sum() / total) if total else float("nan"),
        "sensitivity": float(np.nanmean(sens)),
        "specificity": float(np.nanmean(spec)),
        "per_class": {
            "sensitivity": sens.tolist(),
            "specificity": spec.tolist(),
            "f1": f1.tolist(),
            "support": support.astype(int).tolist(),
        },
        "confusion": cm.astype(int).tolist(),
        "n_epochs": int(total),
    }


def evaluate(truth: np.ndarray, pred: np.ndarray, n_classes: int) -> dict[str, object]:
    """:func:`scores` of :func:`confusion`."""
    return scores(confusion(truth, pred, n_classes))


def match_beats(
    detected_s: np.ndarray, reference_s: np.ndarray, tolerance_s: float = 0.05
) -> dict[str, float]:
    """Sensitivity and positive predictive value of detected beats against reference beats.

    Each reference beat matches at most one detection within ``tolerance_s`` (greedy, in
    time order).

    Parameters
    ----------
    detected_s, reference_s : ndarray of shape (n_beats,), increasing, s

    Returns
    -------
    dict with ``sensitivity``, ``ppv``, ``true_positives``, ``n_detected``, ``n_reference``
    """
    det, ref = np.asarray(detected_s), np.asarray(reference_s)
    i = j = hits = 0
    while i < det.size and j < ref.size:
        if abs(det[i] - ref[j]) <= tolerance_s:
            hits, i, j = hits + 1, i + 1, j + 1
        elif det[i] < ref[j]:
            i += 1
        else:
            j += 1
    return {
        "sensitivity": hits / ref.size if ref.size else float("nan"),
        "ppv": hits / det.size if det.size else float("nan"),
        "true_positives": hits,
        "n_detected": int(det.size),
        "n_reference": int(ref.size),
    }
