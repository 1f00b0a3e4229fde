"""The Haaglanden Medisch Centrum sleep staging database (HMC, PhysioNet
``hmc-sleep-staging/1.1``), as distributed: 151 whole-night PSGs of 151 patients.

Layout: ``recordings/SN001.edf`` (EDF: EEG F4-M1, C4-M1, O2-M1, C3-M2; EOG E1-M2, E2-M2; EMG
chin; ECG; 256 Hz) and beside it ``SN001_sleepscoring.edf``, an EDF+ whose annotations are
the scoring: ``Sleep stage W``, ``Sleep stage N1``, ``N2``, ``N3``, ``Sleep stage R`` in
30-s epochs, and ``Lights off`` / ``Lights on`` (with ``@@<channel>`` after them, e.g.
``Lights off@@EEG F4-A1``); ``SN001_sleepscoring.txt`` holds the same as CSV and is not
needed. ``SN001.sleepscoring.edf`` (torcheeg's docstring spelling) is accepted too. The files
are found anywhere under the folder given.

Every recording is its own patient. The stage epochs are read at their own onsets (an
"annotated" entry, as MASS's): nothing assumes they start on a 30-s grid from the file's
start; lights-off and lights-on go into the manifest, so ``--crop in-bed`` keeps the scored
epochs between them. Names and stage strings as read by two independent readers:
935963004/NeuroLM ``dataset_maker/prepare_HMC.py`` (its ``_sleepscoring.txt``: the stage
strings, 30-s durations, the lights rows skipped) and torcheeg/torcheeg
``torcheeg/datasets/module/sleep_stage_detection/hmc.py`` (the ``sleepscoring.edf`` EDF+
annotations, the channel labels, ``Lights off@@EEG F4-A1``) (docs/guides/data.md, "CinC
2018 and HMC").

Channel aliases (``dataset.json``): EEG F4-M1 stands in for Sleep-EDF's Fpz-Cz, EOG E1-M2
for "EOG horizontal"; EEG C4-M1 and C3-M2 match C4-A1 and C3-A2 by the usual aliases.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgesleep.dsp import EPOCH_S
from edgesleep.errors import InputError
from edgesleep.io import edf
from edgesleep.io.cohort import check_required, find_records, import_each, write_cohort
from edgesleep.io.dataset import Dataset, Entry, manifest_path
from edgesleep.io.hypnogram import scored_epochs

RECORD = re.compile(r"SN\d{3}")
SCORING_SUFFIXES = ("_sleepscoring.edf", ".sleepscoring.edf")
CHANNEL_ALIASES = {"Fpz-Cz": "EEG F4-M1", "EOG horizontal": "EOG E1-M2", "EMG": "EMG chin"}
CHANNELS = {
    "EEG F4-M1": "EEG, F4 to the left mastoid (stands in for Sleep-EDF's Fpz-Cz)",
    "EEG C4-M1": "EEG, C4 to the left mastoid (C4-A1)",
    "EEG O2-M1": "EEG, O2 to the left mastoid", "EEG C3-M2": "EEG, C3 to the right mastoid",
    "EOG E1-M2": "EOG, left eye to the right mastoid (stands in for 'EOG horizontal')",
    "EOG E2-M2": "EOG, right eye to the right mastoid", "EMG chin": "chin EMG",
    "ECG": "ECG (one lead)",
}  # fmt: skip
CITATION = (
    "Alvarez-Estevez D, Rijsman RM. Inter-database validation of a deep learning approach "
    "for automatic sleep scoring. PLoS ONE 16(8):e0256111 (2021); Alvarez-Estevez D, "
    "Rijsman R. Haaglanden Medisch Centrum sleep staging database (version 1.1), PhysioNet "
    "(2022), doi:10.13026/t79q-fr32; Goldberger AL et al. Circulation 101(23):e215-e220 (2000)."
)
POPULATION = (
    "clinical patients referred to the HMC sleep centre (The Netherlands, 2018) for PSG "
    "in the context of different sleep disorders, in a lab with a full PSG: not wearable "
    "users"
)
END_TOLERANCE_S = 1.0  # an epoch may end this much past the signal (rounding of the export)


def scoring_file(recording: Path) -> Path:
    """The scoring EDF+ beside a recording.

    Raises
    ------
    InputError
        There is none (the names looked for are given).
    """
    for suffix in SCORING_SUFFIXES:
        path = recording.with_name(recording.stem + suffix)
        if path.is_file():
            return path
    raise InputError(
        f"{recording}: no scoring file beside it (expected {recording.stem}_sleepscoring.edf, "
        "the EDF+ with the stage annotations); fetch the record again"
    )


def read_scoring(recording: Path) -> tuple[Path, dict[str, Any], float | None, float | None]:
    """Check one recording's scoring against its signal.

    Returns
    -------
    scoring : the scoring file
    facts : channels, duration, scored epochs
    lights_off_s, lights_on_s : s from the recording start, None when not annotated

    Raises
    ------
    InputError
        No scoring file, no stage annotation, an epoch that is not 30 s, a stage past the
        signal's end.
    """
    scoring = scoring_file(recording)
    annotations = edf.read_annotations(scoring)
    onsets, durations, _ = scored_epochs(annotations, scoring)
    if not np.allclose(durations, EPOCH_S):
        raise InputError(f"{scoring}: stage epochs of {sorted(set(durations.tolist()))} s; "
                         "HMC scores 30-s epochs")  # fmt: skip
    duration_s = float(edf.header(recording)["duration_s"])  # type: ignore[arg-type]
    past = onsets + durations > duration_s + END_TOLERANCE_S
    if past.any():
        raise InputError(
            f"{scoring}: a stage epoch at {onsets[past][0]:.0f} s lies past the end of "
            f"{recording.name} ({duration_s:.0f} s); the scoring does not belong to this "
            "recording, or the recording is truncated"
        )
    lights = {a.description.split("@@")[0].strip().lower(): a.onset_s for a in annotations
              if a.description.lower().startswith("lights o")}  # fmt: skip
    labels = [c.label for c in edf.channels(recording)]
    facts = {"channels": labels, "duration_s": duration_s, "scored_epochs": int(onsets.size),
             "scoring": scoring.name}  # fmt: skip
    return scoring, facts, lights.get("lights off"), lights.get("lights on")


def import_hmc(
    src: Path,
    out: Path,
    progress: Callable[[int, int], None] | None = None,
    require: Sequence[str] = (),
) -> Dataset:
    """HMC's recordings and scorings (module docstring) -> the dataset layout in ``out``: a
    manifest pointing at the original files (nothing copied) and ``dataset.json`` with what
    each record holds and the records left out.

    Parameters
    ----------
    require : channels every record must hold (e.g. ``["ECG"]``); a record without one is
        left out and listed

    Raises
    ------
    InputError
        No recording there, or none could be imported.
    """
    recordings = find_records(
        src, "*.[eE][dD][fF]", RECORD, "no HMC recording here (expected recordings/SN001.edf "
        "with SN001_sleepscoring.edf beside it); fetch them with `edgesleep data fetch hmc`",
    )  # fmt: skip

    def read_one(name: str) -> tuple[Entry, dict[str, Any]]:
        scoring, facts, off_s, on_s = read_scoring(recordings[name])
        check_required(facts["channels"], require, CHANNEL_ALIASES, recordings[name])
        both = off_s is not None and on_s is not None and off_s < on_s
        entry = Entry(name, name, 1, manifest_path(recordings[name], out),
                      manifest_path(scoring, out), off_s if both else None,
                      on_s if both else None, epochs="annotated")  # fmt: skip
        return entry, facts | {"lights_off_s": off_s, "lights_on_s": on_s}

    done = import_each(sorted(recordings), read_one, progress)
    return write_cohort(out, src, done, require, {
        "name": "hmc", "citation": CITATION, "population": POPULATION,
        "channel_aliases": CHANNEL_ALIASES, "channels": CHANNELS,
    })  # fmt: skip
