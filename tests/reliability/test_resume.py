"""Restarts continue the night (issue 19, item 7): after SIGKILL, `stream --resume` goes on
in the same file on the device's time base with no duplicated and no missing rows; another
device stream, or a long pause, starts a new night and moves the old file aside."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from edgesleep.errors import UsageError
from edgesleep.night_file import NightSink, sidecar
from edgesleep.stager import EpochResult


def _rows(path: Path) -> list[list[str]]:
    return [line.split(",") for line in path.read_text().splitlines()[1:]]


def _wait_rows(path: Path, n: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.is_file() and len(path.read_text().splitlines()) > n:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path}: fewer than {n} rows after {timeout_s} s")


def test_sigkill_then_resume_continues_the_night(
    tiny_export: Callable[[str], dict], tiny_dataset: Path, tmp_path: Path
) -> None:
    exported = tiny_export("student")  # one model: the subject is the process, not the model
    night = sorted((tiny_dataset / "psg").glob("*.edf"))[0]
    link, out = tmp_path / "wearable", tmp_path / "night.csv"
    run = {"cwd": tmp_path, "stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
    device = subprocess.Popen(
        [sys.executable, "-m", "edgesleep.cli", "emulate", "--from", str(night), "--link",
         str(link), "--speed", "60", "--channel", exported["channel"], "--linger", "3"], **run,
    )  # fmt: skip
    host = [sys.executable, "-m", "edgesleep.cli", "stream", "--model",
            str(exported["root"] / "out"), f"serial:{link}", "--out", str(out), "--resume",
            "--delay", "0", "--quiet"]  # fmt: skip
    try:
        for _ in range(100):
            if link.exists():
                break
            time.sleep(0.1)
        first = subprocess.Popen(host, **run)
        _wait_rows(out, 5)
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
        second = subprocess.Popen(host, **run)
        printed, _ = second.communicate(timeout=120)
        assert second.returncode == 0, printed
    finally:
        device.kill()
        device.communicate(timeout=30)
    rows = _rows(out)
    indices = [int(round(float(r[0]) / 30)) for r in rows]
    assert indices == list(range(52)), indices  # one row per epoch of the night, in order
    lost = [r for r in rows if r[4] == "nan"]  # epochs nobody staged: gap rows
    assert all(r[2] == "-1" and "gap" in r[-2] for r in lost)
    assert json.loads(sidecar(out).read_text())["stream_id"] is not None


def _result(i: int) -> EpochResult:
    return EpochResult(i, 30.0 * i, 2, 2, np.array([0.1, 0.1, 0.6, 0.1, 0.1]))


META = {"device_id": "dev", "stream_id": 7, "channel": "EEG", "sfreq": 128.0, "export_id": "x"}


def _night(out: Path, meta: dict, epochs: range, resume: bool = True) -> None:
    sink = NightSink(out, 5, resume=resume, overwrite=False)
    sink.start(meta)
    for i in epochs:
        sink.write(_result(i))
    sink.close()


def test_a_rebooted_device_or_a_long_pause_starts_a_new_night(tmp_path: Path) -> None:
    out = tmp_path / "night.csv"
    _night(out, META, range(10), resume=False)
    _night(out, META, range(8, 14))  # the same stream, 0 min later: continued, no duplicates
    assert [int(r[0]) // 30 for r in _rows(out)] == list(range(14))
    _night(out, META, range(20, 23))  # 3 min lost: gap rows, then the night goes on
    rows = _rows(out)
    assert len(rows) == 23 and [r[2] for r in rows[14:20]] == ["-1"] * 6
    _night(out, {**META, "stream_id": 8}, range(0, 5))  # the device rebooted: a new night
    archived = sorted(tmp_path.glob("night-*.csv"))
    assert len(archived) == 1 and len(_rows(archived[0])) == 23
    assert sidecar(archived[0]).is_file() and len(_rows(out)) == 5
    _night(out, {**META, "stream_id": 8}, range(5 + 240, 250))  # 2 h later: a new night
    assert len(sorted(tmp_path.glob("night-*.csv"))) == 2 and len(_rows(out)) == 5


def test_stdin_cannot_resume(tmp_path: Path) -> None:
    out = tmp_path / "night.csv"
    _night(out, META, range(3), resume=False)
    sink = NightSink(out, 5, resume=True, overwrite=False)
    with pytest.raises(UsageError, match="stdin carries no clock"):
        sink.start({**META, "device_id": "stdin"})
