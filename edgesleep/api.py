"""A small Python API for notebooks: score an array or an EDF file, get a hypnogram.

>>> from edgesleep.api import score_file
>>> hyp = score_file("night.edf", "exported/")       # doctest: +SKIP
>>> hyp.summary()["TST"], hyp.stages[:10]           # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgesleep.agreement import Night, agreement
from edgesleep.dsp import EPOCH_S
from edgesleep.errors import InputError
from edgesleep.io.edf import read_chunks
from edgesleep.io.heart import SERIES_SUFFIXES, read_series
from edgesleep.io.hypnogram import read_expert, read_labels_csv
from edgesleep.io.stats import sleep_statistics
from edgesleep.io.writers import CsvSink, plot_hypnogram, write_hypnogram_edf
from edgesleep.night_file import filler
from edgesleep.ort import ExportedModel
from edgesleep.stager import EpochResult, score_series, score_signal
from edgesleep.stages import collapse_labels, to_classes

log = logging.getLogger("edgesleep")


@dataclass
class Hypnogram:
    """A scored night.

    Attributes
    ----------
    stages : ndarray of shape (n_epochs,), int; class indices of ``labels`` (for 5 classes
        the YASA integers), -1 for unusable epochs
    probabilities : ndarray of shape (n_epochs, n_classes)
    labels : class names
    results : the stager's per-epoch results (flags, model stage)
    start : recording start, if known
    """

    stages: np.ndarray
    probabilities: np.ndarray
    labels: tuple[str, ...]
    results: list[EpochResult] = field(default_factory=list)
    start: dt.datetime | None = None
    model_info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_results(cls, results: list[EpochResult], model: ExportedModel, **kw: Any) -> Hypnogram:
        """The night from the stager's results: the epochs between two results (a hole
        that ended a segment) get rows flagged ``gap`` by :func:`edgesleep.night_file.filler`,
        as a streamed night does."""
        n_classes = model.info.n_classes
        results = _with_filler(results, n_classes)
        return cls(
            stages=np.array([r.stage for r in results], dtype=np.int64),
            probabilities=np.stack([r.probabilities for r in results])
            if results
            else np.zeros((0, n_classes)),
            labels=model.info.labels,
            results=results,
            model_info=model.info.raw,
            **kw,
        )

    @property
    def n_classes(self) -> int:
        return len(self.labels)

    @property
    def n_epochs(self) -> int:
        return int(self.stages.shape[0])

    @property
    def flagged(self) -> int:
        """Epochs with a quality flag of their own (not only ``context``)."""
        return sum(1 for r in self.results if set(r.flags) - {"context"})

    def summary(self) -> dict[str, float]:
        """YASA-style night statistics (:func:`edgesleep.io.stats.sleep_statistics`)."""
        return sleep_statistics(self.stages, self.n_classes)

    def to_csv(self, path: str | Path) -> None:
        Path(path).unlink(missing_ok=True)
        with CsvSink(path, self.n_classes) as sink:
            for r in self.results:
                sink.write(r.index, r.stage, r.probabilities, r.model_stage, r.flags)

    def to_edf(self, path: str | Path) -> None:
        epochs = np.array([r.index for r in self.results]) if self.results else None
        write_hypnogram_edf(path, self.stages, self.n_classes, self.start, 0.0, epochs)

    def plot(self, path: str | Path, truth: np.ndarray | None = None, title: str = "") -> None:
        plot_hypnogram(path, self.stages, self.n_classes, self.probabilities, truth, title)


def _with_filler(results: list[EpochResult], n_classes: int) -> list[EpochResult]:
    out: list[EpochResult] = []
    for r in results:
        out += [*(filler(out[-1].index, r.index, n_classes) if out else []), r]
    return out


def stage_night(
    night: Path,
    model: ExportedModel,
    out: Path,
    channel: str | None = None,
    delay: int | None = None,
    plot: bool = False,
    source: str | None = None,
) -> Hypnogram:
    """Score one night (an EDF, or a beat or heart-rate CSV: :mod:`edgesleep.io.heart`,
    ``source`` for one without a header line) into ``out``: ``NAME.csv`` (one row per epoch, with
    probabilities and flags), ``NAME-hypnogram.edf`` (EDF+ annotations), ``NAME.png`` with
    ``plot``, and ``NAME.json`` (summary statistics), written last: its presence means the
    night is done (``edgesleep stage`` skips such nights unless told to overwrite). Every
    file is written whole under a hidden name first, then replaces the old one: a night that
    fails (a full disk) leaves its old result as it was, and never a cut one marked done.

    Raises
    ------
    InputError
        A file that cannot be staged (unreadable, no such channel, shorter than an epoch);
        nothing is written for it.
    """
    if night.suffix.lower() in SERIES_SUFFIXES:
        hyp = score_series_file(night, model, source, delay)
    else:
        hyp = score_file(night, model, channel, delay)
    if hyp.n_epochs == 0:
        raise InputError(f"{night}: shorter than one 30-s epoch; nothing to stage")
    out.mkdir(parents=True, exist_ok=True)
    summary = {
        "night": str(night),
        "model": str(model.folder),
        "synthetic_model": model.info.synthetic,
        "n_epochs": hyp.n_epochs,
        "flagged_epochs": hyp.flagged,
        "statistics": hyp.summary(),
    }
    names = {"csv": f"{night.stem}.csv", "edf": f"{night.stem}-hypnogram.edf"}
    names |= {"png": f"{night.stem}.png"} if plot else {}
    new = {key: out / f".new-{name}" for key, name in names.items()}  # suffix kept
    done = out / f"{night.stem}.json"
    try:  # every file whole before any replaces an old one; the summary last
        hyp.to_csv(new["csv"])
        hyp.to_edf(new["edf"])
        if plot:
            hyp.plot(new["png"], title=night.name)
        new["json"] = out / f".new-{done.name}"
        new["json"].write_text(json.dumps(summary, indent=2) + "\n")
        for path in new.values():
            _fsync(path)
    except BaseException:
        for path in new.values():
            path.unlink(missing_ok=True)
        raise
    done.unlink(missing_ok=True)  # not done while the old and new files are swapped
    for key, name in names.items():
        os.replace(new[key], out / name)
    os.replace(new["json"], done)
    return hyp


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_model(model: str | Path | ExportedModel, threads: int = 1) -> ExportedModel:
    if isinstance(model, ExportedModel):
        return model
    from edgesleep.installed import resolve_model

    return ExportedModel(resolve_model(Path(model)), threads=threads)


def score_array(
    data: np.ndarray,
    sfreq: float,
    model: str | Path | ExportedModel,
    delay: int | None = None,
    channel: str | None = None,
    full_scale_uv: float | None = None,
) -> Hypnogram:
    """Score one channel (µV, any integer rate) with an exported model."""
    exported = load_model(model)
    results = score_signal(exported, np.asarray(data), sfreq, delay, full_scale_uv, channel)
    return Hypnogram.from_results(results, exported)


def score_file(
    path: str | Path,
    model: str | Path | ExportedModel,
    channel: str | None = None,
    delay: int | None = None,
) -> Hypnogram:
    """Score a night from an EDF file: the model's channel (or ``channel``) at the file's
    rate, through the same front end as streaming."""
    exported = load_model(model)
    signal, pieces = read_chunks(path, channel or exported.info.signal_channel)
    _warn_synthetic(exported)
    results = score_signal(
        exported, pieces, signal.sfreq, delay, signal.full_scale_uv, signal.channel
    )
    return Hypnogram.from_results(results, exported, start=signal.start)


def _warn_synthetic(model: ExportedModel) -> None:
    if model.info.synthetic:
        log.warning(
            "%s: this model was trained on SYNTHETIC data; its stages say nothing about "
            "real sleep. Train or finetune on real recordings before trusting them.",
            model.folder,
        )


def score_beats(
    time_s: np.ndarray,
    model: str | Path | ExportedModel,
    delay: int | None = None,
    n_epochs: int | None = None,
) -> Hypnogram:
    """Score a night from beat (R-peak) times, s from the recording start (any order;
    beats before 0 serve as context), with a model of a heart input kind."""
    exported = load_model(model)
    _warn_synthetic(exported)
    results = score_series(exported, "beats", np.asarray(time_s), None, delay, n_epochs)
    return Hypnogram.from_results(results, exported)


def score_heart_rate(
    time_s: np.ndarray,
    bpm: np.ndarray,
    model: str | Path | ExportedModel,
    delay: int | None = None,
    n_epochs: int | None = None,
) -> Hypnogram:
    """Score a night from heart-rate samples (s from the recording start, any order and
    spacing; beats/min), e.g. a watch's photoplethysmography heart rate."""
    exported = load_model(model)
    _warn_synthetic(exported)
    results = score_series(
        exported, "heart-rate", np.asarray(time_s), np.asarray(bpm), delay, n_epochs
    )
    return Hypnogram.from_results(results, exported)


