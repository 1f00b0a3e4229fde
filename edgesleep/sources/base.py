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
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from edgesleep.errors import InputError, UsageError
from edgesleep.io.edf import channel_kind, find_channel
from edgesleep.protocol import Beats, Data, Rates

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


def pick_channel(info: StreamInfo, model_channel: str, channel: str | None) -> int:
    """Index of ``channel`` in the stream, or of the one channel of the model's sensor kind."""
    if channel is not None:
        return find_channel(list(info.channels), channel)
    if len(info.channels) == 1:
        return 0
    want = channel_kind(model_channel)
    matches = [i for i, c in enumerate(info.channels) if want and channel_kind(c) == want]
    if len(matches) == 1:
        return matches[0]
    raise InputError(
        f"the stream has channels {list(info.channels)}; pass --channel with the one that "
        f"matches the model's {model_channel!r}"
    )


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

    kind: type
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
            raise UsageError(
                f"{where}: {key}={text[:40]!r} is not a {self.kind.__name__} ({self.help})"
            ) from None
        if isinstance(value, (int, float)) and (
            (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi)
        ):
            raise UsageError(f"{where}: {key}={text[:40]} is outside {self.lo:g}..{self.hi:g} "
                             f"({self.help})")  # fmt: skip
        return value
