"""``lsl:type=EEG`` / ``lsl:name=...``: a Lab Streaming Layer stream (needs pylsl: the
``lsl`` extra).

The stream is resolved by ``name``, ``type`` or ``source_id`` (every one given must match),
waiting up to ``timeout`` s. What it holds (``kind``):

- ``signal`` (a regular-rate stream): every channel, in µV (each channel's unit from the
  stream's description, ``channels/channel/unit``; a stream that states none is taken as
  µV, with a warning, unless ``units=`` says otherwise; a channel in a unit that is not a
  voltage cannot be staged). Sample indices count from the first sample received and are
  placed from LSL's timestamps (:class:`~edgesleep.sources.base.Placer`): a silence longer
  than ``gap`` s is a gap.
- ``rr`` (an irregular stream of RR intervals, ms unless its unit says s): beat times are
  the running sum of the intervals, started at the first interval's timestamp and restarted
  at a sample's timestamp when the sum strays from it by more than ``RESYNC_S`` (beats were
  lost); the first interval also gives the beat before it.
- ``beats`` (irregular; each sample's timestamp is an R peak) and ``heart-rate``
  (irregular or regular; bpm, each at its timestamp).

Events are on the stream's clock from its outlet's creation (``created_at``): a host that
connects late places them where an earlier one would. ``kind`` defaults from the stream's
type (RR/IBI: rr, HR/HeartRate: heart-rate, Beats/RPeaks: beats) and its rate (regular:
signal). With ``idle`` > 0 the stream ends after that many seconds without a sample (a
player's end); with 0 it runs until Ctrl-C, and an outlet that goes away and comes back
(the same source_id) continues it, the silence a gap.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from edgesleep.errors import InputError, UsageError
from edgesleep.io.edf import UNIT_TO_UV
from edgesleep.lsl import import_pylsl
from edgesleep.sources.base import BeatPacket, Packet, Param, Placer, RatePacket, StreamInfo

log = logging.getLogger("edgesleep")
DOC = "a Lab Streaming Layer stream: a signal, RR intervals, beats or heart rate (pylsl)"
TARGET = None
KINDS = ("signal", "rr", "beats", "heart-rate")
PARAMS = {
    "name": Param(str, "", "the stream's name"),
    "type": Param(str, "", "the stream's type (EEG, EOG, ECG, RR, HR, ...)"),
    "source_id": Param(str, "", "the stream's source_id"),
    "kind": Param(str, "", "what it holds: " + ", ".join(KINDS) + " (default: from its type)"),
    "units": Param(
        str, "", "the unit of every channel when the stream states none (uV, mV, V; ms or s for RR)"
    ),  # fmt: skip
    "timeout": Param(float, 30.0, "seconds to wait for the stream to appear", 0.1, 86_400.0),
    "idle": Param(
        float, 0.0, "end after this many seconds without a sample (0: never)", 0.0, 86_400.0
    ),  # fmt: skip
    "gap": Param(float, 0.5, "a silence longer than this (s) is a gap in a signal", 0.01, 60.0),
}
TICKS_PER_S = 1_000_000  # events: microseconds on the stream's clock
RESYNC_S = 2.0  # RR sums further than this from their timestamps restart at the timestamp
READ_S = 1.0  # one read: what arrived within a second
_TYPES = {"rr": "rr", "ibi": "rr", "hr": "heart-rate", "heartrate": "heart-rate",
          "heart-rate": "heart-rate", "beats": "beats", "rpeaks": "beats"}  # fmt: skip


def open_spec(target: str, params: dict[str, Any], channel: str) -> LslSource:
    keys = {k: params[k] for k in ("name", "type", "source_id") if params[k]}
    if not keys:
        raise UsageError("source lsl: name the stream: lsl:type=EEG, lsl:name=... or "
                         "lsl:source_id=...")  # fmt: skip
    if params["kind"] and params["kind"] not in KINDS:
        raise UsageError(f"source lsl: kind={params['kind']!r}: use one of {', '.join(KINDS)}")
    return LslSource(keys, params["kind"] or None, params["units"] or None, params["timeout"],
                     params["idle"], params["gap"])  # fmt: skip


def predicate(keys: dict[str, str]) -> str:
    """An XPath predicate matching every key (quotes in values refused)."""
    for k, v in keys.items():
        if "'" in v:
            raise UsageError(f"source lsl: {k}={v!r}: a quote cannot be matched")
    return " and ".join(f"{k}='{v}'" for k, v in keys.items())


class LslSource:
    """A stream resolved on LSL (see the module docstring); one read per second, each a
    packet.

    Raises
    ------
    InputError
        pylsl or liblsl missing (the extra is named), no stream found within ``timeout_s``
        (what was looked for is named), several found, a unit that cannot be read.
    """

    def __init__(
        self,
        keys: dict[str, str],
        kind: str | None = None,
        units: str | None = None,
        timeout_s: float = 30.0,
        idle_s: float = 0.0,
        gap_s: float = 0.5,
    ) -> None:
        self.pylsl = pylsl = import_pylsl()
        self.what = predicate(keys)
        found = pylsl.resolve_bypred(self.what, 1, timeout_s)
        if not found:
            raise InputError(f"no LSL stream with {self.what} appeared within {timeout_s:g} s; "
                             "is the device streaming (and on this network)?")  # fmt: skip
        time.sleep(0.2)  # a second stream announcing itself at once
        found = pylsl.resolve_bypred(self.what, 1, 0.5) or found
        if len({s.uid() for s in found}) > 1:
            names = [f"{s.name()} ({s.type()}, {s.source_id() or s.hostname()})" for s in found]
            raise InputError(f"{len(found)} LSL streams match {self.what}: {names}; "
                             "add name= or source_id=")  # fmt: skip
        self.inlet = pylsl.StreamInlet(found[0], max_buflen=360, recover=True)
        full = self.inlet.info(timeout_s)
        self.idle_s, self.created_at = idle_s, full.created_at()
        # a read takes what arrived within READ_S; pylsl allocates its buffer at every call
        self.max_samples = int(max(1024, 4 * full.nominal_srate() * READ_S))
        labels, stated = _channels(full)
        self.kind = kind or _kind(full.type(), full.nominal_srate())
        rate = full.nominal_srate()
        if self.kind == "signal" and rate <= 0:
            raise InputError(f"LSL stream {full.name()!r} has no regular rate: it cannot be "
                             "staged as a signal; say kind=rr, beats or heart-rate")  # fmt: skip
        self.stats: dict[str, float] = {"reads": 0, "samples": 0, "gaps": 0, "resyncs": 0}
        device = f"lsl {full.name()} ({full.type()}) on {full.hostname()}"
        if self.kind == "signal":
            self.scale, out_units = _voltage_scale(labels, stated, units, full.name())
            self.placer = Placer(rate, gap_s)
            self._info = StreamInfo(rate, tuple(labels), None, device,
                                    clock="LSL timestamps: samples since the first received",
                                    units=out_units)  # fmt: skip
        else:
            rr = self.kind == "rr"
            self.rr_scale = _rr_scale(stated[0] if stated else "", units) if rr else 1.0
            self._last_beat: float | None = None
            self._info = StreamInfo(float(TICKS_PER_S), (), None, device,
                                    events=("heart-rate",) if self.kind == "heart-rate"
                                    else ("beats",),
                                    clock="LSL timestamps since the outlet was created, "
                                          "microseconds")  # fmt: skip
        log.info("LSL: %s, %s, %d channel(s) at %g Hz", device, self.kind, len(labels), rate)

    def info(self) -> StreamInfo:
        return self._info

    def packets(self) -> Iterator[Packet | BeatPacket | RatePacket]:
        silent_since = time.monotonic()
        while True:
            data, stamps = self.inlet.pull_chunk(timeout=READ_S, max_samples=self.max_samples)
            if not stamps:
                if self.idle_s and time.monotonic() - silent_since > self.idle_s:
                    return
                continue
            silent_since = time.monotonic()
            self.stats["reads"] += 1
            self.stats["samples"] += len(stamps)
            x = np.asarray(data, dtype=np.float64).reshape(len(stamps), -1)
            t = np.asarray(stamps, dtype=np.float64)
            if self.kind == "signal":
                gaps = self.placer.gaps
                for first, part in self.placer.place_read(t):
                    yield Packet(first, x[part] * self.scale)
                self.stats["gaps"] += self.placer.gaps - gaps
            else:
                packet = self._events(x, t - self.created_at)
                if packet is not None:
                    yield packet

    def _events(self, x: np.ndarray, t: np.ndarray) -> BeatPacket | RatePacket | None:
        """Heart events on the stream's clock (``t``: s since the outlet was created)."""
        if self.kind == "heart-rate":
            return RatePacket(_ticks(t), x[:, 0])
        if self.kind == "beats":
            return BeatPacket(_ticks(t))
        return BeatPacket(_ticks(self._beats(x[:, 0] * self.rr_scale, t)))

    def _beats(self, rr_s: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Beat times from RR intervals (s) and their timestamps (see the module docstring)."""
        out: list[float] = []
        for rr, stamp in zip(rr_s.tolist(), t.tolist(), strict=True):
            if not (math.isfinite(rr) and 0 < rr < 10):
                continue
            if self._last_beat is None or abs(self._last_beat + rr - stamp) > RESYNC_S:
                if self._last_beat is not None:
                    self.stats["resyncs"] += 1
                out.append(stamp - rr)  # the beat that opened the interval
                self._last_beat = stamp - rr
            self._last_beat += rr
            out.append(self._last_beat)
        return np.asarray(out)

    def close(self) -> None:
        self.inlet.close_stream()


def _ticks(t: np.ndarray) -> np.ndarray:
    return np.round(t * TICKS_PER_S).astype(np.int64)


def _kind(stream_type: str, rate: float) -> str:
    """What a stream holds, from its type and rate (see the module docstring)."""
    key = stream_type.strip().lower().replace("_", "-").replace(" ", "")
    if key in _TYPES:
        return _TYPES[key]
    if rate > 0:
        return "signal"
    raise InputError(f"an irregular LSL stream of type {stream_type!r}: say what it holds with "
                     "kind=rr, beats or heart-rate")  # fmt: skip


def _channels(info: Any) -> tuple[list[str], list[str]]:
    """Channel labels (``ch0``... where none are given) and stated units."""
    labels: list[str] = []
    units: list[str] = []
    ch = info.desc().child("channels").child("channel")
    while not ch.empty() and len(labels) < info.channel_count():
        labels.append(ch.child_value("label").strip())
        units.append(ch.child_value("unit").strip())
        ch = ch.next_sibling()
    n = info.channel_count()
    labels += [""] * (n - len(labels))
    units += [""] * (n - len(units))
    return [lab or f"ch{i}" for i, lab in enumerate(labels)], units


def _voltage_scale(labels: list[str], stated: list[str], given: str | None,
                   name: str) -> tuple[np.ndarray, tuple[str, ...]]:  # fmt: skip
    """Per-channel factors to µV and the units after scaling ("uV", or a non-voltage unit)."""
    if given is not None and given.lower() not in UNIT_TO_UV:
        raise UsageError(f"source lsl: units={given!r}: use uV, mV or V")
    scale, out = np.ones(len(labels)), []
    unstated = [lab for lab, u in zip(labels, stated, strict=True) if not u]
    if unstated and given is None:
        log.warning("LSL stream %r states no unit for %s: read as µV (say units= if not)",
                    name, unstated)  # fmt: skip
    for i, unit in enumerate(stated):
        key = (unit or given or "uV").lower()
        if key in UNIT_TO_UV:
            scale[i] = UNIT_TO_UV[key]
            out.append("uV")
        else:
            out.append(unit)
    return scale, tuple(out)


def _rr_scale(stated: str, given: str | None) -> float:
    unit = (stated or given or "ms").lower()
    if unit in ("ms", "millisecond", "milliseconds"):
        return 1e-3
    if unit in ("s", "second", "seconds"):
        return 1.0
    raise InputError(f"RR intervals in {unit!r}: LSL RR streams are read in ms or s "
                     "(units=ms or units=s)")  # fmt: skip
