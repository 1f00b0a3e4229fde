"""``serial:/dev/ttyUSB0?baud=115200``: a wearable speaking :mod:`edgesleep.protocol` on a
serial port (needs pyserial: the ``serial`` extra)."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from edgesleep.errors import InputError
from edgesleep.protocol import Beats, Data, End, Header, Parser, Rates
from edgesleep.sources.base import BeatPacket, Packet, Param, RatePacket, StreamInfo

log = logging.getLogger("edgesleep")
DOC = "a wearable speaking the edgesleep protocol on a serial port (docs/protocol.md)"
TARGET = "the port, e.g. /dev/ttyUSB0 or /dev/serial/by-id/..."
PARAMS = {"baud": Param(int, 115200, "the baud rate", 300, 12_000_000)}


def open_spec(target: str, params: dict[str, Any], channel: str) -> SerialSource:
    return SerialSource(target, params["baud"])


_STOP = object()


class SerialSource:
    """Frames of :mod:`edgesleep.protocol` from a serial port, read on a thread.

    The reader thread parses frames and puts packets into a bounded queue, one batch per
    read (:meth:`receive`: a run of contiguous samples is one packet), so a slow consumer
    never blocks the port: when the queue is full a packet is dropped and counted
    (``queue_drops``), and the gap shows in the sample indices. A port that disappears
    (unplugged, the device reset) is reopened every ``reconnect_s`` under the same path
    (use a stable name such as /dev/serial/by-id/...); the stream continues where the
    sample indices say. Indices wrap at 2**32 and are unwrapped here. Time is the device's:
    a packet starts at its sample index (since the device's stream started) over the rate, so
    a host that opens the port late, or misses the first header, cuts the same epochs at the
    same onsets (what it missed is a gap). The port is opened without emptying what the
    operating system already buffered. When the device reboots (a header with a new stream
    id), the new indices are placed after the old ones by the wall-clock time that passed,
    and that time is a gap.
    """

    def __init__(
        self,
        port: str,
        baud: int = 115200,
        queue_size: int = 256,
        reconnect_s: float = 0.5,
        header_timeout_s: float = 15.0,
        read: bool = True,
    ) -> None:
        self._serial: Any = None
        if read:  # (detached: no port, no reader, no pyserial)
            try:
                import serial
            except ImportError:
                raise InputError(
                    "reading a serial port needs pyserial: pip install 'edgesleep[serial]'"
                ) from None
            self._serial = serial
        self.port, self.baud, self.reconnect_s = port, baud, reconnect_s
        self.header_timeout_s = header_timeout_s
        # unbounded in C (a put or a get costs a fraction of queue.Queue's); bounded here
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.queue_size = queue_size
        self.parser = Parser(merge=True)
        self.counters: dict[str, float] = {
            "reconnects": 0,
            "queue_drops": 0,
            "duplicates": 0,
            "reader_wakeups": 0,
            "bytes": 0,
            "beats": 0,
            "rates": 0,
        }
        self._header: Header | None = None
        self._header_seen = threading.Event()
        self.connected = threading.Event()  # set when the port is open (tests wait on it)
        self._stop = threading.Event()
        self._next_abs: int | None = None  # unwrapped index expected next
        self._shift = 0  # added to device indices after a device restart
        self._last_data_t = 0.0
        self._rebase = False
        self._error: str | None = None
        self._started = time.monotonic()
        self._batch: list[Packet | BeatPacket | RatePacket] = []  # one read's packets
        self._end: Packet | None = None
        self.thread = threading.Thread(target=self._read, name="edgesleep-serial", daemon=True)
        if read:
            self.thread.start()

    @classmethod
    def detached(cls) -> SerialSource:
        """A source with no port whose frames are handed to :meth:`receive` directly and
        whose packets are then in ``queue`` (for tests and benchmarks of the frame
        handling: no pseudo-terminal, no reader thread, pyserial not needed)."""
        return cls("(detached)", read=False)

    def info(self) -> StreamInfo:
        if not self._header_seen.wait(self.header_timeout_s):
            self.close()
            refused = self.parser.last_error
            raise InputError(
                f"{self.port}: no valid edgesleep header frame in {self.header_timeout_s:.0f} s"
                + (f" (the last was refused: {refused})" if refused else "")
                + f"; is the device sending protocol v1 at {self.baud} baud (see docs/protocol.md)?"
            )
        if self._error:
            raise InputError(self._error)
        assert self._header is not None
        h = self._header
        full_scale = 32767 * h.uv_per_lsb if h.sample_format == "int16" else None
        return StreamInfo(h.sfreq, h.channels, full_scale, h.device_id, stream_id=h.stream_id,
                          events=("beats", "heart-rate"))  # fmt: skip

    def packets(self) -> Iterator[Packet | BeatPacket | RatePacket]:
        while True:
            item = self.queue.get()
            if item is _STOP:
                if self._error:
                    raise InputError(self._error)
                return
            yield item

    def close(self) -> None:
        self._stop.set()
        if self.thread.is_alive():
            self.thread.join(timeout=5)

    @property
    def wakeups_per_s(self) -> float:
        return self.counters["reader_wakeups"] / max(time.monotonic() - self._started, 1e-9)

    @property
    def stats(self) -> dict[str, float]:
        """The reader's counters, the parser's, and the reader's wake-ups per second."""
        wakeups = {"reader_wakeups_per_s": round(self.wakeups_per_s, 1)}
        return {**self.counters, **self.parser.stats, **wakeups}

    def _open(self) -> Any:
        while not self._stop.is_set():
            try:
                port = self._serial.Serial(None, self.baud, timeout=0.25)
                port.port = self.port
                # pyserial empties the input buffer when it opens a port: keep what the
                # operating system already holds (the first header and samples)
                port._reset_input_buffer = port.reset_input_buffer = lambda: None
                port.open()
                self.connected.set()
                return port
            except (self._serial.SerialException, OSError) as err:
                log.debug("%s: cannot open yet (%s)", self.port, err)
                self._stop.wait(self.reconnect_s)
        return None

    def _read(self) -> None:
        port = self._open()
        try:
            while port is not None and not self._stop.is_set():
                try:
                    chunk = port.read(max(1, port.in_waiting))
                except (self._serial.SerialException, OSError) as err:
                    log.warning("%s: %s; reconnecting", self.port, err)
                    port.close()
                    self.counters["reconnects"] += 1
                    self.parser.buffer = b""
                    port = self._open()
                    continue
                self.counters["reader_wakeups"] += 1
                self.counters["bytes"] += len(chunk)
                if not self.receive(self.parser.feed(chunk)):
                    return
        except Exception as err:  # noqa: BLE001 (a bug here must end the stream, loudly)
            log.exception("%s: the reader stopped", self.port)
            self._error = f"{self.port}: the reader stopped ({type(err).__name__}: {err})"
            self._header_seen.set()
        finally:
            if port is not None:
                port.close()
            self.queue.put(_STOP)

    def receive(self, frames: list[Header | Data | Beats | Rates | End]) -> bool:
        """The frames of one read, into the queue as one batch: each run of contiguous
        samples one packet (placed and scaled once, whatever its number of frames), events
        as they came, in order; False at the end of the stream (the frames after the end
        frame are not looked at)."""
        going = True
        run: list[Data] = []  # data frames contiguous on the wire
        for frame in frames:
            if type(frame) is Data:
                if run and frame.first_index != _after(run[-1]):
                    self._data(run)
                    run = []
                run.append(frame)
                continue
            if frame is self._header:  # the parser's own object: a repeat, nothing to do
                continue  # (it keeps a run going: a device repeats it every 5 s)
            if run and not self._same_header(frame):
                self._data(run)
                run = []
            if not self._handle(frame):
                going = False
                break
        if run:
            self._data(run)
        batch, self._batch = self._batch, []
        queue, room = self.queue, self.queue_size - self.queue.qsize()
        for item in batch:  # the reader is the only producer: the room cannot shrink
            if room > 0:
                queue.put(item)
                room -= 1
            else:
                self.counters["queue_drops"] += 1
        if self._end is not None:  # never dropped: it ends the stream
            self.queue.put(self._end)
            self._end = None
        return going

    def _same_header(self, frame: Header | Data | Beats | Rates | End) -> bool:
        return type(frame) is Header and frame == self._header

    def _data(self, run: list[Data]) -> None:
        """Data frames contiguous on the wire -> one packet of µV; frames the stream has
        had already (the device resent them) are dropped and counted."""
        assert self._header is not None
        now = time.monotonic()
        if self._next_abs is None or self._rebase:
            self._start_or_rebase(run[0].first_index, now)
        assert self._next_abs is not None
        start = self._unwrap(run[0].first_index)
        while run and start + run[0].samples.shape[0] <= self._next_abs:
            self.counters["duplicates"] += 1
            start += run.pop(0).samples.shape[0]
        if not run:
            return
        raw = run[0].samples if len(run) == 1 else np.concatenate([f.samples for f in run])
        uv = raw.astype(np.float64)
        uv *= self._header.uv_per_lsb
        self._next_abs, self._last_data_t = start + raw.shape[0], now
        self._batch.append(Packet(start, uv))

    def _handle(self, frame: Header | Data | Beats | Rates | End) -> bool:
        """Turn a frame into items of this read's batch; False at the end of the stream."""
        if isinstance(frame, Header):
            old = self._header
            if old is not None and (old.sfreq, old.channels) != (frame.sfreq, frame.channels):
                self._error = (
                    f"{self.port}: the device changed its rate or channels mid-stream "
                    f"({old.sfreq} Hz {list(old.channels)} -> {frame.sfreq} Hz "
                    f"{list(frame.channels)}); restart the stream"
                )
                self._header_seen.set()
                return False
            if old is not None and old.stream_id != frame.stream_id:
                log.warning(
                    "%s: the device restarted (new stream id); time is estimated", self.port
                )
                self._rebase = True
            self._header = frame
            self._header_seen.set()
            return True
        if isinstance(frame, End):  # a last empty packet: the stager fills a trailing gap
            if self._next_abs is not None and self._header is not None:
                start = self._unwrap(frame.next_index)
                empty = np.zeros((0, len(self._header.channels)))
                self._end = Packet(max(start, self._next_abs), empty)
            return False
        if isinstance(frame, Beats):
            self.counters["beats"] += frame.indices.shape[0]
            ticks = self._event_ticks(frame.indices)
            if ticks is not None:
                self._put(BeatPacket(ticks))
            return True
        if isinstance(frame, Rates):
            self.counters["rates"] += frame.ticks.shape[0]
            ticks = self._event_ticks(frame.ticks)
            if ticks is not None:
                self._put(RatePacket(ticks, frame.bpm))
            return True
        self._data([frame])
        return True

    def _unwrap(self, index: int) -> int:
        """A u32 device index as the unwrapped index nearest to the one expected next."""
        assert self._next_abs is not None
        delta = (index + self._shift - self._next_abs) % 2**32
        return self._next_abs + (delta - 2**32 if delta >= 2**31 else delta)

    def _unwrap_all(self, ticks: np.ndarray) -> np.ndarray:
        """:meth:`_unwrap` of each of an array of ticks."""
        assert self._next_abs is not None
        shifted = (ticks.astype(np.int64) + self._shift) % 2**32
        delta = (shifted - self._next_abs) % 2**32
        return self._next_abs + np.where(delta >= 2**31, delta - 2**32, delta)

    def _start_or_rebase(self, first: int, now: float) -> None:
        """The time base at a frame whose first index is ``first``: the device's own at the
        first frame; after a device restart, the new indices start after the old ones plus
        the wall-clock time lost."""
        if self._next_abs is None:  # time is the device's: sample index / rate
            self._next_abs, self._rebase = first, False  # (a restart before any: no matter)
        elif self._rebase:
            assert self._header is not None
            lost = int(round((now - self._last_data_t) * self._header.sfreq))
            self._shift = (self._next_abs + lost - first) % 2**32
            self._rebase = False

    def _event_ticks(self, ticks: np.ndarray) -> np.ndarray | None:
        """Unwrapped ticks of a beats or rates frame. A device with channels places them
        on its data (None before its first data frame); an events-only device's first
        event starts its time base (after a restart, its first event the new one)."""
        assert self._header is not None
        if ticks.shape[0] == 0:
            return None
        if self._header.channels:
            return None if self._next_abs is None else self._unwrap_all(ticks)
        now = time.monotonic()
        self._start_or_rebase(int(ticks[0]), now)
        assert self._next_abs is not None
        unwrapped = self._unwrap_all(ticks)
        self._next_abs = max(self._next_abs, int(unwrapped.max()))
        self._last_data_t = now
        return unwrapped

    def _put(self, item: Packet | BeatPacket | RatePacket) -> None:
        self._batch.append(item)


def _after(frame: Data) -> int:
    """The wire index of the sample after a data frame's last."""
    return (frame.first_index + frame.samples.shape[0]) % 2**32
