"""Heart time series files: beat times and heart-rate samples (CSV; numpy + stdlib).

Two formats, told apart by their header line (the first line that is not blank or a
``#`` comment):

- **beats**: header ``time_s``, then one beat (R-peak) time per line, in s from the
  recording start;
- **heart-rate**: header ``time_s,bpm``, then one sample per line: its time in s from the
  recording start and the heart rate in beats/min.

Other columns may follow or come between (``time_s,label`` as in an annotated beat export;
``time_s,bpm,quality``): they are ignored, so the header names the columns and a
``bpm`` column makes a heart-rate file. Times may be negative (before the recording start:
context) and in any order; fields are separated by a comma (spaces around it are
ignored). A file without a header line (such as Walch et al.'s ``<id>_heartrate.txt``,
comma- or whitespace-separated) holds beat times if it has one column and heart-rate
samples if it has two, unless the caller names its source (``--input beats|heart-rate``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgesleep.errors import InputError

log = logging.getLogger("edgesleep")
HEADERS = {("time_s",): "beats", ("time_s", "bpm"): "heart-rate"}  # the columns each needs
SOURCES = ("beats", "heart-rate")  # in the order of their columns' count
SERIES_SUFFIXES = (".csv", ".txt")  # a dataset's recording with one of these is a series
_SPLIT = re.compile(r"\s*,\s*|\s+")
_COMMA = re.compile(r"\s*,\s*")


@dataclass(frozen=True)
class Series:
    """A heart time series.

    Attributes
    ----------
    source : "beats" or "heart-rate"
    time_s : ndarray of shape (n,), float64, s from the recording start (file order)
    values : ndarray of shape (n,), float64, beats/min; None for beats
    """

    source: str
    time_s: np.ndarray
    values: np.ndarray | None


def read_series(path: str | Path, source: str | None = None) -> Series:
    """Read a beat or heart-rate CSV (see the module docstring).

    Parameters
    ----------
    source : "beats" or "heart-rate", optional
        Required for a file without a header line; checked against one with a header.

    Raises
    ------
    InputError
        An unreadable file, an unknown header, no header and no ``source``, a line that is
        not numbers (its number is named), or no samples.
    """
    path = Path(path)
    if source is not None and source not in SOURCES:
        raise InputError(f"--input {source!r}: a heart series is one of {list(SOURCES)}")
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read it as text ({err})") from None
    rows = [(n, line.strip()) for n, line in enumerate(lines, 1)]
    rows = [(n, line) for n, line in rows if line and not line.startswith("#")]
    if not rows:
        raise InputError(f"{path}: no samples")
    first = [f.strip().lower() for f in rows[0][1].split(",")]
    split = _COMMA.split
    if "time_s" in first:
        found = "heart-rate" if "bpm" in first else "beats"
        if source is not None and source != found:
            raise InputError(f"{path}: a {found} file (header {rows[0][1]}), not {source}")
        source, rows, n_fields = found, rows[1:], len(first)
        columns = [first.index(name) for name in ("time_s", "bpm")[: 2 if found != "beats" else 1]]
    elif not _is_number(_SPLIT.split(rows[0][1])[0]):
        expected = " or ".join(",".join(h) for h in HEADERS)
        raise InputError(
            f"{path}: header {rows[0][1]!r} has no time_s column (expected {expected}; other "
            "columns are ignored)"
        )
    else:  # no header: exactly the columns of the source, comma- or space-separated
        if source is None:  # told apart by the number of columns: time, or time and bpm
            width = len(_SPLIT.split(rows[0][1]))
            if width not in (1, 2):
                raise InputError(
                    f"{path}: no header line and {width} columns; add a header "
                    f"({' or '.join(','.join(h) for h in HEADERS)}) or say what it holds with "
                    "--input beats or --input heart-rate"
                )
            source = SOURCES[width - 1]
            log.info("%s: no header line; %d column(s) read as %s", path, width, source)
        n_fields = 1 if source == "beats" else 2
        columns, split = list(range(n_fields)), _SPLIT.split
    table = np.empty((len(rows), len(columns)))
    for i, (n, line) in enumerate(rows):
        fields = split(line)
        try:
            if len(fields) != n_fields:
                raise ValueError(f"{len(fields)} fields, expected {n_fields}")
            table[i] = [float(fields[c]) for c in columns]
        except ValueError as err:
            raise InputError(
                f"{path}, line {n}: {line!r} is not a {source} sample ({err})"
            ) from None
    if table.shape[0] == 0:
        raise InputError(f"{path}: no samples after the header")
    return Series(source, table[:, 0], table[:, 1] if len(columns) == 2 else None)


def write_series(path: str | Path, series: Series) -> None:
    """Write a series with its header line (the inverse of :func:`read_series`)."""
    header = "time_s" if series.values is None else "time_s,bpm"
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with Path(path).open("w") as fh:
        fh.write(header + "\n")
        if series.values is None:
            fh.writelines(f"{t:.3f}\n" for t in series.time_s)
        else:
            fh.writelines(
                f"{t:.3f},{v:g}\n" for t, v in zip(series.time_s, series.values, strict=True)
            )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
