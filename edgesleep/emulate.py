"""An emulated wearable: plays a recording in :mod:`edgesleep.protocol` to a serial port or
to a pseudo-terminal, with optional faults (for demos, tests, and checking wiring).

Faults (all from one seed, so a run is reproducible):

- ``garbage``: on average every ``garbage_every_s`` of signal, 1-64 random bytes between
  frames, half the time starting with the sync word and a plausible size (a frame that
  fails its CRC);
- ``drops``: on average every ``drop_every_s`` of signal a data frame is never sent (the
  device keeps counting, so the host sees a gap in the sample indices);
- ``disconnect``: halfway through, the port goes away for ``disconnect_s`` of signal, whose
  samples are lost, and comes back (a pseudo-terminal is recreated under the same link).
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import termios
import threading
import time
import tty
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgesleep.errors import InputError, UsageError
from edgesleep.io.edf import channels, read_signal
from edgesleep.io.heart import Series
from edgesleep.protocol import (
    MAX_PAYLOAD,
    Header,
    encode_beats,
    encode_data,
    encode_end,
    encode_header,
    encode_rates,
    max_samples_per_frame,
)

log = logging.getLogger("edgesleep")
FAULTS = ("garbage", "drops", "disconnect")
HEADER_EVERY_S = 5.0


@dataclass(frozen=True)
class Faults:
    garbage: bool = False
    drops: bool = False
    disconnect: bool = False
    disconnect_s: float = 3.0
    garbage_every_s: float = 5.0
    drop_every_s: float = 120.0
    seed: int = 0

    @classmethod
    def parse(cls, text: str, seed: int = 0) -> Faults:
        """``"garbage,drops"`` -> Faults(garbage=True, drops=True)."""
        kinds = {k.strip() for k in text.split(",") if k.strip()}
        unknown = kinds - set(FAULTS)
        if unknown:
            raise UsageError(
                f"--faults: unknown {sorted(unknown)}; choose from {', '.join(FAULTS)}"
            )
        return cls(**{k: True for k in kinds}, seed=seed)


class PtyPort:
    """A pseudo-terminal whose slave end is reachable under a stable symlink ``link``.

    ``reopen()`` replaces the terminal with a new one and moves the link, which is what a
    host sees when a USB device is unplugged and plugged back in.
    """

    def __init__(self, link: str | Path) -> None:
        self.link = Path(link)
        self._open()

    def _open(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no echo, no line discipline: bytes pass unchanged
        tmp = self.link.with_name(self.link.name + ".new")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(os.ttyname(self.slave))
        os.replace(tmp, self.link)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.master, view) :]

    def reopen(self, down_s: float) -> None:
        deadline = time.monotonic() + 2.0  # let the host read what was sent, as over a wire
        while _waiting(self.slave) and time.monotonic() < deadline:
            time.sleep(0.01)
        old = (self.master, self.slave)
        self.link.unlink(missing_ok=True)
        for fd in old:
            os.close(fd)
        time.sleep(down_s)
        self._open()

    def close(self) -> None:
        os.close(self.master)
        os.close(self.slave)
        self.link.unlink(missing_ok=True)


def _waiting(fd: int) -> int:
    """Bytes sent to the terminal and not yet read by the host."""
    return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]


class SerialPort:
    """A real serial port (e.g. a USB-serial adapter looped to the host)."""

    def __init__(self, port: str, baud: int) -> None:
        import serial

        self.port, self.baud = port, baud
        self.serial = serial.Serial(port, baud)

    def write(self, data: bytes) -> None:
        self.serial.write(data)

    def reopen(self, down_s: float) -> None:
        self.serial.close()
        time.sleep(down_s)
        self.serial.open()

    def close(self) -> None:
        self.serial.flush()
        self.serial.close()


def read_recording(
    path: Path, labels: Sequence[str] | None = None
) -> tuple[np.ndarray, float, tuple[str, ...]]:
    """The channels to play from an EDF file: ``labels`` (default: every channel at the
    first channel's rate).

    Returns
    -------
    data : ndarray of shape (n_times, n_channels), µV
    sfreq : float, Hz
    channels : the channels' labels

    Raises
    ------
    InputError
        If the channels have different rates (the protocol sends one).
    """
    present = channels(path)
    labels = list(labels or [c.label for c in present if c.sfreq == present[0].sfreq])
    signals = [read_signal(path, label, sfreq=None) for label in labels]
    rates = sorted({s.sfreq for s in signals})
    if len(rates) != 1:
        raise InputError(
            f"channels {labels} have different rates {rates}; the protocol sends one rate: "
            "pick channels with --channel"
        )
    data = np.stack([s.data for s in signals], axis=1)
    return data, rates[0], tuple(s.channel for s in signals)


def to_counts(data_uv: np.ndarray) -> tuple[np.ndarray, float]:
    """µV -> int16 counts with one µV-per-LSB for all channels, chosen from the data."""
    peak = float(np.nanmax(np.abs(data_uv))) if data_uv.size else 1.0
    uv_per_lsb = max(peak, 1e-3) / 32000
    counts = np.clip(np.round(np.nan_to_num(data_uv) / uv_per_lsb), -32768, 32767)
    return counts.astype(np.int16), uv_per_lsb


def _junk(rng: np.random.Generator) -> bytes:
    """1-64 random bytes, half the time behind a sync word and a plausible data size."""
    junk = rng.integers(0, 256, int(rng.integers(1, 65)), dtype=np.uint8).tobytes()
    if rng.random() < 0.5:
        junk = b"\xa5\x5a\x02" + int(rng.integers(8, 1024)).to_bytes(2, "little") + junk
    return junk


def play(
    port: Any,
    data_uv: np.ndarray,
    sfreq: float,
    channels: tuple[str, ...],
    speed: float | None = None,
    faults: Faults | None = None,
    frame_s: float = 0.25,
    device_id: str = "edgesleep-emulator",
    stop: threading.Event | None = None,
    on_frame: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Play ``data_uv`` (shape (n_times, n_channels), µV) as protocol frames to ``port``.

    ``speed``: 1.0 real time, None as fast as the port takes it. Returns counts of what was
    sent and of the faults injected.
    """
    faults = faults or Faults()
    rng = np.random.default_rng(faults.seed)
    counts, uv_per_lsb = to_counts(np.asarray(data_uv).reshape(data_uv.shape[0], -1))
    header = Header(sfreq, channels, "int16", uv_per_lsb, device_id, int(rng.integers(2**32)))
    per_frame = min(max(1, int(round(frame_s * sfreq))), max_samples_per_frame(len(channels)))
    n_times = counts.shape[0]
    disconnect_at, lost_until = (n_times // 2 if faults.disconnect else -1), -1
    sent = {"frames": 0, "dropped": 0, "garbage_bytes": 0, "disconnects": 0, "lost_samples": 0}
    port.write(encode_header(header))
    last_header = 0
    t_start = time.monotonic()
    for first in range(0, n_times, per_frame):
        if stop is not None and stop.is_set():
            break
        if speed:
            due = t_start + first / sfreq / speed
            time.sleep(max(0.0, due - time.monotonic()))
        if 0 <= disconnect_at <= first:
            disconnect_at = -1
            lost_until = first + int(round(faults.disconnect_s * sfreq))
            sent["disconnects"] += 1
            port.reopen(faults.disconnect_s / speed if speed else 0.2)
            port.write(encode_header(header))
        if first < lost_until:
            sent["lost_samples"] += min(per_frame, n_times - first)
            continue
        if first - last_header >= HEADER_EVERY_S * sfreq:
            port.write(encode_header(header))
            last_header = first
        if faults.drops and rng.random() < per_frame / sfreq / faults.drop_every_s:
            sent["dropped"] += 1
            continue
        port.write(encode_data(first, counts[first : first + per_frame]))
        sent["frames"] += 1
        if on_frame is not None:
            on_frame(first)
        if faults.garbage and rng.random() < per_frame / sfreq / faults.garbage_every_s:
            junk = _junk(rng)
            port.write(junk)
            sent["garbage_bytes"] += len(junk)
    port.write(encode_end(n_times))
    return sent


EVENT_TICKS_HZ = 1000.0  # an events-only device's ticks: milliseconds


def play_series(
    port: Any,
    series: Series,
    speed: float | None = None,
    frame_s: float = 10.0,
    device_id: str = "edgesleep-emulator",
) -> dict[str, int]:
    """Play a heart series as an events-only wearable: a header with no channels and
    millisecond ticks, then beats or rates frames of ``frame_s`` of events each (only the
    events from 0 on: a device's time starts with it), and the end frame.

    Returns counts of what was sent.
    """
    keep = series.time_s >= 0
    order = np.argsort(series.time_s[keep], kind="stable")
    ticks = np.round(series.time_s[keep][order] * EVENT_TICKS_HZ).astype(np.int64)
    values = None if series.values is None else series.values[keep][order]
    header = Header(EVENT_TICKS_HZ, (), "int16", 1.0, device_id, 1)
    per_frame = (MAX_PAYLOAD - 2) // (4 if values is None else 8)
    port.write(encode_header(header))
    sent = {"frames": 0, "events": 0}
    t_start, last_header, start = time.monotonic(), 0.0, 0
    end_tick = int(ticks[-1]) + 1 if ticks.size else 0
    while start < ticks.size:
        frame_end = ticks[start] + frame_s * EVENT_TICKS_HZ
        stop = min(int(np.searchsorted(ticks, frame_end)), start + per_frame)
        if speed:
            due = t_start + ticks[stop - 1] / EVENT_TICKS_HZ / speed
            time.sleep(max(0.0, due - time.monotonic()))
        if ticks[start] / EVENT_TICKS_HZ - last_header >= HEADER_EVERY_S:
            port.write(encode_header(header))
            last_header = ticks[start] / EVENT_TICKS_HZ
        part = slice(start, stop)
        body = (
            encode_beats(ticks[part]) if values is None else encode_rates(ticks[part], values[part])
        )
        port.write(body)
        sent["frames"] += 1
        sent["events"] += stop - start
        start = stop
    port.write(encode_end(end_tick))
    return sent
