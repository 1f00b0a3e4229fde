"""What the importers of whole PSG cohorts share (:mod:`edgesleep.io.cinc2018`,
:mod:`edgesleep.io.hmc`): one record at a time, a failed record listed and skipped rather
than fatal, the channels a record must hold, and the licence file that came with the data.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgesleep.errors import InputError
from edgesleep.io.dataset import Dataset, Entry, read_dataset, write_dataset
from edgesleep.io.edf import find_channel

log = logging.getLogger("edgesleep")
LICENCE_FILES = ("LICENSE.txt", "LICENSE", "LICENCE.txt")
MAX_LICENCE_BYTES = 64 * 1024


@dataclass(frozen=True)
class Imported:
    """The records of a cohort that were imported and the ones that were not.

    Attributes
    ----------
    entries : the manifest rows, one per imported record
    records : record -> what its files hold (channels, rate, duration, scored epochs ...)
    failures : record -> why it was left out
    """

    entries: list[Entry]
    records: dict[str, dict[str, Any]]
    failures: dict[str, str]


def find_records(src: Path, glob: str, name: re.Pattern[str], expected: str) -> dict[str, Path]:
    """Every file under ``src`` matching ``glob`` whose stem is a record ``name``: record ->
    path.

    Raises
    ------
    InputError
        None there; the message says what was ``expected``.
    """
    found = {p.stem: p for p in sorted(src.rglob(glob)) if name.fullmatch(p.stem)}
    if not found:
        raise InputError(f"{src}: {expected}")
    return found


def import_each(
    names: Sequence[str],
    read_one: Callable[[str], tuple[Entry, dict[str, Any]]],
    progress: Callable[[int, int], None] | None = None,
) -> Imported:
    """``read_one(name)`` for every record; an :class:`InputError` leaves that record out,
    with its message, and the others go on.

    Raises
    ------
    InputError
        No record could be imported (the first reasons are named).
    """
    entries, records, failures = [], {}, {}
    for i, name in enumerate(names):
        try:
            entry, facts = read_one(name)
        except InputError as err:
            failures[name] = str(err)
            log.warning("%s: left out: %s", name, err)
        else:
            entries.append(entry)
            records[name] = facts
        if progress is not None:
            progress(i + 1, len(names))
    if not entries:
        first = "; ".join(f"{k}: {v}" for k, v in list(failures.items())[:3])
        raise InputError(f"no record could be imported ({len(failures)} failed): {first}")
    return Imported(entries, records, failures)


def write_cohort(
    out: Path, src: Path, done: Imported, require: Sequence[str], info: dict[str, Any]
) -> Dataset:
    """Write the imported records' manifest and ``dataset.json``: ``info`` (name,
    citation, population, channels, channel aliases ...) with the source, its licence,
    the channels required, what each record holds and the records left out."""
    write_dataset(out, done.entries, {
        "synthetic": False, "source": str(src), "licence": licence_of(src), **info,
        "required": list(require), "records": done.records, "failures": done.failures,
    })  # fmt: skip
    return read_dataset(out)


def check_required(
    labels: Sequence[str], required: Sequence[str], aliases: dict[str, str], where: Path
) -> None:
    """Refuse a record without one of the ``required`` channels (names or the cohort's
    aliases, e.g. "ECG" or "Fpz-Cz"); the message lists the channels it has."""
    for name in required:
        try:
            find_channel(list(labels), aliases.get(name, name), where)
        except InputError:
            raise InputError(
                f"{where}: no {name!r} channel (required); channels present: {list(labels)}"
            ) from None


def licence_of(src: Path) -> str:
    """The first line of the licence file that came with the data (PhysioNet puts
    ``LICENSE.txt`` at a project's root: ``src`` or up to two folders above it), or a note
    that none was there."""
    for name in (f"{up}{n}" for up in ("", "../", "../../") for n in LICENCE_FILES):
        path = src / name
        if path.is_file():
            with path.open("rb") as fh:
                text = fh.read(MAX_LICENCE_BYTES).decode("utf-8", errors="replace")
            first = next((line.strip() for line in text.splitlines() if line.strip()), "")
            return f"{first[:200]} ({name} of the source)"
    return "no licence file in the source folder: see the project's page on PhysioNet"
