"""Where a stream's epochs go: sinks, several at once, none able to cost the night file a row.

A :class:`Sink` is told what the stream is (:meth:`Sink.start`), receives each result as it
is scored (:meth:`Sink.epoch`) and is closed at the end. The night file
(:class:`edgesleep.night_file.NightSink`, ``--out``) is the *primary* sink: written in the
scoring loop, with every guarantee of :mod:`edgesleep.night_file`. Every other sink (the
live page, the raw recorder) runs *detached* (:class:`Detached`): on its own thread behind a
bounded queue, so a slow sink loses the results that come while its queue is full (counted
as ``drops``) rather than delaying scoring; a sink that cannot block by construction (the
LSL outlet, which hands each result to liblsl's non-blocking buffer) runs *inline*
(:class:`Inline`), saving a thread wake-up per epoch. Either way a sink that raises is
closed and dropped (counted as ``failed``, logged once) while the stream and the night file
go on. :class:`Fanout` is what the stream loop writes to.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

from edgesleep.stager import EpochResult

log = logging.getLogger("edgesleep")
QUEUE_SIZE = 256  # results a detached sink may fall behind (over 2 h of epochs)
CLOSE_TIMEOUT_S = 5.0


class Sink(Protocol):
    """What receives a stream's epochs."""

    name: str

    def start(self, meta: dict[str, Any]) -> None:
        """The stream's identity before its first epoch: device_id, stream_id, channel,
        sfreq, export_id."""
        ...

    def epoch(self, result: EpochResult) -> None:
        """One result, in the order scored (a revision re-sends an epoch)."""
        ...

    def close(self) -> None: ...


# A sink that also wants the stream's packets as received (the raw recorder) defines
# ``packet(packet)``; the fan-out hands them to it, detached like its epochs. A sink that
# maps device time to its own clock (the LSL outlet) defines ``arrived((device_s,
# monotonic_s))``: it is told once, when the first packet arrives, the device time of that
# packet's end and ``time.monotonic()`` then. A sink that shows the stream's state (the live
# page) defines ``status_update(status)``: it gets the stream's counters after each result
# (:func:`edgesleep.stream.stream_to_csv`). A sink may set ``queue_size`` (items it may
# fall behind; default QUEUE_SIZE). A sink that sets ``inline = True`` promises that none of
# its methods can block (:class:`Inline`).

_CLOSE = object()


class _Wrapped:
    """What the fan-out calls on a sink it wraps: each call is ``_put((method, value))``."""

    sink: Sink
    stats: dict[str, int]

    def _put(self, item: Any) -> None:
        raise NotImplementedError

    def start(self, meta: dict[str, Any]) -> None:
        self._put(("start", meta))

    def epoch(self, result: EpochResult) -> None:
        self._put(("epoch", result))

    @property
    def wants_packets(self) -> bool:
        return hasattr(self.sink, "packet")

    @property
    def wants_arrival(self) -> bool:
        return hasattr(self.sink, "arrived")

    @property
    def wants_status(self) -> bool:
        return hasattr(self.sink, "status_update")

    def packet(self, packet: Any) -> None:
        self._put(("packet", packet))

    def arrived(self, when: tuple[float, float]) -> None:
        self._put(("arrived", when))

    def status_update(self, status: dict[str, Any]) -> None:
        self._put(("status_update", status))

    def _deliver(self, item: tuple[str, Any]) -> None:
        """Call the sink's method ``item[0]`` with ``item[1]``; a sink that raises is failed
        (it gets nothing more)."""
        if self.stats["failed"]:
            return
        what, value = item
        try:
            getattr(self.sink, what)(value)
        except Exception as err:  # noqa: BLE001 (any sink's fault stays in the sink)
            self.stats["failed"] = 1
            log.warning("sink %s failed (%s: %s); the stream goes on without it",
                        self.sink.name, type(err).__name__, err)  # fmt: skip

    def _close_sink(self) -> None:
        try:
            self.sink.close()
        except Exception as err:  # noqa: BLE001 (closing: nothing left to lose)
            log.warning("sink %s: closing failed (%s)", self.sink.name, err)


class Inline(_Wrapped):
    """A sink that cannot block by construction (it hands each result to a library's own
    non-blocking buffer: the LSL outlet), called in the scoring loop, which saves a thread
    wake-up per epoch; one that raises is dropped like a detached one (``failed``)."""

    def __init__(self, sink: Sink) -> None:
        self.sink, self.name = sink, sink.name
        self.stats = {"drops": 0, "failed": 0}

    def _put(self, item: Any) -> None:
        self._deliver(item)

    def close(self) -> None:
        self._close_sink()


