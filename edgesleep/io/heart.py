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
A comment line ``# end_s=T`` says where the recording ended (``stream --record`` writes it
when the stream's end frame said so): the night is scored up to T s, not only to the last
event.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np

from edgesleep.errors import InputError
from edgesleep.stages import MAX_NIGHT_S

log = logging.getLogger("edgesleep")
HEADERS = {("time_s",): "beats", ("time_s", "bpm"): "heart-rate"}  # the columns each needs
SOURCES = ("beats", "heart-rate")  # in the order of their columns' count
SERIES_SUFFIXES = (".csv", ".txt")  # a dataset's recording with one of these is a series
END_MARK = "# end_s="
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
    line_numbers : ndarray of shape (n,), int64, each sample's line in its file (if read)
    end_s : float or None, s from the recording start: where it ended (a ``# end_s=`` line)
    """

    source: str
    time_s: np.ndarray
    values: np.ndarray | None
    line_numbers: np.ndarray | None = field(default=None, repr=False, compare=False)
    end_s: float | None = None  # where the recording ended (a "# end_s=" line), if said


MAX_LINE = 4096  # characters: a longer line is refused, never read whole
MAX_ROWS = 5_000_000  # a week of 1-Hz history and a night of beats fit many times over
MAX_HOLD_SPACING_S = 300.0  # a median spacing above this is no heart series in seconds


def read_series(path: str | Path, source: str | None = None) -> Series:
    """Read a beat or heart-rate CSV (see the module docstring).

    Bounded: read line by line (a file, a pipe or a FIFO) into arrays of 8 bytes per
    value, at most ``MAX_ROWS`` rows of at most ``MAX_LINE`` characters; a UTF-8 byte
    order mark is read. Checked: no time after ``MAX_NIGHT_S`` (one outlier would make a
    night of days), and times in seconds (see :func:`check_units`).

    Parameters
    ----------
    source : "beats" or "heart-rate", optional
        Required for a file without a header line; checked against one with a header.

    Raises
    ------
    InputError
        An unreadable file, an unknown header, no header and no ``source``, a line that is
        not numbers or too long (its number is named), too many rows, a time out of
        bounds, times that are not seconds, or no samples.
    """
    path = Path(path)
    if source is not None and source not in SOURCES:
        raise InputError(f"--input {source!r}: a heart series is one of {list(SOURCES)}")
    try:
        with path.open(encoding="utf-8-sig", errors="strict", newline=None) as fh:
            series = _read(fh, path, source)
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read it as text ({err})") from None
    check_units(path, series)
    check_span(path, series)
    return series


def _lines(fh: TextIO, path: Path, marks: dict[str, float]) -> Iterator[tuple[int, str]]:
    """(line number, stripped line) of the lines that are not blank or comments; an
    ``# end_s=T`` comment goes into ``marks`` (checked: a number of seconds in bounds)."""
    n = 0
    while True:
        line = fh.readline(MAX_LINE + 1)
        if not line:
            return
        n += 1
        if len(line) > MAX_LINE and not line.endswith("\n"):
            raise InputError(f"{path}, line {n}: longer than {MAX_LINE} characters; not a "
                             "heart series")  # fmt: skip
        line = line.strip()
        if line.startswith(END_MARK):
            marks["end_s"] = _end_s(line, path, n)
        elif line and not line.startswith("#"):
            yield n, line


def _end_s(line: str, path: Path, n: int) -> float:
    try:
        end_s = float(line[len(END_MARK) :])
    except ValueError:
        end_s = math.nan
    if not 0 <= end_s <= MAX_NIGHT_S:  # NaN fails too
        raise InputError(f"{path}, line {n}: {line[:60]!r} is not an end in s within "
                         f"0..{MAX_NIGHT_S:g}")  # fmt: skip
    return end_s


def _read(fh: TextIO, path: Path, source: str | None) -> Series:
    marks: dict[str, float] = {}
    lines = _lines(fh, path, marks)
    first_row = next(lines, None)
    if first_row is None:
        raise InputError(f"{path}: no samples")
    first = [f.strip().lower() for f in first_row[1].split(",")]
    split = _COMMA.split
    pending: list[tuple[int, str]] = []
    if "time_s" in first:
        found = "heart-rate" if "bpm" in first else "beats"
        if source is not None and source != found:
            raise InputError(f"{path}: a {found} file (header {first_row[1]}), not {source}")
        source, n_fields = found, len(first)
        columns = [first.index(name) for name in ("time_s", "bpm")[: 2 if found != "beats" else 1]]
    elif not _is_number(_SPLIT.split(first_row[1])[0]):
        expected = " or ".join(",".join(h) for h in HEADERS)
        raise InputError(
            f"{path}: header {first_row[1]!r} has no time_s column (expected {expected}; other "
            "columns are ignored)"
        )
    else:  # no header: exactly the columns of the source, comma- or space-separated
        if source is None:  # told apart by the number of columns: time, or time and bpm
            width = len(_SPLIT.split(first_row[1]))
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
        pending = [first_row]
    values = [array("d") for _ in columns]
    lines_of = array("q")
    for n, line in itertools.chain(pending, lines):
        fields = split(line)
        try:
            if len(fields) != n_fields:
                raise ValueError(f"{len(fields)} fields, expected {n_fields}")
            row = [float(fields[c]) for c in columns]
        except ValueError as err:
            raise InputError(
                f"{path}, line {n}: {line[:80]!r} is not a {source} sample ({err})"
            ) from None
        if len(lines_of) >= MAX_ROWS:
            raise InputError(f"{path}: more than {MAX_ROWS:,} samples; a night's heart series "
                             "has far fewer: split the file")  # fmt: skip
        for column, value in zip(values, row, strict=True):
            column.append(value)
        lines_of.append(n)
    if not lines_of:
        raise InputError(f"{path}: no samples after the header")
    arrays = [np.frombuffer(v, dtype=np.float64) for v in values]
    lines_np = np.frombuffer(lines_of, dtype=np.int64)
    return Series(source, arrays[0], arrays[1] if len(arrays) == 2 else None, lines_np,
                  marks.get("end_s"))  # fmt: skip


def check_span(path: Path, series: Series) -> None:
    """Refuse a time after ``MAX_NIGHT_S`` from the recording start (naming its line):
    one outlier (1e7 s, 1e300 s) would otherwise make a night of months. Times before
    the start are context, of any age.

    Raises
    ------
    InputError
    """
    times = series.time_s
    late = np.flatnonzero(~(times <= MAX_NIGHT_S) & ~np.isnan(times))
    if late.size:
        i = int(late[0])
        line = series.line_numbers
        where = f"line {int(line[i])}" if line is not None else f"sample {i}"
        raise InputError(
            f"{path}, {where}: time {times[i]:g} s is {times[i] / 86400:.3g} days after the "
            f"recording start, and a night's file spans at most {MAX_NIGHT_S / 3600:g} h "
            f"({late.size} such time(s)); remove the outliers or split the file"
        )


def check_units(path: Path, series: Series) -> None:
    """Refuse times that are not seconds, told by the beat rate: beats a median of more
    than 2.5 s apart (30-200 beats/min are 0.3-2 s), or heart-rate samples a median of
    more than ``MAX_HOLD_SPACING_S`` apart (every sample would stand alone), naming the
    likely unit (milliseconds when a thousandth fits).

    Raises
    ------
    InputError
    """
    times = np.sort(series.time_s[np.isfinite(series.time_s)])
    steps = np.diff(times)
    steps = steps[steps > 0]
    if steps.size < 10:
        return
    spacing = float(np.median(steps))
    limit = 2.5 if series.source == "beats" else MAX_HOLD_SPACING_S
    if spacing <= limit:
        return
    ms = (0.25 if series.source == "beats" else 0.0) <= spacing / 1000 <= limit
    hint = "; the times look like milliseconds: divide them by 1000" if ms else ""
    what = "beats" if series.source == "beats" else "heart-rate samples"
    raise InputError(
        f"{path}: {what} a median of {spacing:g} s apart, which no heart series is (beats: "
        f"0.3-2 s; a watch's heart rate: seconds){hint}; times must be seconds"
    )


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
