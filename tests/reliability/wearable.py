"""Helpers of the reliability tests: a wearable's bytes through a real pty into the host."""

from __future__ import annotations

import csv
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from edgesleep import protocol
from edgesleep.emulate import PtyPort
from edgesleep.sources import SerialSource

WATCH = protocol.Header(1000.0, (), "int16", 1.0, "watch", 7)  # events only, ms ticks


def rate_frames(ticks: np.ndarray, bpm: np.ndarray, per_frame: int = 20) -> bytes:
    """Rates frames of ``per_frame`` samples each, a header before every 5th."""
    out = b""
    for n, i in enumerate(range(0, ticks.size, per_frame)):
        if n % 5 == 0:
            out += protocol.encode_header(WATCH)
        out += protocol.encode_rates(ticks[i : i + per_frame], bpm[i : i + per_frame])
    return out


@contextmanager
def device(
    tmp_path: Path, data: bytes, name: str = "wearable", bytes_per_s: float | None = None
) -> Iterator[SerialSource]:
    """A SerialSource reading ``data`` written to a pty (on a thread: a pty holds ~4 KB),
    at ``bytes_per_s`` (None: as fast as the pty takes it)."""
    port = PtyPort(tmp_path / name)
    source = SerialSource(str(port.link), reconnect_s=0.05, header_timeout_s=10)
    assert source.connected.wait(10)

    def write() -> None:
        if bytes_per_s is None:
            return port.write(data)
        start, step = time.monotonic(), 4096
        for i in range(0, len(data), step):
            time.sleep(max(0.0, start + i / bytes_per_s - time.monotonic()))
            port.write(data[i : i + step])

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        yield source
    finally:
        writer.join(timeout=30)
        source.close()
        port.close()


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))
