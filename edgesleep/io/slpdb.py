"""MIT-BIH Polysomnographic Database (slpdb): real beat times and expert stages.

Reads the CSV export described in ``shared/data/README.md``:
``<record>_beats.csv`` (``time_s,label``) and ``<record>_stages.csv``
(``onset_s,duration_s,stage,events``, R&K stages). Cite Ichimaru & Moody 1999 and
Goldberger et al. 2000 wherever results from these data are shown.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgesleep.dsp import EPOCH_S
from edgesleep.errors import InputError
from edgesleep.stages import UNSCORED, stage_from_string


def subject_of(record: str) -> str:
    """slp01a/slp01b -> slp01 (one subject); other records are their own subject."""
    match = re.fullmatch(r"(slp0[12])[ab]", record)
    return match.group(1) if match else record


@dataclass(frozen=True)
class SlpdbRecord:
    """One slpdb record.

    Attributes
    ----------
    beat_times_s : ndarray of shape (n_beats,), float64, s from the recording start
    beat_labels : ndarray of shape (n_beats,), str (MIT-BIH beat codes, "N", "V", ...)
    stages : ndarray of shape (n_epochs,), int8, YASA integers (MT/M -> unscored); epoch 0
        starts with the recording (epochs before the first scored one are unscored)
    events : list of str, per epoch (respiratory events, space-separated codes)
    """

    record: str
    beat_times_s: np.ndarray
    beat_labels: np.ndarray
    stages: np.ndarray
    events: list[str]


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise InputError(f"{path}: no such file (expected the slpdb CSV export)")
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def record_names(root: str | Path) -> list[str]:
    """Record names listed in ``records.csv``."""
    return [row["record"] for row in _rows(Path(root) / "records.csv")]


def read_record(root: str | Path, record: str) -> SlpdbRecord:
    """Read beats and stages of one record (e.g. ``"slp01a"``)."""
    root = Path(root)
    beats = _rows(root / f"{record}_beats.csv")
    stage_rows = _rows(root / f"{record}_stages.csv")
    onsets = np.array([float(r["onset_s"]) for r in stage_rows])
    first = int(round(onsets[0] / EPOCH_S)) if onsets.size else 0
    expected = (first + np.arange(onsets.size)) * EPOCH_S
    if np.any(np.abs(onsets - expected) > 1e-6):
        raise InputError(
            f"{root / (record + '_stages.csv')}: epochs are not consecutive 30-s epochs "
            "starting on a 30-s boundary"
        )
    # epochs before the first scored one (some records start scoring late) are unscored
    stages = np.full(first + onsets.size, UNSCORED, dtype=np.int8)
    stages[first:] = [stage_from_string(r["stage"]) if r["stage"] else UNSCORED for r in stage_rows]
    events = [""] * first + [r["events"] for r in stage_rows]
    return SlpdbRecord(
        record=record,
        beat_times_s=np.array([float(r["time_s"]) for r in beats]),
        beat_labels=np.array([r["label"] for r in beats]),
        stages=stages,
        events=events,
    )
