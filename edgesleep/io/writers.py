"""Hypnogram outputs: BIDS-events CSV, EDF+ annotations, PNG plot; study/benchmark reports.

``stage`` columns hold class indices of the model's class set (for 5 classes these are
the YASA stage integers W=0 .. REM=4); -1 artefact and -2 unscored pass through.
"""

from __future__ import annotations

import csv
import datetime as dt
import errno
import io
import json
import logging
import os
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgesleep.dsp import EPOCH_S
from edgesleep.stages import ARTEFACT, STAGE_NAMES, UNSCORED, class_labels

log = logging.getLogger("edgesleep")

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


def write_scored_csv(path: Path, onsets_s: np.ndarray, stages: np.ndarray) -> None:
    """A CSV hypnogram of scored epochs: ``onset,duration,label`` per 30-s epoch at its
    onset (s from the recording start), five stage names, UNS and ART."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["onset,duration,label"]
    lines += [f"{seconds(float(onset))},{seconds(EPOCH_S)},{STAGE_NAMES[int(stage)]}"
              for onset, stage in zip(onsets_s, stages, strict=True)]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")


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
    stages: np.ndarray,
    n_classes: int,
    onset0_s: float = 0.0,
    epochs: np.ndarray | None = None,
) -> list[tuple[float, float, str]]:
    """Runs of equal stages as (onset_s, duration_s, text) annotations.

    5-class stages use Sleep-EDF's strings ("Sleep stage W", "Sleep stage 1", ...).
    ``epochs``: each stage's epoch index (default: consecutive from 0); a run never spans
    a jump in them (a night in segments).
    """
    stages = np.asarray(stages)
    index = np.arange(stages.shape[0]) if epochs is None else np.asarray(epochs)
    bounds = np.flatnonzero((np.diff(stages) != 0) | (np.diff(index) != 1)) + 1
    return [
        (
            onset0_s + float(index[first]) * EPOCH_S,
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
    epochs: np.ndarray | None = None,
) -> None:
    """Write a hypnogram as an EDF+ file of stage annotations (as Sleep-EDF ships them);
    ``epochs``: each stage's epoch index (default: consecutive from 0)."""
    import pyedflib

    writer = pyedflib.EdfWriter(str(path), 0, file_type=pyedflib.FILETYPE_EDFPLUS)
    try:
        if start is not None:
            writer.setStartdatetime(start)
        for onset, duration, text in stage_annotations(stages, n_classes, onset0_s, epochs):
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
    epoch). Each row goes to the file in one ``write`` as soon as it exists, whole or not at
    all (a short write is cut back), and the file is fsynced every ``fsync_every`` rows, so a
    crash or power cut loses at most the rows since the last fsync and never leaves half a
    row. When the disk refuses a row (full, gone), rows wait in a buffer of at most
    ``max_pending`` and writing is retried with every new row; :meth:`close` raises
    :class:`OSError` naming the rows that could not be written. An existing file with the
    same header is appended to: ``n_rows`` tells a caller where it stopped (resume).
    """

    def __init__(
        self, path: str | Path, n_classes: int, fsync_every: int = 10, max_pending: int = 2880
    ) -> None:
        self.path = Path(path)
        self.n_classes = n_classes
        self.fsync_every, self.max_pending = fsync_every, max_pending
        header = self.header(n_classes)
        self.n_rows = 0
        if self.path.is_file() and self.path.stat().st_size > 0:
            with self.path.open(newline="") as fh:
                rows = list(csv.reader(fh))
            if rows[0] != header:
                raise ValueError(
                    f"{self.path} exists with other columns {rows[0]}; choose another --out"
                )
            self.n_rows = len(rows) - 1
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(_csv_line(header))
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self._size = os.fstat(self._fd).st_size
        self._pending: deque[bytes] = deque()
        self.dropped = 0  # rows lost because the buffer was full
        self.error: OSError | None = None  # the last write error, while rows wait
        self._unsynced = 0

    @staticmethod
    def header(n_classes: int) -> list[str]:
        """The columns of a night CSV of ``n_classes``."""
        return [*csv_header(n_classes, True), "model_stage", "flags", "revision"]

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
        line = _csv_line([*row, str(model_stage), ";".join(flags), str(int(revision))])
        if len(self._pending) >= self.max_pending:
            self._pending.popleft()
            self.dropped += 1
        self._pending.append(line.encode())
        self._drain()

    def _drain(self) -> None:
        """Write the waiting rows in order, each whole or not at all."""
        while self._pending:
            row = self._pending[0]
            try:
                written = os.write(self._fd, row)
                if written != len(row):
                    raise OSError(errno.ENOSPC, "short write", str(self.path))
            except OSError as err:
                if self.error is None:
                    log.warning("%s: %s; rows wait and writing is retried", self.path, err)
                self.error = err
                os.ftruncate(self._fd, self._size)  # cut back a partial row
                return
            self._pending.popleft()
            self._size += written
            self.n_rows += 1
            self._unsynced += 1
        if self.error is not None:
            log.warning("%s: writing again after %s", self.path, self.error)
            self.error = None
        if self._unsynced >= self.fsync_every:
            self.sync()

    def sync(self) -> None:
        try:
            os.fsync(self._fd)
            self._unsynced = 0
        except OSError as err:
            self.error = err

    def close(self) -> None:
        """Write what waits, fsync and close.

        Raises
        ------
        OSError
            Rows could not be written (the disk is still full, or the buffer overflowed).
        """
        if self._fd < 0:
            return
        self._drain()
        self.sync()
        os.close(self._fd)
        self._fd = -1
        if self._pending or self.dropped:
            reason = self.error.strerror if self.error is not None else "the buffer was full"
            raise OSError(
                errno.EIO,
                f"{len(self._pending) + self.dropped} rows could not be written ({reason}); "
                f"the {self.n_rows} rows before them are complete",
                str(self.path),
            )

    def __enter__(self) -> CsvSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _csv_line(fields: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow(fields)
    return out.getvalue()


def markdown_table(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """A Markdown table: the header, the rule and one line per row (cells as ``str``)."""
    lines = [f"| {' | '.join(columns)} |", "|" + "---|" * len(columns)]
    return lines + [f"| {' | '.join(str(c) for c in row)} |" for row in rows]


def write_report(out: Path, stem: str, result: dict[str, Any], markdown: str) -> None:
    """A study's or benchmark's result as ``out/stem.json`` and its table as ``out/stem.md``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / f"{stem}.md").write_text(markdown)
