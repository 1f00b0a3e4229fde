"""The streaming R-peak detector on a real ECG and the beat-interval input."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from edgesleep.bench.rpeaks import load_record
from edgesleep.dsp import resample
from edgesleep.dsp.beats import (
    GRID_PER_EPOCH,
    N_BEAT_FRAMES,
    SAMPLES_PER_FRAME,
    BeatImages,
    RPeakDetector,
    beat_images,
    detect_rpeaks,
)
from edgesleep.io import slpdb
from edgesleep.metrics import match_beats
from edgesleep.synth.signals import render_ecg

pytestmark = pytest.mark.parity  # also run on (emulated) aarch64: bench/arm/run.sh


@pytest.fixture(scope="module")
def mitbih100(data_dir: Path) -> tuple[np.ndarray, float, np.ndarray]:
    """Record 100, lead MLII in µV, its rate, and the reference beat times in s."""
    ecg_uv, sfreq, beats = load_record(data_dir / "mitbih" / "mitbih100_mlii.npz")
    assert beats.size == 2273  # 2239 N + 33 A + 1 V; the one "+" dropped
    return ecg_uv, sfreq, beats


@pytest.mark.parametrize("rate", ["native", "100 Hz"])
def test_detector_on_mitbih_100(mitbih100: tuple[np.ndarray, float, np.ndarray], rate: str) -> None:
    ecg, sfreq, reference = mitbih100
    if rate == "100 Hz":
        ecg, sfreq = resample(ecg, sfreq), 100.0
    found = match_beats(detect_rpeaks(ecg, sfreq) / sfreq, reference, tolerance_s=0.05)
    assert found["sensitivity"] >= 0.99, found
    assert found["ppv"] >= 0.99, found


def test_detector_is_chunking_invariant(mitbih100: tuple[np.ndarray, float, np.ndarray]) -> None:
    ecg, sfreq, _ = mitbih100
    ecg = ecg[: int(300 * sfreq)]
    whole = detect_rpeaks(ecg, sfreq)
    rng = np.random.default_rng(3)
    detector, parts, start = RPeakDetector(sfreq), [], 0
    while start < ecg.size:
        size, horizon = int(rng.integers(1, 3000)), detector.horizon
        parts.append(detector.push(ecg[start : start + size]))
        assert (parts[-1] >= horizon).all()  # nothing before the horizon comes late
        start += size
    parts.append(detector.flush())
    assert np.array_equal(np.concatenate(parts), whole)


def test_detector_reports_each_peak_once_its_delay_has_passed() -> None:
    sfreq = 250.0
    beats_s = np.arange(1, 60, 0.8)
    ecg = render_ecg(beats_s, np.full(beats_s.size, "N"), int(61 * sfreq), sfreq, seed=0)
    detector = RPeakDetector(sfreq)
    for n in range(0, ecg.size, 25):
        for peak in detector.push(ecg[n : n + 25]):
            # after the first seconds (levels learnt), reported at most delay_s after it
            assert n < 5 * sfreq or (n + 25 - peak) / sfreq <= detector.delay_s + 0.1


def test_detector_on_rendered_slpdb_beats(data_dir: Path) -> None:
    """Real beat times (ectopics included) rendered at 100 Hz come back within 50 ms."""
    rec = slpdb.read_record(data_dir / "slpdb", "slp01a")
    times = rec.beat_times_s[rec.beat_times_s < 1800]
    ecg = render_ecg(times, rec.beat_labels[: times.size], 1800 * 100, 100.0, seed=1)
    found = match_beats(detect_rpeaks(ecg, 100.0) / 100.0, times[times > 3], 0.05)
    assert found["sensitivity"] >= 0.99 and found["ppv"] >= 0.98, found


def test_detector_refuses_low_rates() -> None:
    with pytest.raises(ValueError, match="50 Hz"):
        RPeakDetector(32.0)


def test_beat_images_of_a_steady_heart_are_zero_and_shaped_like_an_image() -> None:
    images = beat_images(np.arange(0.0, 600.0, 0.75), 20)  # 80 beats/min
    assert images.shape == (20, N_BEAT_FRAMES, SAMPLES_PER_FRAME)
    assert images.dtype == np.float32
    assert np.abs(images).max() < 1e-4


def test_beat_images_follow_the_heart_rate_relative_to_the_night() -> None:
    # 60 beats/min for 10 min, then 90 beats/min for 10 min
    beats = np.concatenate([np.arange(0, 600, 1.0), 600 + np.arange(0, 600, 2 / 3)])
    images = beat_images(beats, 40)
    newest = images[:, -1, :]  # the last 10 s of each epoch
    assert np.allclose(newest[5], 0, atol=1e-4)  # the baseline is the running mean so far
    assert (newest[25] > 5).all()  # faster than the night so far
    # context: epoch 20's image still shows 8 earlier epochs at the old rate
    assert (images[20].reshape(9, GRID_PER_EPOCH)[:-1] < 0).all()


def test_beat_images_are_causal_and_chunking_invariant() -> None:
    rng = np.random.default_rng(0)
    beats = np.cumsum(rng.uniform(0.6, 1.2, 2000))
    beats = beats[beats < 1500]
    whole = beat_images(beats, 50)
    changed = beat_images(np.concatenate([beats[beats < 900], beats[beats >= 900] + 0.2]), 50)
    assert np.array_equal(whole[:30], changed[:30])  # epochs ending by 900 s
    assert not np.array_equal(whole[30:], changed[30:])
    stream, images, i = BeatImages(), [], 0
    while i < beats.size:
        k = int(rng.integers(1, 40))
        horizon = beats[i + k] if i + k < beats.size else 1500.0
        images += stream.push(beats[i : i + k], horizon)
        i += k
    assert np.array_equal(np.stack(images), whole)


def test_epochs_after_the_last_beat_carry_its_rate() -> None:
    """A stream whose beats stop: the epochs that end after the last one (pushed with no
    beats) are the batch's, the last rate carried."""
    beats = np.arange(0.0, 380.0, 0.8)
    stream = BeatImages()
    images = stream.push(beats, 390.0) + stream.push(np.zeros(0), 550.0)  # all used, then none
    assert len(images) == 18
    assert np.array_equal(np.stack(images), beat_images(beats, 18))


