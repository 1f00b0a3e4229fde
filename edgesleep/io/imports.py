"""Real datasets into the dataset layout (:mod:`edgesleep.io.dataset`), so that ``train``,
``cv`` and ``distill`` read them with no glue. The heart datasets become heart time series
(``records/<record>.csv``, :mod:`edgesleep.io.heart`) and CSV hypnograms
(``hypnograms/<record>.csv``: onset, duration, label with the five stages); PSG cohorts
(``mass``: :mod:`edgesleep.io.mass`, ``nsrr``: :mod:`edgesleep.io.nsrr`) get a manifest
that points at their original files.

- ``walch``: Walch et al. 2019 (PhysioNet "sleep-accel" 1.0.0), Apple Watch heart rate and
  PSG stages: ``heart_rate/<id>_heartrate.txt`` (``time_s,bpm``, s from the PSG start,
  days of samples before it, not always sorted) and ``labels/<id>_labeled_sleep.txt``
  (``time_s stage``: 0 W, 1 N1, 2 N2, 3 N3, 4 N4 -> N3, 5 REM, -1 unscored). The hour of
  samples before the PSG start is kept as context; earlier ones are dropped.
- ``slpdb``: the MIT-BIH Polysomnographic Database, PhysioNet's WFDB records (``RECORDS``,
  ``<record>.hea``/``.ecg``/``.st``) or its CSV export (``records.csv``,
  ``<record>_beats.csv``, ``<record>_stages.csv``; :mod:`edgesleep.io.slpdb`): beat times
  and R&K stages; slp01a/b and slp02a/b are one subject each.

Files listed in a ``SHA256SUMS`` beside them are checked first.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgesleep.dsp import EPOCH_S
from edgesleep.errors import InputError
from edgesleep.io import slpdb
from edgesleep.io.cinc2018 import import_cinc2018
from edgesleep.io.dataset import Dataset, Entry, plain_name, read_dataset, write_dataset
from edgesleep.io.heart import Series, read_series, write_series
from edgesleep.io.hmc import import_hmc
from edgesleep.io.hypnogram import read_walch_labels
from edgesleep.io.mass import import_mass
from edgesleep.io.nsrr import import_nsrr
from edgesleep.io.writers import write_scored_csv
from edgesleep.stages import ARTEFACT, UNSCORED

log = logging.getLogger("edgesleep")
CONTEXT_S = 3600.0
WALCH_CITATION = (
    "Walch O, Huang Y, Forger D, Goldstein C. Sleep stage prediction with raw acceleration "
    "and photoplethysmography heart rate data derived from a consumer wearable device. Sleep "
    "42(12):zsz180 (2019); PhysioNet sleep-accel 1.0.0, ODC-By 1.0; Goldberger AL et al. "
    "Circulation 101(23):e215-e220 (2000)."
)
SLPDB_CITATION = (
    "Ichimaru Y, Moody GB. Development of the polysomnographic database on CD-ROM. "
    "Psychiatry and Clinical Neurosciences 53:175-177 (1999); PhysioNet slpdb 1.0.0, ODC-By "
    "1.0; Goldberger AL et al. Circulation 101(23):e215-e220 (2000)."
)


def verify_sums(root: Path) -> int:
    """Check every file listed in ``root/SHA256SUMS`` (if there is one); return how many.

    Raises
    ------
    InputError
        A listed file is missing or differs.
    """
    sums = root / "SHA256SUMS"
    if not sums.is_file():
        return 0
    count = 0
    for line in sums.read_text().splitlines():
        if not line.strip():
            continue
        digest, name = line.split(maxsplit=1)
        path = root / name.strip().lstrip("*")
        if not path.resolve().is_relative_to(root.resolve()):
            raise InputError(f"{sums}: {name.strip()[:80]!r} lies outside {root}; refused")
        if not path.is_file():
            raise InputError(f"{path}: listed in {sums} but missing")
        if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            raise InputError(f"{path}: checksum differs from {sums}; fetch it again")
        count += 1
    return count


def write_stages_csv(path: Path, stages: np.ndarray) -> None:
    """A CSV hypnogram: ``onset,duration,label`` per 30-s epoch from the recording start
    (five stage names, UNS, ART)."""
    write_scored_csv(path, np.arange(stages.shape[0]) * EPOCH_S, stages)


def _subject_ids(src: Path) -> list[str]:
    listed = src / "SUBJECTS"
    if listed.is_file():
        return [plain_name(s, listed) for s in listed.read_text().split()]
    found = sorted(p.name.split("_")[0] for p in (src / "heart_rate").glob("*_heartrate.txt"))
    return [plain_name(s, src / "heart_rate") for s in found]


def import_walch(
    src: Path, out: Path, progress: Callable[[int, int], None] | None = None
) -> Dataset:
    """Walch et al.'s ``heart_rate/`` + ``labels/`` (see the module docstring) -> ``out``.

    Raises
    ------
    InputError
        Not that layout (what was expected is named), a checksum mismatch, a bad file.
    """
    if not (src / "heart_rate").is_dir() or not (src / "labels").is_dir():
        raise InputError(
            f"{src}: not Walch et al.'s layout (heart_rate/<id>_heartrate.txt and "
            "labels/<id>_labeled_sleep.txt); fetch it with `edgesleep data fetch walch`"
        )
    log.info("%s: %d files checked against SHA256SUMS", src, verify_sums(src))
    ids = _subject_ids(src)
    entries = []
    for i, sid in enumerate(ids):
        series = read_series(src / "heart_rate" / f"{sid}_heartrate.txt", "heart-rate")
        keep = series.time_s >= -CONTEXT_S
        order = np.argsort(series.time_s[keep], kind="stable")
        assert series.values is not None
        night = Series("heart-rate", series.time_s[keep][order], series.values[keep][order])
        write_series(out / "records" / f"{sid}.csv", night)
        stages = read_walch_labels(src / "labels" / f"{sid}_labeled_sleep.txt")
        write_stages_csv(out / "hypnograms" / f"{sid}.csv", stages)
        rel = f"records/{sid}.csv"
        entries.append(Entry(sid, sid, 1, rel, f"hypnograms/{sid}.csv"))
        if progress is not None:
            progress(i + 1, len(ids))
    write_dataset(out, entries, {"name": "walch-applewatch", "synthetic": False,
                                 "source": str(src), "citation": WALCH_CITATION})  # fmt: skip
    return read_dataset(out)


def import_slpdb(
    src: Path, out: Path, progress: Callable[[int, int], None] | None = None
) -> Dataset:
    """slpdb's WFDB records or CSV export (see the module docstring) -> ``out``: beat series
    and stages.

    Raises
    ------
    InputError
        Neither layout, a checksum mismatch, a bad or missing file.
    """
    if not (src / "records.csv").is_file() and not slpdb.is_wfdb(src):
        raise InputError(
            f"{src}: neither slpdb's WFDB records (RECORDS, <record>.hea/.ecg/.st) nor its CSV "
            "export (records.csv); fetch it with `edgesleep data fetch slpdb`"
        )
    log.info("%s: %d files checked against SHA256SUMS", src, verify_sums(src))
    names = slpdb.record_names(src)
    entries = []
    for i, name in enumerate(names):
        rec = slpdb.read_record(src, name)
        write_series(out / "records" / f"{name}.csv", Series("beats", rec.beat_times_s, None))
        stages = np.where(rec.stages == ARTEFACT, UNSCORED, rec.stages)
        write_stages_csv(out / "hypnograms" / f"{name}.csv", stages)
        subject = slpdb.subject_of(name)
        entries.append(Entry(name, subject, 2 if name.endswith("b") else 1,
                             f"records/{name}.csv", f"hypnograms/{name}.csv"))  # fmt: skip
        if progress is not None:
            progress(i + 1, len(names))
    write_dataset(out, entries, {"name": "slpdb", "synthetic": False, "source": str(src),
                                 "citation": SLPDB_CITATION})  # fmt: skip
    return read_dataset(out)


IMPORTERS = {"walch": import_walch, "slpdb": import_slpdb, "mass": import_mass,
             "nsrr": import_nsrr, "cinc2018": import_cinc2018, "hmc": import_hmc}  # fmt: skip
# the PSG cohorts whose importers take ``require`` (channels every record must hold)
COHORT_IMPORTERS = {"cinc2018": import_cinc2018, "hmc": import_hmc}
WITH_REQUIRE = tuple(COHORT_IMPORTERS)
