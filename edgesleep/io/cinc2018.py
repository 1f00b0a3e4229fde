""" "You Snooze You Win", the PhysioNet/Computing in Cardiology Challenge 2018, as
distributed (``challenge-2018/1.0.0``): the training set's 994 records, one MGH patient each.

Layout: ``training/<record>/<record>.hea`` (WFDB header), ``<record>.mat`` (the 13 signals,
MATLAB v4, 200 Hz: F3-M2, F4-M1, C3-M2, C4-M1, O1-M2, O2-M1, E1-M2, Chin1-Chin2, ABD, CHEST,
AIRFLOW, SaO2, ECG), ``<record>.arousal`` (WFDB annotations) and ``<record>-arousal.mat``
(HDF5, not needed); records are named ``tr\\d\\d-\\d{4}`` (the test set's ``te...`` have no
annotations and are refused). The files are found anywhere under the folder given.

Stages: annotations of ``.arousal`` (any code) whose text is ``W``, ``N1``, ``N2``, ``N3`` or ``R``
mark a stage change at their sample (200 Hz); the stage lasts to the next change, the last
one to the end of the signal; before the first stage note the record is undefined (not
read). Arousal and respiratory events are ``(name`` ... ``name)`` pairs and are ignored; any
other note (none is documented) ends the stage before it, leaves what follows unscored,
and is listed per record (``unknown_notes``).
Epochs are 30 s from the first stage note (which need not fall on a 30-s grid from the
recording start), so each night is read at its scored epochs' onsets (an "annotated"
entry); the import writes them as ``hypnograms/<record>.csv`` (onset, duration, label).
Names, stage strings and the sample time base as read by two independent readers:
DeepPSP/torch_ecg ``torch_ecg/databases/physionet_databases/cinc2018.py`` and
matthp/Physionet2018_Challenge_Submission ``Training Code/ExpandWFDBannotations.py``;
torcheeg/torcheeg ``torcheeg/datasets/module/sleep_stage_detection/p2018.py`` also starts
its epochs at the first stage note (docs/guides/data.md, "CinC 2018 and HMC").

Units come from each header (the challenge's page says µV; torch_ecg's docstring says mV:
the header decides). Channel aliases (``dataset.json``): F4-M1 stands in for Sleep-EDF's
Fpz-Cz (the frontal derivation), E1-M2 (the only EOG, referenced to the right mastoid) for
"EOG horizontal"; C4-M1 and C3-M2 match C4-A1 and C3-A2 by the usual aliases.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgesleep.dsp import EPOCH_S
from edgesleep.errors import InputError
from edgesleep.io import wfdb_record
from edgesleep.io.cohort import check_required, find_records, import_each, write_cohort
from edgesleep.io.dataset import Dataset, Entry, manifest_path
from edgesleep.io.writers import write_scored_csv
from edgesleep.stages import N1, N2, N3, REM, UNSCORED, W

RECORD = re.compile(r"tr\d{2}-\d{4}")
STAGE_NOTES = {"W": W, "N1": N1, "N2": N2, "N3": N3, "R": REM}
GRID_TOLERANCE_S = 1.0  # a stage change this close to the 30-s grid is on it
CHANNEL_ALIASES = {"Fpz-Cz": "F4-M1", "EOG horizontal": "E1-M2", "EMG": "Chin1-Chin2"}
CHANNELS = {
    "F3-M2": "EEG, F3 to the right mastoid", "F4-M1": "EEG, F4 to the left mastoid "
    "(stands in for Sleep-EDF's Fpz-Cz)", "C3-M2": "EEG, C3 to the right mastoid (C3-A2)",
    "C4-M1": "EEG, C4 to the left mastoid (C4-A1, seed 1's source channel)",
    "O1-M2": "EEG, O1 to the right mastoid", "O2-M1": "EEG, O2 to the left mastoid",
    "E1-M2": "EOG, left eye to the right mastoid (stands in for 'EOG horizontal')",
    "Chin1-Chin2": "chin EMG", "ECG": "ECG (one lead)", "ABD": "abdominal effort",
    "CHEST": "chest effort", "AIRFLOW": "airflow", "SaO2": "oxygen saturation (%)",
}  # fmt: skip
CITATION = (
    "Ghassemi MM, Moody BE, Lehman LH, Song C, Li Q, Sun H, Mark RG, Westover MB, Clifford "
    "GD. You Snooze, You Win: the PhysioNet/Computing in Cardiology Challenge 2018. "
    "Computing in Cardiology 45 (2018), doi:10.22489/CinC.2018.049; PhysioNet "
    "challenge-2018 1.0.0, doi:10.13026/6phb-r450; Goldberger AL et al. Circulation "
    "101(23):e215-e220 (2000)."
)
POPULATION = (
    "clinical patients monitored at the MGH sleep laboratory for the diagnosis of sleep "
    "disorders (adults, many with sleep apnea), in a lab with a full PSG: not wearable users"
)


def _is_event(text: str) -> bool:
    """An arousal or respiratory event's bound: ``(name`` or ``name)``."""
    return text.startswith("(") or text.endswith(")")


