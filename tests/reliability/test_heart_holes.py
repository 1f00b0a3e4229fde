"""No invented heart nights (issue 29, item 1): a heart series' epochs follow the device's
ticks from its first event; a long hole ends a segment, a short one is flagged, and no
epoch without data behind it gets a stage, streamed and offline alike."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner
from wearable import device, rate_frames, rows

from edgesleep import protocol
from edgesleep.api import score_heart_rate
from edgesleep.cli import app
from edgesleep.dsp.beats import RATES_HOLD_S
from edgesleep.io.heart import Series, write_series
from edgesleep.ort import ExportedModel
from edgesleep.shipped import default_model
from edgesleep.stager import MAX_FILL_S, SeriesStager
from edgesleep.stream import StreamOptions, stream_to_csv


def _watch(start_s: float, stop_s: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A watch's heart rate every 5 s, 55-75 beats/min."""
    time_s = np.arange(start_s, stop_s, 5.0)
    bpm = 65 + 10 * np.sin(time_s / 900) + np.random.default_rng(seed).normal(0, 1, time_s.size)
    return time_s, bpm


def _stream(tmp_path: Path, time_s: np.ndarray, bpm: np.ndarray, out: Path) -> list[dict]:
    ticks = np.round(time_s * 1000).astype(np.int64)
    data = rate_frames(ticks, bpm) + protocol.encode_end(int(ticks[-1]) + 1)
    with device(tmp_path, data) as source:
        stream_to_csv(default_model(4), source, out, StreamOptions(delay=0, source="heart-rate"))
    return rows(out)


def test_a_device_that_ran_for_a_day_starts_at_its_own_epoch(tmp_path: Path) -> None:
    day_s = 86_400.0
    time_s, bpm = _watch(day_s + 7.0, day_s + 1207.0)  # the host connects a day in
    got = _stream(tmp_path, time_s, bpm, tmp_path / "night.csv")
    assert float(got[0]["onset"]) == day_s  # epoch 2880: none of the 2880 before it
    assert len(got) == 40  # 20 min: the whole epochs by the last sample
    assert all(r["stage"] != "-1" for r in got[1:])


@pytest.mark.parametrize("hole_s", [3600.0, 120.0])
def test_a_hole_off_the_wrist_is_never_staged(tmp_path: Path, hole_s: float) -> None:
    before, after = _watch(0.0, 1800.0), _watch(1800.0 + hole_s, 3600.0 + hole_s, 1)
    time_s, bpm = np.concatenate([before[0], after[0]]), np.concatenate([before[1], after[1]])
    streamed = _stream(tmp_path, time_s, bpm, tmp_path / "night.csv")
    # one row per epoch; none more than RATES_HOLD_S after the last sample is staged
    hole = [r for r in streamed if 1800 <= float(r["onset"]) < 1800 + hole_s]
    assert len(hole) == hole_s // 30
    late = [r for r in hole if float(r["onset"]) >= 1795 + RATES_HOLD_S]
    assert all(r["stage"] == "-1" and "gap" in r["flags"] for r in late)
    assert all("gap" in r["flags"] for r in hole if float(r["onset"]) >= 1830)
    first_after = next(r for r in streamed if float(r["onset"]) >= 1800 + hole_s)
    assert ("segment" in first_after["flags"]) == (hole_s > MAX_FILL_S)
    assert sum(r["stage"] != "-1" for r in streamed) >= 115  # the hour of data is staged
    # the same hole in a heart-rate CSV, offline (`edgesleep stage`): the same rows
    write_series(tmp_path / "hr.csv", Series("heart-rate", time_s, bpm))
    args = ["stage", str(tmp_path / "hr.csv"), "--out", str(tmp_path / "staged"), "--delay", "0"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    offline = rows(tmp_path / "staged" / "hr.csv")
    assert [(r["onset"], r["stage"], r["flags"]) for r in offline] == [
        (r["onset"], r["stage"], r["flags"]) for r in streamed
    ]


@pytest.mark.parametrize("which", ["shipped", "batched"])
def test_streaming_equals_offline_across_holes_in_any_chunking(
    which: str, tiny_export: Callable[[str], dict]
) -> None:
    # the shipped model is its step graph alone; a tiny export also scores in batches
    folder = tiny_export("student-beats")["root"] / "out" if which == "batched" else None
    model = default_model(4) if folder is None else ExportedModel(folder, "fp32")
    parts = [_watch(0, 900), _watch(1000, 1500, 1), _watch(5000, 6000, 2), _watch(6010, 7000, 3)]
    time_s = np.concatenate([p[0] for p in parts])
    bpm = np.concatenate([p[1] for p in parts])
    bpm[7] = 400.0  # implausible: dropped by both
    offline = score_heart_rate(time_s, bpm, model, delay=0).results
    offline = [r for r in offline if np.isfinite(r.probabilities).all()]  # no filler rows
    for chunk in (1, 13, 400):
        stager, results = SeriesStager(model, "heart-rate", delay=0), []
        for i in range(0, time_s.size, chunk):
            part = slice(i, i + chunk)
            results += stager.push_series(time_s[part], bpm[part], float(time_s[part][-1]))
        results += stager.end(float(time_s[-1]))
        assert [(r.index, r.stage, r.flags) for r in results] == [
            (r.index, r.stage, r.flags) for r in offline
        ]
        np.testing.assert_allclose(
            np.stack([r.probabilities for r in results]),
            np.stack([r.probabilities for r in offline]),
            atol=1e-5,
        )
    flagged = {r.index: r.flags for r in offline}
    assert "segment" in flagged[5000 // 30] and 100 not in flagged  # 1500-5000 s: a hole
    # 900-1000 s: a short hole, flagged from RATES_HOLD_S after the last sample (895 s)
    assert "gap" not in flagged[30] and "gap" in flagged[31] and "gap" in flagged[32]
    assert next(r.stage for r in offline if r.index == 32) == -1  # no data behind it
    assert "segment" not in flagged[6010 // 30]  # 10 s: no hole at all


def test_an_end_frame_long_after_the_last_event_invents_nothing() -> None:
    model = default_model(4)
    time_s, bpm = _watch(0, 600)
    stager = SeriesStager(model, "heart-rate", delay=0)
    results = stager.push_series(time_s, bpm, float(time_s[-1])) + stager.end(600 + 3600.0)
    assert max(r.index for r in results) * 30 < 600 + MAX_FILL_S  # not an hour of epochs
    late = [r for r in results if r.onset_s >= 595 + RATES_HOLD_S]  # nothing behind them
    assert late and all(r.stage == -1 and "gap" in r.flags for r in late)
