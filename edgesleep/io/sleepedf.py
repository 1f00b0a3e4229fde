"""Sleep-EDF Expanded, Sleep Cassette subjects 0-19: the shipped table and hypnograms.

The package ships the 39 expert hypnograms of SC-20, their SHA256SUMS and
``SC-subjects.csv`` with lights-off *and* lights-on clock times (lights-on exists nowhere
else). See ``edgesleep/data/sleep-edf/CITATION.txt`` for the source and citation.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from edgesleep.errors import InputError

DATA_DIR = Path(str(resources.files("edgesleep") / "data" / "sleep-edf"))
_RECORD = re.compile(r"^SC4(\d\d)(\d)")


@dataclass(frozen=True)
class SleepEdfRecord:
    """One SC night: record ``SC4ssN``, its files and in-bed clock times."""

    record: str  # e.g. "SC4001E0"
    subject: int
    night: int
    age: int
    sex_f1: int
    lights_off: dt.time
    lights_on: dt.time
    hypnogram_file: str  # e.g. "SC4001EC-Hypnogram.edf"

    @property
    def psg_file(self) -> str:
        return f"{self.record}-PSG.edf"

    @property
    def hypnogram_path(self) -> Path:
        """The shipped copy of the expert hypnogram."""
        return DATA_DIR / self.hypnogram_file

    def in_bed_s(self, start: dt.datetime) -> tuple[float, float]:
        """Lights-off and lights-on in s from the recording start (clocks may pass midnight)."""
        day = start.date()
        off = dt.datetime.combine(day, self.lights_off)
        if off < start - dt.timedelta(hours=1):
            off += dt.timedelta(days=1)
        on = dt.datetime.combine(off.date(), self.lights_on)
        if on <= off:
            on += dt.timedelta(days=1)
        return (off - start).total_seconds(), (on - start).total_seconds()


def _clock(text: str) -> dt.time:
    return dt.time.fromisoformat(text)


@cache
def records() -> dict[str, SleepEdfRecord]:
    """The 39 SC-20 nights by record name (``SC4001E0``)."""
    hypnograms = {p.name[:6]: p.name for p in DATA_DIR.glob("SC4*-Hypnogram.edf")}
    out: dict[str, SleepEdfRecord] = {}
    with (DATA_DIR / "SC-subjects.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            out[row["record"]] = SleepEdfRecord(
                record=row["record"],
                subject=int(row["subject"]),
                night=int(row["night"]),
                age=int(row["age"]),
                sex_f1=int(row["sex_f1"]),
                lights_off=_clock(row["lights_off"]),
                lights_on=_clock(row["lights_on"]),
                hypnogram_file=hypnograms[row["record"][:6]],
            )
    return out


def pinned_sha256() -> dict[str, str]:
    """sha256 of the 39 hypnogram files, by file name."""
    pins = {}
    for line in (DATA_DIR / "SHA256SUMS.txt").read_text().splitlines():
        digest, name = line.split()
        pins[name] = digest
    return pins


def pair_hypnogram(psg: str | Path) -> Path:
    """The hypnogram beside ``SC4ssNE0-PSG.edf``: ``SC4ssNE?-Hypnogram.edf``.

    Raises
    ------
    InputError
        If none or more than one matches.
    """
    psg = Path(psg)
    match = re.match(r"^(SC4\d\d\dE)0-PSG\.edf$", psg.name, flags=re.IGNORECASE)
    if not match:
        raise InputError(f"{psg}: not a Sleep-EDF PSG file name (SC4ssNE0-PSG.edf)")
    hits = sorted(psg.parent.glob(f"{match.group(1)}?-Hypnogram.edf"))
    if len(hits) != 1:
        raise InputError(
            f"{psg}: expected one {match.group(1)}?-Hypnogram.edf beside it, found "
            f"{[h.name for h in hits]}"
        )
    return hits[0]
