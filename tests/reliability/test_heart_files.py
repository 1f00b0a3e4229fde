"""Heart CSVs that cannot invent a night nor exhaust memory (issue 29, items 2-3): an outlier
time or milliseconds are refused with the line and the fix, and a batch goes on past them;
reading is bounded in rows, line length and memory (a file, a FIFO); a BOM is read."""

from __future__ import annotations

import os
import re
import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgesleep.cli import app
from edgesleep.errors import InputError
from edgesleep.io import heart
from edgesleep.io.heart import Series, read_series, write_series


def _watch(path: Path, n: int = 720, scale: float = 1.0) -> Path:
    time_s = np.arange(n) * 5.0
    write_series(path, Series("heart-rate", time_s * scale, 60 + np.sin(time_s / 600)))
    return path


@pytest.mark.parametrize("outlier", ["1e7", "1e12", "1e300"])
def test_one_outlier_time_is_refused_by_line_and_the_batch_goes_on(
    tmp_path: Path, outlier: str
) -> None:
    bad = _watch(tmp_path / "bad.csv")
    lines = bad.read_text().splitlines()
    lines.insert(300, f"{outlier},61")
    bad.write_text("\n".join(lines) + "\n")
    said = re.escape(f"line 301: time {float(outlier):g} s")
    with pytest.raises(InputError, match=f"{said} .* at most 24 h"):
        read_series(bad)
    good = _watch(tmp_path / "good.csv")
    result = CliRunner().invoke(app, ["stage", str(bad), str(good), "--out",
                                      str(tmp_path / "out")])  # fmt: skip
    assert result.exit_code == 1 and "FAILED" in result.output
    assert (tmp_path / "out" / "good.json").is_file()  # the file after it is staged
    assert not (tmp_path / "out" / "bad.csv").exists()


def test_times_in_milliseconds_are_refused_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="look like milliseconds: divide them by 1000"):
        read_series(_watch(tmp_path / "ms.csv", scale=1000.0))
    beats = np.cumsum(np.full(2000, 0.8))
    write_series(tmp_path / "b.csv", Series("beats", beats * 1000, None))
    with pytest.raises(InputError, match="beats a median of 800 s apart.*milliseconds"):
        read_series(tmp_path / "b.csv")
    write_series(tmp_path / "ok.csv", Series("beats", beats, None))
    assert read_series(tmp_path / "ok.csv").time_s.size == 2000


def test_reading_takes_memory_in_proportion_to_the_samples(tmp_path: Path) -> None:
    n = 150_000  # ~2.5 MB: two days of 1-s history before the night
    time_s = np.arange(n, dtype=np.float64) - n + 3600.0
    path = tmp_path / "big.csv"
    write_series(path, Series("heart-rate", time_s, np.full(n, 61.5)))
    size = path.stat().st_size
    tracemalloc.start()
    series = read_series(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert series.time_s.size == n
    assert peak < 3.5 * size, (peak, size)  # 8 bytes per value and the checks; was ~25x


def test_a_line_without_end_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "line.csv"
    with path.open("w") as fh:
        fh.write("time_s,bpm\n0,60\n")
        fh.write("1" * 50_000_000)
    tracemalloc.start()
    with pytest.raises(InputError, match="line 3: longer than 4096 characters"):
        read_series(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 5_000_000


def test_an_endless_fifo_stops_at_the_row_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(heart, "MAX_ROWS", 20_000)
    fifo = tmp_path / "feed"
    os.mkfifo(fifo)
    stop = threading.Event()

    def feed() -> None:
        fd = os.open(fifo, os.O_WRONLY)  # blocks until the reader opens it
        try:
            os.write(fd, b"time_s,bpm\n")
            t = -1e6
            while not stop.is_set():
                os.write(fd, "".join(f"{t + i},60\n" for i in range(1000)).encode())
                t += 1000
        except BrokenPipeError:
            pass  # the reader stopped reading: what is tested
        finally:
            os.close(fd)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    with pytest.raises(InputError, match="more than 20,000 samples"):
        read_series(fifo)
    stop.set()
    writer.join(timeout=10)


def test_a_byte_order_mark_before_the_header_is_read(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbftime_s,bpm\r\n0,60\r\n5,61\r\n")
    series = read_series(path)
    assert series.source == "heart-rate" and series.values.tolist() == [60, 61]
