"""A fresh streaming process for ``edgesleep bench``: peak RSS and wake-ups per second.

``python -m edgesleep.bench.process FOLDER PRECISION SFREQ REALTIME_S SIGNAL`` streams the
signal (raw float64 µV at SFREQ, written by the bench: a synthetic night; read 1 s at a
time, never held whole) in 1-s packets as fast as it can through the stager (the step
graph, as a device runs it), then ``REALTIME_S`` seconds at real time (one packet per
second, sleeping in between), and prints JSON: peak RSS (KB), voluntary context switches
per second of all its threads during the real-time part, and whether scipy or torch were
imported (they must not be). It makes no random numbers (``numpy.random`` would load
OpenSSL through :mod:`hashlib`, 3.5 MB a device does not pay).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edgesleep.ort import ExportedModel
from edgesleep.stager import Stager


def peak_rss_kb() -> int:
    """VmHWM of this process (not ru_maxrss, which Linux carries over from a big parent
    across fork + exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def wakeups() -> int:
    """Voluntary context switches of all threads: each is a sleep that ended in a wake-up."""
    total = 0
    for status in Path("/proc/self/task").glob("*/status"):
        for line in status.read_text().splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                total += int(line.split()[-1])
    return total


def packets(path: str, size: int) -> Iterator[np.ndarray]:
    """``size`` float64 samples at a time from a raw file, as a device reads its feed (the
    night is never in memory), over and over."""
    with open(path, "rb") as f:
        while True:
            data = f.read(8 * size)
            if len(data) < 8 * size:
                f.seek(0)
                continue
            yield np.frombuffer(data, np.float64)


def main() -> None:
    folder, precision = sys.argv[1], sys.argv[2]
    sfreq, realtime_s, path = float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
    model = ExportedModel(folder, precision, threads=1)
    stager = Stager(model, sfreq, delay=0)
    packet = int(round(sfreq))
    feed = packets(path, packet)
    for _ in range(int(Path(path).stat().st_size // (8 * packet))):
        stager.push(next(feed))
    switches0, t0 = wakeups(), time.monotonic()
    n = 0
    while time.monotonic() - t0 < realtime_s:
        stager.push(next(feed))
        n += 1
        time.sleep(max(0.0, t0 + n - time.monotonic()))
    rate = (wakeups() - switches0) / (time.monotonic() - t0)
    print(json.dumps({
        "maxrss_kb": peak_rss_kb(),
        "wakeups_per_s": round(rate, 2),
        "scipy_imported": "scipy" in sys.modules,
        "torch_imported": "torch" in sys.modules,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
