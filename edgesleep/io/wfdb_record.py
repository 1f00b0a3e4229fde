"""WFDB recordings (``<record>.hea`` + its signal files) as a dataset's ``psg``, and the
NOTE annotations of WFDB annotation files.

A manifest's ``psg`` may name a WFDB header (``.hea``): its channels are read with the
``wfdb`` package (host side: ``pip install 'edgesleep[physionet]'``), one channel at a
time, in physical units converted to µV from the header's units, resampled to 100 Hz like
an EDF channel (:func:`edgesleep.io.edf.read_signal`), found by the same names and aliases.
PhysioNet/CinC 2018's records are such recordings (``.hea`` + MATLAB v4 ``.mat``).

Nothing read is trusted: the header's rate and length are bounded before any sample is read.
"""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from edgesleep.dsp import SFREQ
from edgesleep.dsp.resampling import rational_factors, resample
from edgesleep.errors import InputError
from edgesleep.io.edf import ChannelInfo, Signal, find_channel, unit_factor
from edgesleep.stages import MAX_NIGHT_S

MAX_SFREQ = 100_000.0  # Hz: a header's rate divides every sample index
NO_DATE = dt.datetime(1985, 1, 1)  # what EDF writes for an unknown start; WFDB may omit it
NOTE, SKIP, AUX = 22, 59, 63  # MIT annotation format codes (WFDB's annot(5))


def is_wfdb(path: str | Path) -> bool:
    """Whether a manifest's ``psg`` names a WFDB record (its ``.hea`` header)."""
    return Path(path).suffix.lower() == ".hea"


def _wfdb() -> Any:
    try:
        with warnings.catch_warnings():  # wfdb builds tables with pandas deprecations on import
            warnings.simplefilter("ignore", DeprecationWarning)
            import wfdb
    except ImportError:
        raise InputError(
            "reading WFDB records (.hea) needs the wfdb package: pip install 'edgesleep[physionet]'"
        ) from None
    return wfdb