def score_series_file(
    path: str | Path,
    model: str | Path | ExportedModel,
    source: str | None = None,
    delay: int | None = None,
) -> Hypnogram:
    """Score a beat or heart-rate CSV (:mod:`edgesleep.io.heart`; ``source`` names what a
    file without a header line holds)."""
    series = read_series(path, source)
    n_epochs = None if series.end_s is None else int(series.end_s // EPOCH_S)
    if series.values is None:
        return score_beats(series.time_s, model, delay, n_epochs)
    return score_heart_rate(series.time_s, series.values, model, delay, n_epochs)


def compare(staged: str | Path, expert: str | Path, subject: str | None = None) -> dict[str, Any]:
    """Agreement between staged nights and the expert's, epoch by epoch and as a wearable
    validation study reports it (:mod:`edgesleep.agreement`).

    Parameters
    ----------
    staged : a hypnogram CSV (``stage``'s output, or any CSV
        :func:`edgesleep.io.hypnogram.read_labels_csv` reads), or a folder of them
    expert : a hypnogram in any format :func:`edgesleep.io.hypnogram.read_expert` reads,
        or a folder of them (paired with the staged nights by the longest common start of
        their names, at least 4 characters)
    subject : a regular expression whose first group, searched in a staged night's name,
        is its subject (nights of one subject are resampled together); default: each night
        its own subject

    Returns
    -------
    dict
        :func:`edgesleep.metrics.evaluate` on every epoch both score (accuracy, kappa, macro
        F1, confusion matrix, per-class sensitivity) in the coarser of the class sets
        (``classes``); ``n_staged`` and ``n_expert`` epochs; ``formats`` (what was read);
        ``agreement`` (:func:`edgesleep.agreement.agreement`: biases, limits of agreement,
        bootstrap intervals, one row per night).
    """
    pairs = _pairs(Path(staged), Path(expert))
    read = []
    for s, e in pairs:
        pred, n_pred = read_labels_csv(s)
        truth, n_truth, fmt = read_expert(e)
        read.append((s, pred, n_pred, truth, n_truth, fmt))
    n_classes = min(min(r[2], r[4]) for r in read)
    nights = []
    for s, pred, n_pred, truth, n_truth, _ in read:
        values = [to_classes(v, n_classes) if n == 5 else collapse_labels(v, n, n_classes)
                  for v, n in ((pred, n_pred), (truth, n_truth))]  # fmt: skip
        match = re.search(subject, s.stem) if subject else None
        nights.append(Night(s.stem, match.group(1) if match else s.stem, *values))
    result = agreement(nights, n_classes)
    if not result["pooled"]:
        raise InputError(f"{staged} and {expert}: no epoch scored in both")
    n_staged = sum(int(n.staged.shape[0]) for n in nights)
    n_expert = sum(int(n.expert.shape[0]) for n in nights)
    formats = sorted({r[5] for r in read})
    return {**result["pooled"], "classes": result["classes"], "n_staged": n_staged,
            "n_expert": n_expert, "formats": formats, "agreement": result}  # fmt: skip


def _pairs(staged: Path, expert: Path) -> list[tuple[Path, Path]]:
    """(staged, expert) files: the two given, or each staged CSV of a folder with the
    expert file of the other folder whose name shares the longest start (≥ 4 characters).

    Raises
    ------
    InputError
        A folder without staged CSVs, or no expert file for a staged night (named).
    """
    if not staged.is_dir():
        return [(staged, expert)]
    nights = sorted(p for p in staged.glob("*.csv") if not p.name.startswith("."))
    experts = sorted(p for p in expert.iterdir() if p.is_file()) if expert.is_dir() else []
    if not nights:
        raise InputError(f"{staged}: no staged CSV files")

    def shared(a: str, b: str) -> int:
        n = 0
        while n < min(len(a), len(b)) and a[n] == b[n]:
            n += 1
        return n

    pairs = []
    for night in nights:
        best = max(experts, key=lambda e: shared(night.stem, e.name), default=None)
        if best is None or shared(night.stem, best.name) < 4:
            raise InputError(f"{night.name}: no expert hypnogram in {expert} shares its name's "
                             "start; name them alike (e.g. 1360686.csv and "
                             "1360686_labeled_sleep.txt)")  # fmt: skip
        pairs.append((night, best))
    return pairs