def read_stages(header_path: Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """The scored epochs of one record from its ``.arousal`` stage notes.

    Returns
    -------
    onset_s : ndarray of shape (n_epochs,), float64, s from the recording start
    stages : ndarray of shape (n_epochs,), int8, YASA integers
    facts : the header's channels, rate and duration, and where scoring starts

    Raises
    ------
    InputError
        No ``.arousal``, no stage note, a note past the signal's end, a stage change off
        the 30-s grid of the first note, a rate that puts no whole sample count in 30 s.
    """
    arousal = header_path.with_suffix(".arousal")
    if not arousal.is_file():
        raise InputError(
            f"{arousal}: missing (the stage annotations of {header_path.stem}); fetch the "
            "record again"
        )
    head = wfdb_record.header(header_path)
    sfreq, n_times = float(head.fs), int(head.sig_len)
    per_epoch = EPOCH_S * sfreq
    if abs(per_epoch - round(per_epoch)) > 1e-9:
        raise InputError(f"{header_path}: {sfreq:g} Hz puts no whole number of samples in 30 s")
    # the texts are what the readers use (aux_note), whatever the annotation code
    samples, texts = wfdb_record.read_notes(arousal, any_code=True)
    # a note that is neither a stage nor an event bound ends the stage before it: what
    # follows is unscored, never the last stage carried on
    unknown = sorted({t for t in texts if t not in STAGE_NOTES and not _is_event(t)})
    notes = sorted((int(s), t) for s, t in zip(samples, texts, strict=True) if not _is_event(t))
    if not any(t in STAGE_NOTES for _, t in notes):
        raise InputError(f"{arousal}: no stage note (W, N1, N2, N3, R) among {len(texts)} notes")
    late = [(s, t) for s, t in notes if s >= n_times]
    if late:
        sample, text = late[0]
        raise InputError(
            f"{arousal}: stage note {text!r} at sample {sample} ({sample / sfreq:.1f} s) lies "
            f"past the signal's end ({n_times} samples, {n_times / sfreq:.1f} s); the "
            "annotation file does not belong to this signal, or the signal is truncated"
        )
    notes = notes[next(k for k, (_, t) in enumerate(notes) if t in STAGE_NOTES) :]
    first = notes[0][0]
    n_epochs = (n_times - first) // round(per_epoch)
    stages = np.full(n_epochs, UNSCORED, dtype=np.int8)
    starts = []
    for sample, text in notes:
        position = (sample - first) / per_epoch
        if abs(position - round(position)) * EPOCH_S > GRID_TOLERANCE_S:
            raise InputError(
                f"{arousal}: a stage change at {sample / sfreq:.2f} s is not on the 30-s grid "
                f"that starts at the first stage note ({first / sfreq:.2f} s)"
            )
        starts.append((round(position), STAGE_NOTES.get(text, UNSCORED)))
    for k, (start, stage) in enumerate(starts):
        stop = starts[k + 1][0] if k + 1 < len(starts) else n_epochs
        stages[start:stop] = stage
    onsets = (first + np.arange(n_epochs) * per_epoch) / sfreq
    facts = {"channels": [str(c) for c in head.sig_name], "sfreq": sfreq,
             "duration_s": n_times / sfreq, "scoring_starts_s": first / sfreq,
             "scored_epochs": int((stages >= 0).sum()), "unknown_notes": unknown}  # fmt: skip
    return onsets, stages, facts


def import_cinc2018(
    src: Path,
    out: Path,
    progress: Callable[[int, int], None] | None = None,
    require: Sequence[str] = (),
) -> Dataset:
    """CinC 2018's training records (module docstring) -> the dataset layout in ``out``: a
    manifest pointing at the original ``.hea`` files (nothing copied), a CSV hypnogram per
    record, and ``dataset.json`` with what each record holds and the records left out.

    Parameters
    ----------
    require : channels every record must hold (e.g. ``["ECG"]``); a record without one is
        left out and listed

    Raises
    ------
    InputError
        No record there, or none could be imported.
    """
    headers = find_records(
        src, "*.hea", RECORD, "no CinC 2018 training record here (expected training/tr03-0005/"
        "tr03-0005.hea with its .mat and .arousal); fetch them with `edgesleep data fetch "
        "cinc2018`",
    )  # fmt: skip

    def read_one(name: str) -> tuple[Entry, dict[str, Any]]:
        onsets, stages, facts = read_stages(headers[name])
        check_required(facts["channels"], require, CHANNEL_ALIASES, headers[name])
        if stages.size == 0:
            raise InputError(f"{headers[name]}: no whole 30-s epoch after the first stage note")
        write_scored_csv(out / "hypnograms" / f"{name}.csv", onsets, stages)
        entry = Entry(name, name, 1, manifest_path(headers[name], out),
                      f"hypnograms/{name}.csv", epochs="annotated")  # fmt: skip
        return entry, facts

    done = import_each(sorted(headers), read_one, progress)
    return write_cohort(out, src, done, require, {
        "name": "cinc2018", "citation": CITATION, "population": POPULATION, "sfreq": 200,
        "channel_aliases": CHANNEL_ALIASES, "channels": CHANNELS,
    })  # fmt: skip
