"""Sinks (issue 32, slice 1): several at once; a slow, blocked or failing sink never delays
scoring and never costs the night file a row. The shipped heart model on SYNTHETIC rates."""

from __future__ import annotations

import csv
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgesleep.shipped import default_model
from edgesleep.sinks import Detached, Fanout, Inline
from edgesleep.sources import Packet, RatePacket, StreamInfo
from edgesleep.stager import EpochResult
from edgesleep.stream import StreamOptions, stream_to_csv


def _result(i: int) -> EpochResult:
    return EpochResult(i, 30.0 * i, 0, 0, np.ones(4) / 4)


class Recorder:
    name = "recorder"

    def __init__(self, fail_at: int | None = None, gate: threading.Event | None = None) -> None:
        self.meta: dict[str, Any] = {}
        self.got: list[int] = []
        self.closed = False
        self.fail_at, self.gate = fail_at, gate

    def start(self, meta: dict[str, Any]) -> None:
        self.meta = meta

    def epoch(self, result: EpochResult) -> None:
        if self.gate is not None:
            self.gate.wait(10)
        if result.index == self.fail_at:
            raise OSError("the viewer went away")
        self.got.append(result.index)

    def close(self) -> None:
        self.closed = True


def test_a_blocked_sink_drops_what_it_cannot_take_and_never_blocks() -> None:
    gate = threading.Event()
    sink = Recorder(gate=gate)
    detached = Detached(sink, size=3)
    for i in range(20):
        detached.epoch(_result(i))  # returns at once: the sink is stuck on its first
    assert 16 <= detached.stats["drops"] <= 17
    gate.set()
    detached.close()
    assert sink.closed and sink.got == sorted(sink.got) and len(sink.got) in (3, 4)
    assert sink.got[0] == 0


def test_a_failing_sink_is_dropped_and_closed() -> None:
    for wrap in (Detached, Inline):  # on its thread, or in the loop (a sink that says inline)
        sink = Recorder(fail_at=2)
        wrapped = wrap(sink)
        for i in range(6):
            wrapped.epoch(_result(i))
        wrapped.close()
        assert sink.got == [0, 1] and sink.closed and wrapped.stats["failed"] == 1


def test_a_sink_that_says_inline_runs_in_the_loop() -> None:
    class Quick(Recorder):
        inline = True

    fan = Fanout(Recorder(), [Quick(), Recorder()])
    assert [type(s) for s in fan.others] == [Inline, Detached]
    fan.epoch(_result(0))
    assert fan.others[0].sink.got == [0]  # type: ignore[attr-defined]  (at once, no thread)
    fan.close()


class WatchRates:
    """One hour of watch heart rate (SYNTHETIC), 50 samples per packet, then the end."""

    stats: dict[str, float] = {}

    def info(self) -> StreamInfo:
        return StreamInfo(1000.0, (), device_id="watch", events=("heart-rate",))

    def packets(self) -> Iterator[RatePacket | Packet]:
        t = np.arange(0.0, 3600.0, 5.0)
        for i in range(0, t.size, 50):
            ticks = (t[i : i + 50] * 1000).astype(np.int64)
            yield RatePacket(ticks, 60 + 5 * np.sin(ticks / 9e5))
        yield Packet(3_600_000, np.zeros((0, 0)))  # the end

    def close(self) -> None:
        pass


def test_the_night_file_keeps_every_row_whatever_the_other_sinks_do(tmp_path: Path) -> None:
    good, bad = Recorder(), Recorder(fail_at=5)
    bad.name = "viewer"
    out = tmp_path / "night.csv"
    opts = StreamOptions(delay=0, source="heart-rate")
    report = stream_to_csv(default_model(4), WatchRates(), out, opts, sinks=[good, bad])
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == report.epochs == 120
    assert good.got == list(range(120)) and good.meta["device_id"] == "watch"
    assert bad.got == [0, 1, 2, 3, 4] and bad.closed
    assert report.sinks == {"recorder": {"drops": 0, "failed": 0},
                            "viewer": {"drops": 0, "failed": 1}}  # fmt: skip
    assert ("sink viewer", "drops 0, failed 1") in report.rows()
