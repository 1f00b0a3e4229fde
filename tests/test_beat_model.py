"""The beat-interval input kind end to end: train (R peaks from a SYNTHETIC ECG) -> export
-> stager, streaming equal to offline and to the training side's features."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import SHORT_NIGHT

from edgesleep.dsp import resample
from edgesleep.dsp.beats import N_BEAT_FRAMES, SAMPLES_PER_FRAME
from edgesleep.dsp.inputs import get_kind
from edgesleep.errors import InputError
from edgesleep.ort import ExportedModel
from edgesleep.readout import default_delay, probabilities
from edgesleep.stager import Stager, score_signal
from edgesleep.synth.psg import generate_night


@pytest.fixture(scope="module")
def beat_model(tiny_export: Callable[[str], dict]) -> dict:
    return tiny_export("student-beats")


def _ecg(sfreq: float) -> np.ndarray:
    return generate_night(21, 0, sfreq=sfreq, stages=SHORT_NIGHT).signals["ECG"]


def test_checkpoint_and_export_carry_the_input_kind(beat_model: dict) -> None:
    ckpt = beat_model["ckpt"]
    assert ckpt.input_kind == "beats"
    assert (ckpt.config["n_frames"], ckpt.config["n_freqs"]) == (N_BEAT_FRAMES, SAMPLES_PER_FRAME)
    for precision in ("fp32", "int8"):
        model = ExportedModel(beat_model["root"] / "out", precision)
        assert model.info.input == get_kind("beats").spec()
        assert model.encode(np.zeros((2, N_BEAT_FRAMES, SAMPLES_PER_FRAME))).shape[0] == 2


@pytest.mark.parametrize("sfreq", [100.0, 256.0])
def test_beat_stager_streaming_equals_offline(beat_model: dict, sfreq: float) -> None:
    model = ExportedModel(beat_model["root"] / "out", "fp32")
    signal = _ecg(sfreq)
    offline = score_signal(model, signal, sfreq, delay=0, channel="ECG")
    assert [r.index for r in offline] == list(range(signal.shape[0] // int(30 * sfreq)))
    stager, streamed, pos = Stager(model, sfreq, delay=0, channel="ECG"), [], 0
    rng = np.random.default_rng(0)
    while pos < signal.shape[0]:
        size = int(rng.choice([1, 50, 777, 3000, 9001]))
        streamed += stager.push(signal[pos : pos + size])
        pos += size
    streamed += stager.flush()
    assert [r.index for r in streamed] == [r.index for r in offline]
    np.testing.assert_allclose(
        np.stack([r.probabilities for r in streamed]),
        np.stack([r.probabilities for r in offline]),
        atol=1e-5,
    )


def test_beat_stager_equals_training_features(beat_model: dict) -> None:
    """The device path (streaming resampler and detector, ONNX) gives the training side's
    probabilities (batch resampler, one-push detector, torch)."""
    ckpt = beat_model["ckpt"]
    signal = _ecg(256.0)
    images = get_kind("beats").images(resample(signal, 256.0))
    k = default_delay(ckpt.scorer())  # a causal model: its fixed delay
    reference = probabilities(ckpt.scorer(), images, [k])[k]
    got = score_signal(ExportedModel(beat_model["root"] / "out", "fp32"), signal, 256.0)
    np.testing.assert_allclose(np.stack([r.probabilities for r in got]), reference, atol=1e-4)


def test_beat_model_refuses_an_eeg_stream(beat_model: dict) -> None:
    model = ExportedModel(beat_model["root"] / "out", "fp32")
    with pytest.raises(InputError, match="ECG"):
        Stager(model, 100.0, channel="EEG Fpz-Cz")


def test_bench_quick_runs_a_beat_model(beat_model: dict, tmp_path: Path) -> None:
    from edgesleep.bench.runtime import run, write

    result = run([beat_model["root"] / "out"], quick=True, realtime_s=1.0, thread_counts=(1,))
    write(result, tmp_path, "bench-beats")
    for r in result["rows"]:
        assert r["front_end_ms"]["p50"] > 0 and r["stream"]["step"]["cpu_s_per_hour"] > 0
    for p in result["processes"].values():
        assert not p["scipy_imported"] and not p["torch_imported"]
