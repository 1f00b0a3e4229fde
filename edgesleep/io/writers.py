"""Hypnogram outputs: BIDS-events CSV, EDF+ annotations, PNG plot; study/benchmark reports.

``stage`` columns hold class indices of the model's class set (for 5 classes these are
the YASA stage integers W=0 .. REM=4); -1 artefact and -2 unscored pass through.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgesleep.dsp import EPOCH_S
from edgesleep.stages import ARTEFACT, STAGE_NAMES, UNSCORED, class_labels

# Sleep-EDF's own strings for 5 classes, so other tools (MNE, YASA, EDFbrowser) read them
_SLEEP_EDF_STRINGS = (
    "Sleep stage W",
    "Sleep stage 1",
    "Sleep stage 2",
    "Sleep stage 3",
    "Sleep stage R",
)


def label_of(stage: int, n_classes: int) -> str:
    """Name of a class index, or ART / UNS for the negative codes."""
    if stage in (ARTEFACT, UNSCORED):
        return STAGE_NAMES[stage]
    return class_labels(n_classes)[stage]


def csv_header(n_classes: int, with_probabilities: bool) -> list[str]:
    """Columns of the hypnogram CSV: onset,duration,stage,label[,p_<class>...]."""
    probs = [f"p_{name}" for name in class_labels(n_classes)] if with_probabilities else []
    return ["onset", "duration", "stage", "label", *probs]


def seconds(value: float) -> str:
    """Seconds in fixed point, to the millisecond, without trailing zeros ("60", "0.25",
    "10368000"; never "1.0368e+07")."""
    return f"{value:.3f}".rstrip("0").rstrip(".")


def csv_row(
    epoch: int, stage: int, n_classes: int, probabilities: np.ndarray | None, onset0_s: float = 0.0
) -> list[str]:
    """One CSV row for epoch ``epoch`` (onset in s from the recording start)."""
    row = [
        seconds(onset0_s + epoch * EPOCH_S),
        seconds(EPOCH_S),
        str(int(stage)),
        label_of(int(stage), n_classes),
    ]
    if probabilities is not None:
        row += [f"{p:.5f}" for p in probabilities]
    return row


def _annotation_text(stage: int, n_classes: int) -> str:
    if stage == UNSCORED:
        return "Sleep stage ?"
    if stage == ARTEFACT:
        return "Artefact"
    if n_classes == 5:
        return _SLEEP_EDF_STRINGS[stage]
    return f"Sleep stage {class_labels(n_classes)[stage]}"


def stage_annotations(
    stages: np.ndarray, n_classes: int, onset0_s: float = 0.0
) -> list[tuple[float, float, str]]:
    """Runs of equal stages as (onset_s, duration_s, text) annotations.

    5-class stages use Sleep-EDF's strings ("Sleep stage W", "Sleep stage 1", ...).
    """
    stages = np.asarray(stages)
    bounds = np.flatnonzero(np.diff(stages)) + 1
    return [
        (
            onset0_s + float(first) * EPOCH_S,
            float(stop - first) * EPOCH_S,
            _annotation_text(int(stages[first]), n_classes),
        )
        for first, stop in zip(np.r_[0, bounds], np.r_[bounds, stages.shape[0]], strict=True)
    ]


def write_hypnogram_edf(
    path: str | Path,
    stages: np.ndarray,
    n_classes: int,
    start: dt.datetime | None = None,
    onset0_s: float = 0.0,
) -> None:
    """Write a hypnogram as an EDF+ file of stage annotations (as Sleep-EDF ships them)."""
    import pyedflib

    writer = pyedflib.EdfWriter(str(path), 0, file_type=pyedflib.FILETYPE_EDFPLUS)
    try:
        if start is not None:
            writer.setStartdatetime(start)
        for onset, duration, text in stage_annotations(stages, n_classes, onset0_s):
            writer.writeAnnotation(onset, duration, text)
    finally:
        writer.close()


def plot_hypnogram(
    path: str | Path,
    stages: np.ndarray,
    n_classes: int,
    probabilities: np.ndarray | None = None,
    truth: np.ndarray | None = None,
    title: str = "",
) -> None:
    """Save a hypnogram PNG (needs the ``plot`` extra: matplotlib).

    Parameters
    ----------
    stages : ndarray of shape (n_epochs,)
    probabilities : ndarray of shape (n_epochs, n_classes), optional
        Drawn as a stacked area under the hypnogram.
    truth : ndarray of shape (n_epochs,), optional
        Reference hypnogram drawn in grey.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = class_labels(n_classes)
    # draw W on top and REM just below it, as sleep labs do
    order = [0, n_classes - 1, *range(1, n_classes - 1)]
    height = {cls: -rank for rank, cls in enumerate(order)}
    hours = np.arange(stages.shape[0] + 1) * EPOCH_S / 3600
    rows = 2 if probabilities is not None else 1
    fig, axes = plt.subplots(rows, 1, figsize=(10, 2.2 * rows + 0.6), sharex=True, squeeze=False)
    ax = axes[0, 0]

    def levels(hyp: np.ndarray) -> np.ndarray:
        y = np.array([height.get(int(s), np.nan) for s in hyp], dtype=float)
        return np.r_[y, y[-1:]]

    if truth is not None:
        ax.step(hours, levels(truth), where="post", color="0.6", lw=2.5, label="reference")
    ax.step(hours, levels(stages), where="post", color="k", lw=1, label="edgesleep")
    rem = np.asarray(stages) == n_classes - 1
    ax.scatter(hours[:-1][rem], levels(stages)[:-1][rem], color="tab:red", s=3, zorder=3)
    ax.set_yticks([height[c] for c in order], [labels[c] for c in order])
    ax.set_ylabel("stage")
    if truth is not None:
        ax.legend(loc="lower right", fontsize=8)
    if title:
        ax.set_title(title)
    if probabilities is not None:
        axes[1, 0].stackplot(hours[:-1], probabilities.T, labels=labels, step="post")
        axes[1, 0].set_ylabel("probability")
        axes[1, 0].set_ylim(0, 1)
        axes[1, 0].legend(loc="upper right", fontsize=7, ncol=n_classes)
    axes[-1, 0].set_xlabel("time from start (h)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


class CsvSink:
    """A hypnogram CSV written epoch by epoch, for streams and long batch runs.

    Columns: those of :func:`csv_header` with probabilities, then ``model_stage``,
    ``flags`` (";"-joined) and ``revision`` (1 when a row replaces an earlier row of the same
    epoch). Each row is flushed when written and the file is fsynced every ``fsync_every``
    rows, so a crash or power cut loses at most the rows since the last fsync (none of the
    rows the OS has flushed). An existing file with the same header is appended to:
    ``n_rows`` tells a caller where it stopped (resume).
    """

    def __init__(self, path: str | Path, n_classes: int, fsync_every: int = 10) -> None:
        self.path = Path(path)
        self.n_classes = n_classes
        self.fsync_every = fsync_every
        header = [*csv_header(n_classes, True), "model_stage", "flags", "revision"]
        self.n_rows = 0
        if self.path.is_file() and self.path.stat().st_size > 0:
            with self.path.open(newline="") as fh:
                rows = list(csv.reader(fh))
            if rows[0] != header:
                raise ValueError(
                    f"{self.path} exists with other columns {rows[0]}; choose another --out"
                )
            self.n_rows = len(rows) - 1
            self._fh = self.path.open("a", newline="")
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("w", newline="")
            csv.writer(self._fh).writerow(header)
        self._writer = csv.writer(self._fh)
        self._unsynced = 0

    def write(
        self,
        epoch: int,
        stage: int,
        probabilities: np.ndarray,
        model_stage: int,
        flags: tuple[str, ...] = (),
        revision: bool = False,
        onset0_s: float = 0.0,
    ) -> None:
        row = csv_row(epoch, stage, self.n_classes, probabilities, onset0_s)
        self._writer.writerow([*row, str(model_stage), ";".join(flags), str(int(revision))])
        self._fh.flush()
        self.n_rows += 1
        self._unsynced += 1
        if self._unsynced >= self.fsync_every:
            self.sync()

    def sync(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._unsynced = 0

    def close(self) -> None:
        if not self._fh.closed:
            self.sync()
            self._fh.close()

    def __enter__(self) -> CsvSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def markdown_table(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """A Markdown table: the header, the rule and one line per row (cells as ``str``)."""
    lines = [f"| {' | '.join(columns)} |", "|" + "---|" * len(columns)]
    return lines + [f"| {' | '.join(str(c) for c in row)} |" for row in rows]


def write_report(out: Path, stem: str, result: dict[str, Any], markdown: str) -> None:
    """A study's or benchmark's result as ``out/stem.json`` and its table as ``out/stem.md``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / f"{stem}.md").write_text(markdown)