def header(path: str | Path) -> Any:
    """The WFDB header of ``<record>.hea``, its rate and length bounded.

    Raises
    ------
    InputError
        No such file, an unreadable header, a rate outside (0, 100 kHz] or a record longer
        than a night may be.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file (a WFDB record's header)")
    wfdb = _wfdb()
    try:
        with warnings.catch_warnings():  # wfdb's own pandas deprecations, not ours
            warnings.simplefilter("ignore", DeprecationWarning)
            head = wfdb.rdheader(str(path.with_suffix("")))
    except Exception as err:  # wfdb raises bare ValueError/IndexError on bad headers
        raise InputError(f"{path}: not a readable WFDB header ({err})") from None
    sfreq = float(head.fs or 0.0)
    if not 0.0 < sfreq <= MAX_SFREQ:
        raise InputError(f"{path}: sampling rate {sfreq:g} Hz; repair or refetch the header")
    if not 0 < int(head.sig_len or 0) <= MAX_NIGHT_S * sfreq:
        raise InputError(
            f"{path}: {head.sig_len} samples at {sfreq:g} Hz; a recording lasts between one "
            f"sample and {MAX_NIGHT_S / 3600:g} h (refetch the record)"
        )
    return head


def channels(path: str | Path) -> list[ChannelInfo]:
    """The channels a WFDB header describes (label, rate, unit, samples)."""
    head = header(path)
    pairs = zip(head.sig_name, head.units, strict=True)
    return [ChannelInfo(i, str(name), float(head.fs), str(unit), int(head.sig_len))
            for i, (name, unit) in enumerate(pairs)]  # fmt: skip


def read_signal(path: str | Path, channel: str, sfreq: float | None = SFREQ) -> Signal:
    """One channel of a WFDB record in µV, resampled to ``sfreq`` (as
    :func:`edgesleep.io.edf.read_signal`).

    Parameters
    ----------
    path : path-like
        The record's header, ``<record>.hea``.
    channel : str
        Label or alias (``"C4-M1"``, ``"ECG"``, ...).
    sfreq : float or None
        100 (the models' rate) or None for the file's own rate.

    Returns
    -------
    Signal
        ``data`` of shape (n_times,), float64, µV.

    Raises
    ------
    InputError
        A missing channel (the ones there are listed), a unit that is not a voltage, a
        rate that cannot be resampled, an unreadable signal file.
    """
    path = Path(path)
    head = header(path)
    labels = [str(name) for name in head.sig_name]
    index = find_channel(labels, channel, path)
    unit = str(head.units[index])
    factor = unit_factor(unit, path, labels[index])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            record = _wfdb().rdrecord(str(path.with_suffix("")), channels=[index])
    except Exception as err:
        raise InputError(
            f"{path}: cannot read channel {labels[index]!r} ({type(err).__name__}: {err}); "
            "check that the signal file named in the header is there, whole"
        ) from None
    data = np.asarray(record.p_signal[:, 0], dtype=np.float64) * factor
    source = float(head.fs)
    gain = float(head.adc_gain[index] or 1.0)
    bits = {"8": 8, "16": 16, "24": 24, "32": 32, "80": 8, "212": 12, "310": 10, "311": 10}
    n_bits = bits.get(str(head.fmt[index]).split("+")[0], 16)
    full_scale = factor * (2 ** (n_bits - 1) + abs(float(head.baseline[index] or 0))) / gain
    start = head.base_datetime if isinstance(head.base_datetime, dt.datetime) else NO_DATE
    if sfreq is not None and source != sfreq:
        if sfreq != SFREQ:
            raise InputError(f"only resampling to {SFREQ:g} Hz is supported, not {sfreq} Hz")
        try:
            rational_factors(source)
        except ValueError as err:
            raise InputError(f"{path}: channel {labels[index]!r}: {err}") from None
        data = resample(data, source)
    out_sfreq = float(sfreq if sfreq is not None else source)
    return Signal(data, out_sfreq, labels[index], unit, start, source, float(full_scale))


def read_notes(path: Path, any_code: bool = False) -> tuple[np.ndarray, list[str]]:
    """The NOTE annotations of a WFDB annotation file in MIT format (with ``any_code``, every
    annotation that carries a text, whatever its code): samples and aux texts.

    Read here rather than with ``wfdb.rdann``, which removes every NOTE at sample 0 as a
    possible file definition (slpdb's and CinC 2018's first stage note may be there). Each
    16-bit little-endian word holds a 6-bit code and a 10-bit interval; SKIP adds a 32-bit
    interval (high word first), AUX carries the previous annotation's text (padded to an
    even length), NUM/SUB/CHN set fields, code 0 with interval 0 ends the file. Definition
    notes (text starting with ``##``, e.g. wfdb's time resolution) are skipped.

    Returns
    -------
    samples : ndarray of shape (n_notes,), int64
    texts : list of str

    Raises
    ------
    InputError
        A truncated file.
    """
    data = path.read_bytes()
    time, i = 0, 0
    samples: list[int] = []
    texts: list[str] = []
    codes: list[int] = []
    while i + 1 < len(data):
        word = data[i] | data[i + 1] << 8
        code, value = word >> 10, word & 0x3FF
        i += 2
        if code == 0 and value == 0:
            break
        if code == SKIP:
            if i + 4 > len(data):
                raise InputError(f"{path}: truncated WFDB annotation file (a SKIP at byte {i})")
            high, low = data[i] | data[i + 1] << 8, data[i + 2] | data[i + 3] << 8
            skip = high << 16 | low
            time += skip - (1 << 32) if skip >= 1 << 31 else skip
            i += 4
        elif code == AUX:
            if codes:
                texts[-1] = data[i : i + value].decode("latin-1").rstrip("\0").strip()
            i += value + (value & 1)
        elif code < SKIP:  # an annotation (NUM, SUB, CHN: 60-62 only set fields)
            time += value
            samples.append(time)
            codes.append(code)
            texts.append("")
    keep = [k for k, (c, t) in enumerate(zip(codes, texts, strict=True))
            if (c == NOTE or any_code and t) and not t.startswith("##")]  # fmt: skip
    return np.array([samples[k] for k in keep], dtype=np.int64), [texts[k] for k in keep]
