"""``stream --record PATH``: what a stream received, kept so that the night can be re-scored.

A signal stream's channels go to an EDF+ file (``.edf``): 16-bit samples over the
device's full scale (exact for the serial protocol's int16 samples, within the header's
8-character precision) or, where the device states none (CSV on stdin), over the
plausible range of the channel's kind; data records of 1 s, written whole (never padded
mid-stream); a gap between packets is held at the last value and annotated ``gap`` (with
its duration), samples that were not numbers are held and annotated ``nonfinite``, and the
true end is annotated ``end``. ``edgesleep stage PATH`` re-scores it (the gaps then read
as held values: flagged, not missing). A heart-event stream's events go to a heart CSV
(``.csv``: ``time_s`` for beats, ``time_s,bpm`` for heart rates, on the stream's clock,
and ``# end_s=`` where the stream's end frame said it ended), the format ``stage`` reads,
so its re-scoring is the stream's exactly. The
recorder is a
:class:`edgesleep.sinks.Sink` with packets: it runs detached, so a slow disk never delays
scoring.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from edgesleep.errors import InputError, UsageError
from edgesleep.io.edf import channel_kind
from edgesleep.protocol import Beats, Data, Rates
from edgesleep.stager import PLAUSIBLE_OTHER_UV, PLAUSIBLE_UV, EpochResult

log = logging.getLogger("edgesleep")
DIGITAL_MAX = 32767  # symmetric: digital = µV / (full scale / 32767), 0 at 0 µV


def check_record(path: Path, series: str | None, overwrite: bool) -> None:
    """Refuse a record path before the stream starts: its suffix must fit what is staged
    (``.edf`` for a signal, ``.csv`` for heart events), and an existing file needs
    ``overwrite``.

    Raises
    ------
    UsageError, InputError
    """
    want = ".csv" if series else ".edf"
    if path.suffix.lower() != want:
        what = f"heart events ({series})" if series else "a signal"
        raise UsageError(f"--record {path}: a stream of {what} is recorded as {want}; "
                         f"name the file *{want}")  # fmt: skip
    if path.exists() and not overwrite:
        raise InputError(f"{path} exists; pass --overwrite or another --record")


class Recorder:
    """The sink behind ``--record`` (see the module docstring).

    Parameters
    ----------
    path : the ``.edf`` (signal) or ``.csv`` (heart events) file
    series : what a heart-event stream stages from ("beats", "heart-rate"); None: a signal
    """

    name = "record"
    # packets it may fall behind (a replay at full speed outruns any writer; a device's
    # 1-s packets: over an hour) before it drops some (counted; the gap is annotated)
    queue_size = 4096

    def __init__(self, path: Path, series: str | None = None) -> None:
        self.path, self.series = path, series
        self.writer: Any = None
        self.csv: TextIO | None = None
        self.sfreq = 1.0
        self.end_s: float | None = None  # heart events: where the end frame said it ended

    def start(self, meta: dict[str, Any]) -> None:
        """Open the file for the stream that ``meta`` describes (sfreq, channels,
        full_scale_uv, device_id)."""
        self.sfreq = float(meta["sfreq"])
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.series is not None:
            self.csv = self.path.open("w")
            self.csv.write("time_s\n" if self.series == "beats" else "time_s,bpm\n")
            return
        self._open_edf(meta)

    def _open_edf(self, meta: dict[str, Any]) -> None:
        import pyedflib

        channels = list(meta["channels"])
        if self.sfreq != int(self.sfreq):
            raise InputError(f"--record: a {self.sfreq:g}-Hz stream does not fit 1-s EDF "
                             "records (an integer rate is needed)")  # fmt: skip
        full = meta.get("full_scale_uv")
        self.full_scale = np.array([
            float(full) if full else PLAUSIBLE_UV.get(channel_kind(c) or "", PLAUSIBLE_OTHER_UV)
            for c in channels
        ])  # fmt: skip
        writer = pyedflib.EdfWriter(str(self.path), len(channels),
                                    file_type=pyedflib.FILETYPE_EDFPLUS)  # fmt: skip
        writer.setEquipment(str(meta.get("device_id", ""))[:80])
        writer.setStartdatetime(dt.datetime.now().replace(microsecond=0))
        writer.setSignalHeaders([
            {"label": c[:16], "dimension": "uV", "sample_frequency": int(self.sfreq),
             "physical_max": float(f), "physical_min": -float(f),
             "digital_max": DIGITAL_MAX, "digital_min": -DIGITAL_MAX,
             "transducer": "", "prefilter": ""}
            for c, f in zip(channels, self.full_scale, strict=True)
        ])  # fmt: skip
        self.writer = writer
        self.pending: list[np.ndarray] = []  # digital rows (n, n_channels) not yet written
        self.n_pending = 0
        self.last = np.zeros(len(channels), np.int32)
        self.expected = 0  # the next sample index
        self.written = 0  # samples in whole records written

    def epoch(self, result: EpochResult) -> None:
        """Results are not recorded (the night file holds them)."""

    def packet(self, packet: Any) -> None:
        """One packet of the stream, as received."""
        packet.deliver(self)

    def samples(self, packet: Data) -> None:
        if self.writer is None:  # heart events: an empty packet is the stream's end
            if self.csv is not None and packet.samples.shape[0] == 0:
                self.end_s = packet.first_index / self.sfreq
            return
        start, x = packet.first_index, packet.samples
        if start > self.expected:  # a gap: held, annotated
            gap = start - self.expected
            self.writer.writeAnnotation(self.expected / self.sfreq, gap / self.sfreq, "gap")
            self._add(np.repeat(self.last[None], gap, axis=0))
        elif start < self.expected:  # an overlap: the new samples only
            x = x[self.expected - start :]
        if x.shape[0] == 0:
            return
        digital = np.rint(x * (DIGITAL_MAX / self.full_scale))
        bad = ~np.isfinite(digital)
        if bad.any():
            self.writer.writeAnnotation(self.expected / self.sfreq, 0, "nonfinite")
            rows = np.where(bad.any(axis=1))[0]
            for i in rows:  # hold the last value (rare: CSV lines that were not numbers)
                digital[i] = np.where(bad[i], digital[i - 1] if i else self.last, digital[i])
        self._add(np.clip(digital, -DIGITAL_MAX, DIGITAL_MAX).astype(np.int32))

    def _add(self, rows: np.ndarray) -> None:
        self.pending.append(rows)
        self.n_pending += rows.shape[0]
        self.expected += rows.shape[0]
        self.last = rows[-1]
        per_record = int(self.sfreq)
        if self.n_pending < per_record:
            return
        block = np.concatenate(self.pending)
        whole = block.shape[0] // per_record * per_record
        for first in range(0, whole, per_record):
            record = block[first : first + per_record]
            self.writer.blockWriteDigitalSamples(np.ascontiguousarray(record.T.reshape(-1)))
        self.written += whole
        self.pending = [block[whole:]] if whole < block.shape[0] else []
        self.n_pending = block.shape[0] - whole

    def beats(self, packet: Beats) -> None:
        if self.csv is not None and self.series == "beats":
            self.csv.writelines(f"{t / self.sfreq:.3f}\n" for t in packet.indices.tolist())
            self.csv.flush()

    def rates(self, packet: Rates) -> None:
        if self.csv is not None and self.series == "heart-rate":
            self.csv.writelines(
                f"{t / self.sfreq:.3f},{v:g}\n"
                for t, v in zip(packet.ticks.tolist(), packet.bpm.tolist(), strict=True)
                if math.isfinite(v)
            )
            self.csv.flush()

    def close(self) -> None:
        """The last partial record held at the last value, the true end annotated (a heart
        CSV: an ``# end_s=`` line, when the stream's end frame said where it ended)."""
        if self.csv is not None:
            if self.end_s is not None:
                self.csv.write(f"# end_s={self.end_s:.6f}\n")
            self.csv.close()
        if self.writer is None:
            return
        end = self.expected
        rest = (-self.n_pending) % int(self.sfreq)
        if rest:
            self._add(np.repeat(self.last[None], rest, axis=0))
        self.writer.writeAnnotation(end / self.sfreq, 0, "end")
        self.writer.close()
        log.info("recorded %.0f s of %d channel(s) to %s", end / self.sfreq,
                 self.last.shape[0], self.path)  # fmt: skip