def test_beat_images_skip_impossible_intervals() -> None:
    beats = np.arange(0.0, 300.0, 1.0)
    noisy = np.sort(np.concatenate([beats, [100.05, 200.02]]))  # two double detections
    gap = beats[(beats < 150) | (beats > 155)]  # 5 s without beats
    assert np.abs(beat_images(noisy, 10)).max() < 1e-4
    assert np.abs(beat_images(gap, 10)).max() < 1e-4


def test_slpdb_records_that_start_scoring_late(tmp_path: Path) -> None:
    (tmp_path / "records.csv").write_text("record\nlate\n")
    (tmp_path / "late_beats.csv").write_text("time_s,label\n1.0,N\n2.0,V\n")
    (tmp_path / "late_stages.csv").write_text(
        "onset_s,duration_s,stage,events\n60,30,W,\n90,30,2,OA\n120,30,MT,\n"
    )
    rec = slpdb.read_record(tmp_path, "late")
    assert rec.stages.tolist() == [-2, -2, 0, 2, -2]
    assert rec.events == ["", "", "", "OA", ""]
    (tmp_path / "late_stages.csv").write_text("onset_s,duration_s,stage,events\n45,30,W,\n")
    with pytest.raises(Exception, match="30-s boundary"):
        slpdb.read_record(tmp_path, "late")


GOLDEN = Path(__file__).parent / "data" / "golden_rpeaks.npz"


def _golden_cases(data_dir: Path) -> dict[str, np.ndarray]:
    """The detector's beats on real and rendered ECG, native and resampled to 100 Hz (the
    heart kind's path: the resampler, then the detector)."""
    from edgesleep.synth.psg import generate_night

    ecg, sfreq, _ = load_record(data_dir / "mitbih" / "mitbih100_mlii.npz")
    cases = {"mitbih100 360 Hz": detect_rpeaks(ecg, sfreq),
             "mitbih100 100 Hz": detect_rpeaks(resample(ecg, sfreq), 100.0)}  # fmt: skip
    rec = slpdb.read_record(data_dir / "slpdb", "slp01a")
    times = rec.beat_times_s[rec.beat_times_s < 1800]
    rendered = render_ecg(times, rec.beat_labels[: times.size], 1800 * 100, 100.0, seed=1)
    cases["slp01a rendered 100 Hz"] = detect_rpeaks(rendered, 100.0)
    for fs in (250.0, 256.0, 500.0):
        beats_s = np.cumsum(np.random.default_rng(int(fs)).uniform(0.5, 1.3, 150))
        x = render_ecg(beats_s, np.full(beats_s.size, "N"), int(120 * fs), fs, seed=2)
        cases[f"rendered {fs:g} Hz"] = detect_rpeaks(x, fs)
        cases[f"rendered {fs:g} Hz to 100 Hz"] = detect_rpeaks(resample(x, fs), 100.0)
    night = generate_night(22, 0, 256.0, stages=np.full(120, 2))  # SYNTHETIC, 1 h
    cases["synthetic night 256 Hz to 100 Hz"] = detect_rpeaks(
        resample(night.signals["ECG"], 256.0), 100.0
    )
    return cases


def test_detector_beats_are_the_golden_ones(data_dir: Path) -> None:
    """Beats identical to those of the detector the shipped models' numbers were made
    with (tests/data/golden_rpeaks.npz; EDGESLEEP_WRITE_GOLDEN=1 writes it anew)."""
    cases = _golden_cases(data_dir)
    if os.environ.get("EDGESLEEP_WRITE_GOLDEN") == "1":
        np.savez_compressed(GOLDEN, **{k: v.astype(np.int32) for k, v in cases.items()})
    golden = np.load(GOLDEN)
    assert sorted(golden.files) == sorted(cases)
    for name, beats in cases.items():
        assert np.array_equal(beats, golden[name]), name
