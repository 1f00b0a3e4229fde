"""Agreement with the expert as a wearable validation study reports it (Menghini et al.
2021): beside epoch κ, accuracy and macro F1, each night's summary against the expert's —
stage fractions (percentage points of the epochs both scored), TST, SE, WASO, SOL, REM
latency, awakenings and minutes per stage — with the mean bias, 95 % limits of agreement
(Bland–Altman: bias ± 1.96 SD over nights), a subject-bootstrap confidence interval of each
stage-fraction bias, and each stage's sensitivity. numpy only (the plot needs matplotlib).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgesleep.io.stats import sleep_statistics
from edgesleep.metrics import cohen_kappa, confusion, evaluate
from edgesleep.stages import UNSCORED, class_labels

SUMMARY = ("TST", "SE", "WASO", "SOL", "Lat_REM", "awakenings")  # compared per night
N_BOOT = 2000


@dataclass(frozen=True)
class Night:
    """One night's staged and expert classes (``n_classes`` set, from epoch 0)."""

    name: str
    subject: str
    staged: np.ndarray
    expert: np.ndarray


def _both(night: Night) -> tuple[np.ndarray, np.ndarray]:
    """The two hypnograms over the same epochs: those both scored (others unscored)."""
    n = min(night.staged.shape[0], night.expert.shape[0])
    staged, expert = night.staged[:n], night.expert[:n]
    both = (staged >= 0) & (expert >= 0)
    return np.where(both, staged, UNSCORED), np.where(both, expert, UNSCORED)


def night_row(night: Night, n_classes: int) -> dict[str, Any]:
    """One night: epochs, κ, accuracy, and for each summary figure and stage fraction the
    staged value, the expert's and their difference (staged − expert)."""
    staged, expert = _both(night)
    scored = staged >= 0
    row: dict[str, Any] = {"night": night.name, "subject": night.subject,
                           "epochs": int(scored.sum())}  # fmt: skip
    if scored.any():
        metrics = evaluate(expert[scored], staged[scored], n_classes)
        row |= {"kappa": metrics["kappa"], "accuracy": metrics["accuracy"]}
    s, e = sleep_statistics(staged, n_classes), sleep_statistics(expert, n_classes)
    figures = {key: (s[key], e[key]) for key in SUMMARY}
    for cls, name in enumerate(class_labels(n_classes)):
        if scored.any():
            figures[f"{name} %"] = (100 * float(np.mean(staged[scored] == cls)),
                                    100 * float(np.mean(expert[scored] == cls)))  # fmt: skip
        figures[f"{name} min"] = (s[name], e[name])
    for key, (a, b) in figures.items():
        row |= {f"{key} staged": a, f"{key} expert": b, f"{key} diff": a - b}
    return row


def _bootstrap_mean(values: np.ndarray, subjects: np.ndarray, n_boot: int, seed: int) -> list:
    """95 % interval of the mean over nights, resampling subjects (with their nights)."""
    ok = np.isfinite(values)
    values, subjects = values[ok], subjects[ok]
    groups = [values[subjects == s] for s in np.unique(subjects)]
    if len(groups) < 2:
        return [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    means = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(groups), len(groups))
        means.append(float(np.mean(np.concatenate([groups[i] for i in pick]))))
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def agreement(
    nights: Sequence[Night], n_classes: int, n_boot: int = N_BOOT, seed: int = 0
) -> dict[str, Any]:
    """The study's figures over ``nights``.

    Returns
    -------
    dict
        ``pooled``: :func:`edgesleep.metrics.evaluate` on every epoch both scored (κ,
        accuracy, macro F1, per-stage sensitivity); ``bias``: per summary figure and stage
        fraction, the mean difference (staged − expert), its SD, the 95 % limits of
        agreement and, for the fractions, a subject-bootstrap 95 % CI of the mean; ``nights``:
        one row per night (:func:`night_row`); ``subjects``, ``n_nights``.
    """
    rows = [night_row(n, n_classes) for n in nights]
    pairs = [_both(n) for n in nights]
    staged = np.concatenate([s[s >= 0] for s, _ in pairs]) if pairs else np.zeros(0, int)
    expert = np.concatenate([e[e >= 0] for _, e in pairs]) if pairs else np.zeros(0, int)
    subjects = np.array([n.subject for n in nights])
    bias: dict[str, dict[str, Any]] = {}
    keys = [k[: -len(" diff")] for k in (rows[0] if rows else {}) if k.endswith(" diff")]
    for key in keys:
        d = np.array([r.get(f"{key} diff", np.nan) for r in rows], dtype=float)
        finite = d[np.isfinite(d)]
        mean = float(finite.mean()) if finite.size else float("nan")
        sd = float(finite.std(ddof=1)) if finite.size > 1 else float("nan")
        bias[key] = {"mean": mean, "sd": sd, "loa": [mean - 1.96 * sd, mean + 1.96 * sd],
                     "nights": int(finite.size)}  # fmt: skip
        if key.endswith(" %"):
            bias[key]["ci"] = _bootstrap_mean(d, subjects, n_boot, seed)
    pooled = evaluate(expert, staged, n_classes) if staged.size else {}
    return {"classes": list(class_labels(n_classes)), "n_nights": len(rows),
            "subjects": int(np.unique(subjects).size), "pooled": pooled, "bias": bias,
            "nights": rows}  # fmt: skip