class Detached(_Wrapped):
    """``sink`` on its own thread behind a queue of ``size`` items (see the module
    docstring). ``stats``: ``drops`` (results it never got: its queue was full),
    ``failed`` (1 once it raised; it gets nothing more)."""

    def __init__(self, sink: Sink, size: int = QUEUE_SIZE) -> None:
        self.sink, self.name = sink, sink.name
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=size)
        self.stats = {"drops": 0, "failed": 0}
        self.thread = threading.Thread(target=self._run, name=f"edgesleep-sink-{sink.name}",
                                       daemon=True)  # fmt: skip
        self.thread.start()

    def _put(self, item: Any) -> None:
        if self.stats["failed"]:
            return
        try:
            self.queue.put_nowait(item)
        except queue.Full:
            self.stats["drops"] += 1

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is _CLOSE:
                break
            self._deliver(item)
        self._close_sink()

    def close(self) -> None:
        """Hand the sink what is queued, then close it; wait at most ``CLOSE_TIMEOUT_S``
        (a hung sink is left behind: its thread is a daemon)."""
        while True:
            try:
                self.queue.put(_CLOSE, timeout=CLOSE_TIMEOUT_S)
                break
            except queue.Full:
                self.stats["drops"] += 1  # hung: make room for the close
                self.queue.get_nowait()
        self.thread.join(timeout=CLOSE_TIMEOUT_S)
        if self.thread.is_alive():
            log.warning("sink %s did not close in %.0f s", self.name, CLOSE_TIMEOUT_S)


class Fanout:
    """The primary sink (written in the loop: its errors end the stream) and detached
    others. ``stats``: each detached sink's counters by name."""

    name = "fan-out"

    def __init__(self, primary: Sink, others: Sequence[Sink] = ()) -> None:
        self.primary = primary
        self.others: list[Inline | Detached] = [
            Inline(s) if getattr(s, "inline", False)
            else Detached(s, getattr(s, "queue_size", QUEUE_SIZE)) for s in others
        ]  # fmt: skip
        self.recorders = [s for s in self.others if s.wants_packets]
        self.clocked = [s for s in self.others if s.wants_arrival]
        self.showing = [s for s in self.others if s.wants_status]
        self.last_packet_unix = 0.0  # when the last packet arrived (kept for ``showing``)
        self._ticks_per_s = 0.0  # the stream's rate: its packets' indices per second

    @property
    def wants_packets(self) -> bool:
        """Whether any sink wants the packets (a recorder), their arrival (a clock) or the
        time of the last one (a status)."""
        return bool(self.recorders or self.clocked or self.showing)

    def start(self, meta: dict[str, Any]) -> None:
        self._ticks_per_s = float(meta.get("sfreq") or 0.0)
        self.primary.start(meta)
        for sink in self.others:
            sink.start(meta)

    def epoch(self, result: EpochResult) -> None:
        self.primary.epoch(result)
        for sink in self.others:
            sink.epoch(result)

    def status_update(self, status: dict[str, Any]) -> None:
        """The stream's counters, for the sinks that show them (detached)."""
        for sink in self.showing:
            sink.status_update(status)

    def packet(self, packet: Any) -> None:
        """A packet as received, for the sinks that keep them (detached); the first one's
        arrival for the sinks that map device time; its time for the sinks that show status."""
        if self.showing:
            self.last_packet_unix = time.time()
        if self.clocked:
            end = _end_index(packet)
            if end is not None and self._ticks_per_s > 0:
                when = (end / self._ticks_per_s, time.monotonic())
                for sink in self.clocked:
                    sink.arrived(when)
                self.clocked = []
        for sink in self.recorders:
            sink.packet(packet)

    @property
    def stats(self) -> dict[str, dict[str, int]]:
        return {s.name: dict(s.stats) for s in self.others}

    def close(self) -> None:
        """Close the others (each within its timeout), then the primary, whatever fails."""
        try:
            for sink in self.others:
                sink.close()
        finally:
            self.primary.close()


def _end_index(packet: Any) -> float | None:
    """The index (in the stream's ticks) just after a packet's last sample or event; None
    for an empty packet of events."""
    if hasattr(packet, "samples"):
        return float(packet.first_index + packet.samples.shape[0])
    ticks = getattr(packet, "indices", None)
    if ticks is None:
        ticks = packet.ticks
    return float(ticks[-1]) if len(ticks) else None
