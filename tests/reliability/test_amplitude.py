"""Amplitude sanity without a full scale (issue 19, item 5): implausible samples are held
like NaN and flagged, so one spike never flips an epoch and an offset of 1e9 µV makes every
epoch unusable; a run of one value is "stuck"."""

from __future__ import annotations

import numpy as np

from edgesleep.ort import ExportedModel
from edgesleep.stager import PLAUSIBLE_UV, STUCK_S, Stager, score_signal
from edgesleep.synth.psg import generate_night


def _signal(n_epochs: int = 30) -> np.ndarray:
    stages = np.array(([0] * 4 + [2] * 6 + [4] * 4) * 5)[:n_epochs]
    return generate_night(8, 0, stages=stages).signals["EEG Fpz-Cz"].copy()


def test_one_spike_never_flips_an_epoch(exported: dict) -> None:
    model = ExportedModel(exported["root"] / "out", "fp32")
    clean = _signal()
    spiked = clean.copy()
    spiked[12 * 3000 + 1500] = 1e4  # 10 mV on an EEG channel
    a = score_signal(model, clean, 100.0, channel="EEG Fpz-Cz")
    b = score_signal(model, spiked, 100.0, channel="EEG Fpz-Cz")
    assert [r.stage for r in a] == [r.stage for r in b]
    assert "implausible" in b[12].flags and b[12].stage == b[12].model_stage
    np.testing.assert_allclose(b[12].probabilities, a[12].probabilities, atol=0.05)


def test_an_offset_of_1e9_uv_makes_every_epoch_unusable(exported: dict) -> None:
    model = ExportedModel(exported["root"] / "out", "fp32")
    results = score_signal(model, _signal() + 1e9, 100.0, channel="EEG Fpz-Cz")
    assert all(r.stage == -1 and "implausible" in r.flags for r in results)


def test_a_rail_is_stuck_in_any_chunking(exported: dict) -> None:
    model = ExportedModel(exported["root"] / "out", "fp32")
    signal = _signal()
    signal[10 * 3000 : 10 * 3000 + 2400] = 250.0  # 24 s stuck at a plausible value
    signal[20 * 3000 + 5 : 20 * 3000 + 150] = -80.0  # 1.45 s: not stuck
    for packet in (37, 100, 3000, 90_000):
        stager, results = Stager(model, 100.0, delay=0, channel="EEG Fpz-Cz"), []
        for start in range(0, signal.shape[0], packet):
            results += stager.push(signal[start : start + packet])
        results += stager.flush()
        stuck = {r.index for r in results if "stuck" in r.flags}
        assert stuck == {10}, packet
        assert results[10].stage == -1  # 80 % of the epoch
    assert STUCK_S * 100 < 2400 and 145 < STUCK_S * 100


def test_plausible_ranges_follow_the_sensor() -> None:
    assert PLAUSIBLE_UV["ecg"] > 5_000 > PLAUSIBLE_UV["eeg"]