def paired_kappa(
    truth: Sequence[np.ndarray],
    a: Sequence[np.ndarray],
    b: Sequence[np.ndarray],
    n_classes: int,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> dict[str, Any]:
    """κ of two stagings of the same subjects and their difference with a paired
    subject-bootstrap 95 % CI (subjects resampled with their epochs; both stagings scored on
    the same resample).

    Parameters
    ----------
    truth, a, b : one array per subject (n_epochs,), the expert's and two stagings' classes

    Returns
    -------
    dict
        ``a``, ``b``: pooled κ; ``difference``: κ(b) − κ(a); ``ci``: its 95 % interval;
        ``subjects``.
    """
    cm_a = np.stack([confusion(t, p, n_classes) for t, p in zip(truth, a, strict=True)])
    cm_b = np.stack([confusion(t, p, n_classes) for t, p in zip(truth, b, strict=True)])
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(truth), len(truth))
        diffs.append(cohen_kappa(cm_b[pick].sum(0)) - cohen_kappa(cm_a[pick].sum(0)))
    ka, kb = cohen_kappa(cm_a.sum(0)), cohen_kappa(cm_b.sum(0))
    ci = [float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))]
    return {"a": ka, "b": kb, "difference": kb - ka, "ci": ci, "subjects": len(truth)}


def summary_bias(found: dict[str, Any]) -> dict[str, Any]:
    """The night-summary figures a study table carries, from :func:`agreement`'s result:
    ``fraction_bias`` per stage (mean, subject-bootstrap ``ci``, ``loa``; points) and
    ``summary_bias`` for TST, SE, WASO and each stage's minutes (mean, ``loa``)."""
    bias, classes = found["bias"], found["classes"]
    return {
        "fraction_bias": {c: {k: bias[f"{c} %"][k] for k in ("mean", "ci", "loa")}
                          for c in classes},
        "summary_bias": {k: {"mean": bias[k]["mean"], "loa": bias[k]["loa"]}
                         for k in ("TST", "SE", "WASO", *(f"{c} min" for c in classes))},
    }  # fmt: skip


def write_nights_csv(path: str | Path, result: dict[str, Any]) -> None:
    """The per-night table of :func:`agreement` as CSV."""
    rows = result["nights"]
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with Path(path).open("w", newline="") as fh:
        writer = csv.DictWriter(fh, columns)
        writer.writeheader()
        writer.writerows(rows)


def bland_altman_png(path: str | Path, result: dict[str, Any]) -> None:
    """Bland–Altman plots (difference against mean, bias and limits of agreement) of TST
    and each stage fraction (needs the ``plot`` extra: matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ["TST", *(f"{c} %" for c in result["classes"])]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3.2))
    for ax, key in zip(np.atleast_1d(axes), keys, strict=True):
        a = np.array([r.get(f"{key} staged", np.nan) for r in result["nights"]], dtype=float)
        b = np.array([r.get(f"{key} expert", np.nan) for r in result["nights"]], dtype=float)
        ax.scatter((a + b) / 2, a - b, s=12)
        stats = result["bias"][key]
        for y, style in ((stats["mean"], "-"), *((v, "--") for v in stats["loa"])):
            ax.axhline(y, linestyle=style, color="k", linewidth=0.8)
        unit = "min" if key == "TST" else "points"
        ax.set_title(key)
        ax.set_xlabel(f"mean of both ({unit})")
        ax.set_ylabel(f"staged − expert ({unit})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
