"""A full disk loses no row and cuts none (issue 19, item 9): each row is written whole or
not at all, rows wait in a bounded buffer while writing fails, and the failure that remains
at the end is one clear error."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

from edgesleep.io import writers

WRITE = os.write  # the real one (the tests replace os.write)


class FullDisk:
    """``os.write`` that writes half a row and then refuses while ``full``."""

    def __init__(self) -> None:
        self.full = False
        self.calls = 0

    def __call__(self, fd: int, data: bytes) -> int:
        if not self.full:
            return WRITE(fd, data)
        self.calls += 1
        if self.calls == 1:
            return WRITE(fd, data[: len(data) // 2])  # a short write, then ENOSPC
        raise OSError(errno.ENOSPC, "No space left on device")


def test_rows_wait_while_the_disk_is_full_and_none_is_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = FullDisk()
    monkeypatch.setattr(writers.os, "write", disk)
    probs = np.full(3, 1 / 3)
    path = tmp_path / "night.csv"
    with writers.CsvSink(path, 3, fsync_every=1) as sink:
        for epoch in range(5):
            sink.write(epoch, 1, probs, 1)
        disk.full = True
        for epoch in range(5, 12):
            sink.write(epoch, 1, probs, 1)  # scoring goes on
            assert path.read_text().count("\n") == 6  # the 5 rows and the header, whole
        assert sink.error is not None and len(sink._pending) == 7
        disk.full = False
        sink.write(12, 1, probs, 1)  # the next row writes everything that waited
        assert sink.error is None
    onsets = [line.split(",")[0] for line in path.read_text().splitlines()[1:]]
    assert onsets == [str(30 * e) for e in range(13)]


def test_rows_that_could_not_be_written_end_in_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = FullDisk()
    monkeypatch.setattr(writers.os, "write", disk)
    path = tmp_path / "night.csv"
    sink = writers.CsvSink(path, 3, max_pending=4)
    sink.write(0, 0, np.full(3, 1 / 3), 0)
    disk.full = True
    for epoch in range(1, 10):
        sink.write(epoch, 0, np.full(3, 1 / 3), 0)
    with pytest.raises(OSError, match="9 rows could not be written .No space left.*1 rows"):
        sink.close()
    assert [line.split(",")[0] for line in path.read_text().splitlines()[1:]] == ["0"]
