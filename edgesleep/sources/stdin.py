"""``stdin:?sfreq=256&channels=ECG``: CSV lines on standard input, one sample per line."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

import numpy as np

from edgesleep.sources.base import PACKET_S, Packet, Param, StreamInfo

DOC = "CSV lines on standard input (one sample per line, one column per channel, µV)"
TARGET = None  # nothing before the "?"
PARAMS = {
    "sfreq": Param(float, None, "the rate of the lines, Hz", 1.0, 10_000.0, required=True),
    "channels": Param(
        str, "", "labels of the columns, comma-separated, when the first line does not name them"
    ),  # fmt: skip
}


def open_spec(target: str, params: dict[str, Any], channel: str) -> CsvSource:
    labels = [c.strip() for c in params["channels"].split(",") if c.strip()] or None
    return CsvSource(sys.stdin, params["sfreq"], labels)


class CsvSource:
    """CSV lines (one sample per line, one column per channel, µV) from a text stream.

    An optional first line of labels names the channels; ``#`` lines are comments. Every
    other line is one sample: a field that is empty or not a number becomes NaN, as does a
    blank line or a line with the wrong column count (each counted in ``bad_lines``; the
    stager repairs and flags them), so the time base never slips. Time: sample ``n`` is
    ``n / sfreq`` s after the first sample line.
    """

    def __init__(
        self,
        stream: TextIO,
        sfreq: float,
        channels: Sequence[str] | None = None,
        packet_s: float = PACKET_S,
    ) -> None:
        self.stream = stream
        self.sfreq = sfreq
        self.packet = max(1, int(round(packet_s * sfreq)))
        self.stats: dict[str, float] = {"packets": 0, "bad_lines": 0}
        self._first = self._next_line()
        labels = None
        if self._first is not None:
            fields = [f.strip() for f in self._first.split(",")]
            if any(f and _number(f) is None for f in fields):
                labels, self._first = tuple(fields), self._next_line()
        if labels is None:
            n = len(self._first.split(",")) if self._first is not None else 1
            labels = tuple(channels) if channels else tuple(f"ch{i}" for i in range(n))
        self._info = StreamInfo(sfreq, labels, None, "stdin")

    def _next_line(self) -> str | None:
        for line in self.stream:
            if not line.lstrip().startswith("#"):
                return line
        return None

    def info(self) -> StreamInfo:
        return self._info

    def packets(self) -> Iterator[Packet]:
        n_channels = len(self._info.channels)
        rows: list[list[float]] = []
        start = 0
        line = self._first
        while line is not None:
            values = [_number(f) for f in line.split(",")]
            if len(values) != n_channels or None in values:
                self.stats["bad_lines"] += 1
                values = values if len(values) == n_channels else [None] * n_channels
            rows.append([math.nan if v is None else v for v in values])
            if len(rows) == self.packet:
                self.stats["packets"] += 1
                yield Packet(start, np.array(rows))
                start += len(rows)
                rows = []
            line = self._next_line()
        if rows:
            self.stats["packets"] += 1
            yield Packet(start, np.array(rows))

    def close(self) -> None:
        pass


def _number(field: str) -> float | None:
    try:
        return float(field)
    except ValueError:
        return None
