"""What every source shares: the stream it describes, the packets it yields, the protocol.

Every source yields :class:`Packet` s (device-rate µV with the index of their first sample
since the stream started) and, from the serial protocol, :class:`BeatPacket` s and
:class:`RatePacket` s, then stops at the end of the recording. Sample indices make gaps
measurable: the stager fills and flags them (:meth:`edgesleep.stager.Stager.push` with
``t0``). Nothing here imports scipy or an optional package.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from edgesleep.errors import InputError, UsageError
from edgesleep.io.edf import channel_kind, find_channel
from edgesleep.protocol import Beats, Data, Rates
from edgesleep.stager import Column

log = logging.getLogger("edgesleep")
PACKET_S = 1.0


@dataclass(frozen=True)
class StreamInfo:
    """What a source delivers: rate (Hz), channel labels, full scale (µV, if known)."""

    sfreq: float
    channels: tuple[str, ...]
    full_scale_uv: float | None = None
    device_id: str = ""
    synthetic: bool = False
    stream_id: int | None = None  # a serial device's (new at every boot)
    # what else it may deliver besides its channels: heart events ("beats", "heart-rate")
    events: tuple[str, ...] = ()
    # whose clock its sample indices count: the device's samples, or a file's
    clock: str = "device samples"
    # each channel's unit after the source's scaling: "uV" for a voltage (the default when
    # empty), else the unit the device states (an accelerometer's "g"): not stageable
    units: tuple[str, ...] = ()


# One packet family, shared with the wire protocol (edgesleep.protocol): a source hands on
# the same types, placed on an unwrapped index since the stream began and, for samples, in
# µV; each packet delivers itself to a stager (``packet.deliver(stager)``), which stages
# from the kinds it takes.
Packet = Data  # samples (n_samples, n_channels), µV, the first at ``first_index`` (``start``)
BeatPacket = Beats  # R-peak sample indices, on the samples' time base
RatePacket = Rates  # heart-rate samples: ``ticks`` on the samples' time base, ``bpm``


class Source(Protocol):
    """Where samples come from: its stream description, its packets, its counters."""

    @property
    def stats(self) -> dict[str, float]: ...

    def info(self) -> StreamInfo: ...

    def packets(self) -> Iterator[Packet | BeatPacket | RatePacket]: ...

    def close(self) -> None: ...


def pick_channel(info: StreamInfo, model_channel: str, channel: str | None) -> tuple[Column, str]:
    """The column of ``channel`` in the stream (or of the one channel of the model's sensor
    kind) and its label. ``channel`` may be a derivation of two of the stream's channels,
    ``E1-E2`` (plus minus minus), where no channel carries that name itself.

    Raises
    ------
    InputError
        No channel or derivation matches (the channels there are are listed), several do,
        or the channel is not a voltage (its unit is named).
    """
    labels = list(info.channels)
    if channel is not None:
        column = _find(labels, channel)
    elif len(labels) == 1:
        column = 0
    else:
        want = channel_kind(model_channel)
        matches = [i for i, c in enumerate(labels) if want and channel_kind(c) == want]
        if len(matches) != 1:
            raise InputError(
                f"the stream has channels {labels}; pass --channel with the one that matches "
                f"the model's {model_channel!r} (or a derivation of two, e.g. "
                f"--channel {'-'.join(labels[:2])})"
            )
        column = matches[0]
    parts = (column,) if isinstance(column, int) else column
    for i in parts:
        unit = info.units[i] if i < len(info.units) else "uV"
        if unit != "uV":
            raise InputError(
                f"channel {labels[i]!r} is in {unit!r}, not a voltage: stage a voltage channel "
                f"(channels: {labels})"
            )
    label = labels[column] if isinstance(column, int) else "-".join(labels[i] for i in column)
    return column, label


def _find(labels: list[str], name: str) -> Column:
    """A channel by name (or alias), else a derivation ``A-B`` of two channels."""
    try:
        return find_channel(labels, name)
    except InputError as err:
        for cut in [i for i, c in enumerate(name) if c == "-"]:
            plus, minus = name[:cut].strip(), name[cut + 1 :].strip()
            if plus and minus:
                try:
                    return find_channel(labels, plus), find_channel(labels, minus)
                except InputError:
                    continue
        raise err


class Placer:
    """Sample indices from a stream's timestamps (LSL, BrainFlow): where each read's first
    sample falls since the stream's first sample, with gaps found from the timestamps.

    Timestamps jitter (they are stamped when a chunk leaves the device or reaches the host)
    but never come early, so the time of sample 0 is tracked as the earliest that the
    timestamps allow: ``t0 = min over reads of (first timestamp - index / sfreq)``, drifting
    up slowly (``DRIFT``) so that a device clock slower than its nominal rate is followed. A
    read whose first timestamp is more than ``gap_s`` later than its index says is a gap:
    the index jumps by the missing samples (the stager fills and flags them). A shorter
    delay is jitter. liblsl's own dejitter is not used: it smooths a gap over the samples
    after it.
    """

    DRIFT = 0.01  # per read, of a late read's delay

    def __init__(self, sfreq: float, gap_s: float = 0.5) -> None:
        self.sfreq, self.gap_s = sfreq, gap_s
        self.next_index = 0
        self.t0: float | None = None
        self.gaps = 0

    def place(self, first_stamp: float, n_samples: int) -> int:
        """The index of a read's first sample (``first_stamp``: its timestamp, s)."""
        if self.t0 is None:
            self.t0 = first_stamp
        late = first_stamp - (self.t0 + self.next_index / self.sfreq)
        if late > self.gap_s:
            self.gaps += 1
            self.next_index += int(round(late * self.sfreq))
        elif late < 0:
            self.t0 += late
        else:
            self.t0 += self.DRIFT * late
        index = self.next_index
        self.next_index += n_samples
        return index

    def place_read(self, stamps: np.ndarray) -> list[tuple[int, slice]]:
        """A read's samples by their timestamps (s): (index of the first, which samples) for
        each run between two timestamps more than ``gap_s`` apart (a gap inside the read)."""
        cuts = np.flatnonzero(np.diff(stamps) > self.gap_s) + 1
        edges = [0, *cuts.tolist(), stamps.shape[0]]
        return [(self.place(float(stamps[a]), b - a), slice(a, b))
                for a, b in zip(edges[:-1], edges[1:], strict=True)]  # fmt: skip


