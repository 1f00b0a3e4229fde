"""EDF/EDF+ input through pyedflib: channels by name or alias, in µV, at 100 Hz.

Every problem with a file becomes an :class:`~edgesleep.errors.InputError` that names the
file, the problem and the fix.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgesleep.dsp import SFREQ
from edgesleep.dsp.resampling import rational_factors, resample
from edgesleep.errors import InputError

log = logging.getLogger("edgesleep")

# physical dimension (lower-cased, stripped) -> factor to µV
UNIT_TO_UV: dict[str, float] = {
    "v": 1e6,
    "mv": 1e3,
    "uv": 1.0,
    "µv": 1.0,
    "μv": 1.0,  # Greek mu
    "microvolt": 1.0,
    "microvolts": 1.0,  # the XDF/LSL spelling
    "millivolts": 1e3,
    "volts": 1e6,
    "nv": 1e-3,
}

# groups of names meaning the same sensor; a requested name in a group matches any member
ALIASES: tuple[frozenset[str], ...] = (
    frozenset({"ecg", "ekg", "ecg1", "ecg 1", "ecg i", "ecg ii", "ecg lead ii", "ii", "mlii"}),
    frozenset({"eog horizontal", "horizontal", "heog", "eog h", "eog", "loc-roc", "e1-e2"}),
    frozenset({"eeg fpz-cz", "fpz-cz"}),
    frozenset({"eeg pz-oz", "pz-oz"}),
    # MASS references C3/C4 to computed linked ears (CLE) or linked ears (LER)
    frozenset({"eeg c4-a1", "c4-a1", "c4-m1", "eeg c4-m1", "c4-cle", "c4-ler"}),
    frozenset({"eeg c3-a2", "c3-a2", "c3-m2", "eeg c3-m2", "c3-cle", "c3-ler"}),
)
CHUNK_S = 120.0  # seconds per piece when a night is read in pieces
_TYPE_PREFIX = re.compile(r"^(eeg|eog|ecg|ekg|emg)\s+")
_GROUP_KIND = ("ecg", "eog", "eeg", "eeg", "eeg", "eeg")  # kind of each ALIASES group


def channel_kind(label: str) -> str | None:
    """Sensor kind of a channel label: "eeg", "eog", "ecg", "emg", or None if unknown."""
    norm = _normalise(label)
    for group, kind in zip(ALIASES, _GROUP_KIND, strict=True):
        if norm in group or _TYPE_PREFIX.sub("", norm) in group:
            return kind
    prefix = _TYPE_PREFIX.match(norm + " ")
    if prefix is None:
        return None
    return "ecg" if prefix.group(1) == "ekg" else prefix.group(1)


@dataclass(frozen=True)
class ChannelInfo:
    """One signal of an EDF file, as its header describes it."""

    index: int
    label: str
    sfreq: float
    unit: str
    n_times: int


@dataclass(frozen=True)
class Signal:
    """One channel read from a file, in µV at ``sfreq``.

    Attributes
    ----------
    data : ndarray of shape (n_times,), float64, µV
    sfreq : float, Hz
    channel : str
        The label in the file.
    unit : str
        The physical dimension in the file (before conversion to µV).
    start : datetime.datetime
        Recording start from the header.
    source_sfreq : float
        The rate in the file before resampling.
    full_scale_uv : float
        The largest magnitude the file can hold (from its physical minimum and maximum), µV.
    """

    data: np.ndarray
    sfreq: float
    channel: str
    unit: str
    start: dt.datetime
    source_sfreq: float
    full_scale_uv: float

    @property
    def duration_s(self) -> float:
        return self.data.shape[0] / self.sfreq


def _normalise(label: str) -> str:
    return " ".join(label.strip().lower().split())


def _open(path: str | Path):  # type: ignore[no-untyped-def]  # pyedflib has no stubs
    """Open an EDF with pyedflib; one-line errors for missing or broken files."""
    import pyedflib

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected an EDF file")
    with path.open("rb") as fh:
        head = fh.read(256)
    if len(head) < 256 or not head[:8].strip().isdigit():
        raise InputError(f"{path}: not an EDF/EDF+ file (no valid 256-byte EDF header)")
    try:
        return pyedflib.EdfReader(str(path))
    except OSError as err:
        problem = str(err).split(": ", 1)[-1]
        if "filesize" in problem.lower():
            raise InputError(
                f"{path}: truncated or padded EDF (file size does not match its header); "
                "re-download or re-export the file"
            ) from None
        raise InputError(
            f"{path}: EDF header is not compliant ({problem}); repair the header "
            "(e.g. re-save it with EDFbrowser) or pass a compliant file"
        ) from None


def channels(path: str | Path) -> list[ChannelInfo]:
    """The signals in an EDF file (annotation channels excluded)."""
    reader = _open(path)
    try:
        return [
            ChannelInfo(
                index=i,
                label=reader.getLabel(i),
                sfreq=float(reader.getSampleFrequency(i)),
                unit=reader.getPhysicalDimension(i),
                n_times=int(reader.getNSamples()[i]),
            )
            for i in range(reader.signals_in_file)
        ]
    finally:
        reader.close()


def find_channel(available: list[str], name: str, path: str | Path = "") -> int:
    """Index of the channel matching ``name`` (exact, without type prefix, or by alias).

    Raises
    ------
    InputError
        If no channel or more than one matches; the message lists the channels present.
    """
    wanted = _normalise(name)
    norm = [_normalise(label) for label in available]
    if wanted in norm and norm.count(wanted) == 1:
        return norm.index(wanted)
    candidates = {wanted, _TYPE_PREFIX.sub("", wanted)}
    for group in ALIASES:
        if candidates & group:
            candidates |= group
    hits = [
        i
        for i, label in enumerate(norm)
        if label in candidates or _TYPE_PREFIX.sub("", label) in candidates
    ]
    where = f"{path}: " if path else ""
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise InputError(
            f"{where}channel {name!r} not found; channels present: {available}; "
            "pass one of them with --channel"
        )
    raise InputError(
        f"{where}channel {name!r} is ambiguous: it matches {[available[i] for i in hits]}; "
        "pass the exact label with --channel"
    )


def unit_factor(unit: str, path: str | Path = "", channel: str = "") -> float:
    """Factor that converts a physical dimension to µV.

    Raises
    ------
    InputError
        For a unit that is not a voltage (V, mV, µV/uV, nV).
    """
    key = _normalise(unit)
    if key not in UNIT_TO_UV:
        where = f"{path}: " if path else ""
        raise InputError(
            f"{where}channel {channel!r} has unknown physical dimension {unit!r}; "
            f"expected one of V, mV, uV/µV, nV; fix the EDF header's physical dimension"
        )
    return UNIT_TO_UV[key]


def read_signal(path: str | Path, channel: str, sfreq: float | None = SFREQ) -> Signal:
    """Read one channel in µV, resampled to ``sfreq``.

    Parameters
    ----------
    path : path-like
        EDF or EDF+ file.
    channel : str
        Label or alias ("EEG Fpz-Cz", "Fpz-Cz", "EOG horizontal", "ECG", "EKG", ...).
    sfreq : float or None
        Output rate in Hz (100 for the models); None keeps the file's rate.

    Returns
    -------
    Signal
        ``data`` of shape (n_times,), µV.
    """
    reader = _open(path)
    try:
        index, head = _channel_header(reader, path, channel)
        data = reader.readSignal(index) * unit_factor(head.unit, path, head.channel)
    finally:
        reader.close()
    if sfreq is not None and head.sfreq != sfreq:
        if sfreq != SFREQ:
            raise InputError(f"only resampling to {SFREQ:g} Hz is supported, not {sfreq} Hz")
        try:
            rational_factors(head.sfreq)
        except ValueError as err:
            raise InputError(f"{path}: channel {head.channel!r}: {err}") from None
        log.info("%s: resampling %r from %g Hz to %g Hz", path, head.channel, head.sfreq, sfreq)
        data = resample(data, head.sfreq)
    return replace(head, data=data, sfreq=float(sfreq if sfreq is not None else head.sfreq))


def _channel_header(reader: Any, path: str | Path, channel: str) -> tuple[int, Signal]:
    """The index of ``channel`` and its header as a :class:`Signal` without samples."""
    labels = reader.getSignalLabels()
    index = find_channel(labels, channel, path)
    unit = reader.getPhysicalDimension(index)
    factor = unit_factor(unit, path, labels[index])
    sfreq = float(reader.getSampleFrequency(index))
    peak = max(abs(reader.getPhysicalMinimum(index)), abs(reader.getPhysicalMaximum(index)))
    return index, Signal(
        data=np.empty(0),
        sfreq=sfreq,
        channel=labels[index],
        unit=unit,
        start=reader.getStartdatetime(),
        source_sfreq=sfreq,
        full_scale_uv=float(factor * peak),
    )


def read_chunks(
    path: str | Path, channel: str, chunk_s: float | None = None
) -> tuple[Signal, Iterator[np.ndarray]]:
    """One channel at the file's rate in pieces, for memory that does not grow with the
    night.

    Returns
    -------
    Signal
        The channel's header (``data`` empty).
    iterator of ndarray
        Consecutive pieces of ``chunk_s`` seconds (default ``CHUNK_S``; the last one
        shorter), µV; the file is read as they are taken.
    """
    reader = _open(path)
    try:
        index, head = _channel_header(reader, path, channel)
        n_times = int(reader.getNSamples()[index])
    finally:
        reader.close()
    factor = unit_factor(head.unit, path, head.channel)
    step = max(1, int((chunk_s or CHUNK_S) * head.sfreq))

    def pieces() -> Iterator[np.ndarray]:
        reader = _open(path)
        try:
            for start in range(0, n_times, step):
                n = min(step, n_times - start)
                yield reader.readSignal(index, start, n) * factor
        finally:
            reader.close()

    return head, pieces()


@dataclass(frozen=True)
class Annotation:
    onset_s: float
    duration_s: float
    description: str


def read_annotations(path: str | Path) -> list[Annotation]:
    """EDF+ annotations of a file (empty for plain EDF)."""
    reader = _open(path)
    try:
        onsets, durations, descriptions = reader.readAnnotations()
    finally:
        reader.close()
    return [
        Annotation(float(o), float(d), str(s))
        for o, d, s in zip(onsets, durations, descriptions, strict=True)
    ]


def header(path: str | Path) -> dict[str, object]:
    """Start time, duration and patient/recording fields of a file."""
    reader = _open(path)
    try:
        return {
            "start": reader.getStartdatetime(),
            "duration_s": float(reader.getFileDuration()),
            "patient": reader.getPatientCode() or reader.getPatientName(),
            "equipment": reader.getEquipment(),
            "n_signals": int(reader.signals_in_file),
        }
    finally:
        reader.close()
