"""The Montreal Archive of Sleep Studies (MASS, O'Reilly et al. 2014), as distributed.

Each night is a pair of EDF files named by the night's id ``01-SS-NNNN`` (cohort 01,
subset SS = 01..05, subject NNNN): ``<id> PSG.edf`` (the signals, 256 Hz) and
``<id> Base.edf`` (an EDF+ with the expert stages as annotations: ``Sleep stage W``,
``1``, ``2``, ``3``, ``4``, ``R``, ``?``, ``Movement time``; where a night has no Base
file, the stage annotations of ``<id> Annotations.edf`` are read, other events ignored),
in one folder per subset or in subfolders (``SS2/version2014/``, ``SS2/annotations/``,
``SS3/bio/``...: the files are found anywhere under the root). Every night is its own
subject (200 subjects in SS1-SS5). Names and stage strings as read by two independent
readers: gist-ailab/SleePyCo ``preprocess_utils/prepare_mass.py`` and jesperstroem/CSDP
``csdp_datastore/mass/mass_base.py`` (docs/guides/data.md, "MASS and NSRR").

Stages: SS1 and SS3 are scored in 30-s epochs (AASM), SS2, SS4 and SS5 in 20-s epochs
(R&K); R&K 3 and 4 -> N3, ``?`` -> unscored. C3 and C4 are referenced to CLE (computed
linked ears) or, in some nights, LER (linked-ear reference); the import records which per
subset (``dataset.json``), and the channel aliases match C4-A1 to any of them. Epochs
start where scoring starts (not on a 30-s grid from the file start), so each is read as a
30-s window at its own onset, a 20-s epoch widened by 5 s on either side (seed 1's
expansion); windows that would reach before the file's start or past its end are dropped
(:mod:`edgesleep.io.dataset`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from edgesleep.errors import InputError
from edgesleep.io import edf
from edgesleep.io.dataset import Dataset, Entry, manifest_path, read_dataset, write_dataset
from edgesleep.io.hypnogram import scored_epochs

NIGHT_ID = re.compile(r"(?P<id>\d{2}-(?P<subset>\d{2})-\d{4}) (?P<kind>PSG|Base|Annotations)\.edf",
                      re.IGNORECASE)  # fmt: skip
CITATION = (
    "O'Reilly C, Gosselin N, Carrier J, Nielsen T. Montreal Archive of Sleep Studies: an "
    "open-access resource for instrument benchmarking and exploratory research. Journal of "
    "Sleep Research 23(6):628-635 (2014)."
)
CENTRAL = re.compile(r"(?:eeg\s+)?c[34]-(?P<ref>\w+)", re.IGNORECASE)


def find_nights(src: Path) -> list[tuple[str, str, Path, Path]]:
    """Every night under ``src``: (id, subset "SS3", PSG path, Base path), sorted by id.

    Raises
    ------
    InputError
        No ``<id> PSG.edf`` under ``src``, or a PSG without its ``<id> Base.edf``.
    """
    files: dict[tuple[str, str], Path] = {}
    for path in sorted(src.rglob("*.[eE][dD][fF]")):
        match = NIGHT_ID.fullmatch(path.name)
        if match:
            files[(match["id"], match["kind"].lower())] = path
    ids = sorted(i for i, kind in files if kind == "psg")
    if not ids:
        raise InputError(
            f"{src}: no MASS night here (expected files named '01-03-0001 PSG.edf' with "
            "'01-03-0001 Base.edf' beside them)"
        )
    stages = {i: files.get((i, "base")) or files.get((i, "annotations")) for i in ids}
    missing = [i for i, path in stages.items() if path is None]
    if missing:
        raise InputError(
            f"{src}: no stage annotation file for {missing[:5]} (expected '<id> Base.edf', "
            "the EDF+ with the expert stages, or '<id> Annotations.edf', somewhere under "
            "the same folder)"
        )
    return [(i, f"SS{int(i.split('-')[1])}", files[(i, "psg")], stages[i])  # type: ignore[misc]
            for i in ids]  # fmt: skip


def import_mass(
    src: Path, out: Path, progress: Callable[[int, int], None] | None = None
) -> Dataset:
    """MASS as distributed (module docstring) -> the dataset layout in ``out``: a manifest
    that points at the original files (nothing is copied), scored at annotation onsets.

    Raises
    ------
    InputError
        Not MASS's layout, a missing Base file, a Base file without stages.
    """
    nights = find_nights(src)
    entries = []
    epoch_s: dict[str, set[int]] = {}
    refs: dict[str, set[str]] = {}
    for i, (night_id, subset, psg, base) in enumerate(nights):
        _, durations, _ = scored_epochs(edf.read_annotations(base), base)
        epoch_s.setdefault(subset, set()).update(round(float(d)) for d in durations)
        labels = [c.label for c in edf.channels(psg)]
        refs.setdefault(subset, set()).update(
            m["ref"].upper() for label in labels if (m := CENTRAL.fullmatch(label.strip()))
        )
        entries.append(Entry(night_id, night_id, 1, manifest_path(psg, out),
                             manifest_path(base, out), epochs="annotated"))  # fmt: skip
        if progress is not None:
            progress(i + 1, len(nights))
    subsets = {s: {"nights": sum(n[1] == s for n in nights),
                   "scored_epoch_s": sorted(epoch_s[s]), "c3_c4_references": sorted(refs[s])}
               for s in sorted(epoch_s)}  # fmt: skip
    write_dataset(out, entries, {"name": "mass", "synthetic": False, "source": str(src),
                                 "subsets": subsets, "citation": CITATION})  # fmt: skip
    return read_dataset(out)
