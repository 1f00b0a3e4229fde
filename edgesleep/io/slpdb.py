"""MIT-BIH Polysomnographic Database (slpdb): real beat times and expert stages.

Reads either

- PhysioNet's original WFDB records (``RECORDS``, ``<record>.hea``, beat annotations
  ``<record>.ecg``, sleep-stage annotations ``<record>.st``: NOTE annotations whose aux
  text is the R&K stage (``W``, ``1``-``4``, ``R``, ``MT``) followed by the respiratory
  events of the epoch; each applies to the 30 s that follow it). Header and beats are read
  with the ``wfdb`` package (host side: ``pip install 'edgesleep[physionet]'``); beat
  annotations are the MIT-BIH beat codes (``N``, ``V``, ...), other annotations (rhythm,
  noise) are dropped. The stage notes are read by
  :func:`edgesleep.io.wfdb_record.read_notes`, because
  ``wfdb.rdann`` removes every NOTE at sample 0 as a possible file definition, and slpdb's
  first stage note is at sample 0; or
- the CSV export described in ``shared/data/README.md``: ``<record>_beats.csv``
  (``time_s,label``) and ``<record>_stages.csv`` (``onset_s,duration_s,stage,events``).

Cite Ichimaru & Moody 1999 and Goldberger et al. 2000 wherever results from these data are
shown.
"""

from __future__ import annotations

import csv
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgesleep.dsp import EPOCH_S
from edgesleep.errors import InputError
from edgesleep.io.dataset import plain_name
from edgesleep.io.wfdb_record import read_notes
from edgesleep.stages import UNSCORED, stage_from_string

BEAT_CODES = frozenset("NLRBAaJSVrFejnE/fQ?")  # MIT-BIH beat annotation codes


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
    """Record names listed in ``records.csv`` (CSV export) or ``RECORDS`` (WFDB)."""
    root = Path(root)
    if is_wfdb(root):
        listed = root / "RECORDS"
        if listed.is_file():
            return [plain_name(r, listed) for r in listed.read_text().split()]
        return sorted(p.stem for p in root.glob("*.hea"))
    return [plain_name(row["record"], root / "records.csv") for row in _rows(root / "records.csv")]


def is_wfdb(root: Path) -> bool:
    """Whether ``root`` holds WFDB records (rather than the CSV export)."""
    return not (root / "records.csv").is_file() and (
        (root / "RECORDS").is_file() or any(root.glob("*.hea"))
    )


def _record(
    where: Path, record: str, beat_times_s: np.ndarray, beat_labels: np.ndarray,
    onsets_s: np.ndarray, stage_texts: list[str], events: list[str],
) -> SlpdbRecord:  # fmt: skip
    first = int(round(onsets_s[0] / EPOCH_S)) if onsets_s.size else 0
    expected = (first + np.arange(onsets_s.size)) * EPOCH_S
    if np.any(np.abs(onsets_s - expected) > 0.01):
        raise InputError(
            f"{where}: stage annotations are not consecutive 30-s epochs starting on a 30-s "
            "boundary"
        )
    # epochs before the first scored one (some records start scoring late) are unscored
    stages = np.full(first + onsets_s.size, UNSCORED, dtype=np.int8)
    try:
        stages[first:] = [stage_from_string(t) if t else UNSCORED for t in stage_texts]
    except ValueError as err:
        raise InputError(f"{where}: {err}") from None
    return SlpdbRecord(record, beat_times_s, beat_labels, stages, [""] * first + events)


def read_record(root: str | Path, record: str) -> SlpdbRecord:
    """Read beats and stages of one record (e.g. ``"slp01a"``), WFDB or CSV export."""
    root = Path(root)
    if is_wfdb(root):
        return read_wfdb_record(root, record)
    beats = _rows(root / f"{record}_beats.csv")
    stage_rows = _rows(root / f"{record}_stages.csv")
    return _record(
        root / f"{record}_stages.csv", record,
        np.array([float(r["time_s"]) for r in beats]), np.array([r["label"] for r in beats]),
        np.array([float(r["onset_s"]) for r in stage_rows]),
        [r["stage"] for r in stage_rows], [r["events"] for r in stage_rows],
    )  # fmt: skip


def read_wfdb_record(root: Path, record: str) -> SlpdbRecord:
    """One WFDB record: ``<record>.hea`` (sampling rate), ``.ecg`` (beats), ``.st`` (stages).

    Raises
    ------
    InputError
        A file is missing (which one is named) or ``wfdb`` is not installed.
    """
    try:
        import wfdb
    except ImportError:
        raise InputError(
            "reading slpdb's WFDB records needs the wfdb package: "
            "pip install 'edgesleep[physionet]'"
        ) from None
    for ext in ("hea", "ecg", "st"):
        if not (root / f"{record}.{ext}").is_file():
            raise InputError(
                f"{root / record}.{ext}: no such file (a WFDB record of slpdb needs .hea, .ecg "
                "and .st; fetch it with `edgesleep data fetch slpdb`)"
            )
    path = str(root / record)
    with warnings.catch_warnings():  # wfdb's own use of pandas deprecations, not ours
        warnings.simplefilter("ignore", DeprecationWarning)
        sfreq = float(wfdb.rdheader(path).fs or 0.0)
        if not 1.0 <= sfreq <= 100_000.0:  # a header's rate divides every sample index
            raise InputError(f"{path}.hea: sampling rate {sfreq:g} Hz; a WFDB record of slpdb "
                             "has 250 Hz (refetch or repair the header)")  # fmt: skip
        beats = wfdb.rdann(path, "ecg")
    is_beat = np.isin(np.asarray(beats.symbol), sorted(BEAT_CODES))
    samples, notes = read_notes(root / f"{record}.st")
    texts = [t.split() for t in notes]
    return _record(
        root / f"{record}.st", record,
        np.asarray(beats.sample, dtype=np.float64)[is_beat] / sfreq,
        np.asarray(beats.symbol)[is_beat],
        samples / sfreq, [t[0] if t else "" for t in texts], [" ".join(t[1:]) for t in texts],
    )  # fmt: skip