class ArraySource:
    """Replay an in-memory recording in packets of ``packet_s``.

    Parameters
    ----------
    data : ndarray of shape (n_times, n_channels), µV
    speed : float or None
        1.0: real time, 10.0: ten times faster, None: as fast as the consumer takes it.
    """

    def __init__(
        self,
        data: np.ndarray,
        info: StreamInfo,
        speed: float | None = None,
        packet_s: float = PACKET_S,
    ) -> None:
        self.data = np.asarray(data, dtype=np.float64).reshape(data.shape[0], -1)
        self._info = info
        self.speed = speed
        self.packet = max(1, int(round(packet_s * info.sfreq)))
        self.stats: dict[str, float] = {"packets": 0}

    def info(self) -> StreamInfo:
        return self._info

    def packets(self) -> Iterator[Packet]:
        t_start = time.monotonic()
        for start in range(0, self.data.shape[0], self.packet):
            if self.speed:
                due = t_start + (start + self.packet) / self._info.sfreq / self.speed
                time.sleep(max(0.0, due - time.monotonic()))
            self.stats["packets"] += 1
            yield Packet(start, self.data[start : start + self.packet])

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class Param:
    """One parameter of a source's spec string (``?key=value``): its type, default (None:
    required when ``required``), bounds and a one-line help."""

    kind: Callable[[str], Any]  # a type, or a parser of the text (raising ValueError)
    default: Any
    help: str
    lo: float | None = None
    hi: float | None = None
    required: bool = False

    def parse(self, where: str, key: str, text: str) -> Any:
        """The value of ``key=text``.

        Raises
        ------
        UsageError
            Not of the parameter's type or outside its bounds.
        """
        try:
            value = self.kind(text)
        except ValueError:
            what = getattr(self.kind, "__name__", "value")
            raise UsageError(f"{where}: {key}={text[:40]!r} is not a {what} ({self.help})"
                             ) from None  # fmt: skip
        if isinstance(value, (int, float)) and (
            (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi)
        ):
            raise UsageError(f"{where}: {key}={text[:40]} is outside {self.lo:g}..{self.hi:g} "
                             f"({self.help})")  # fmt: skip
        return value
