"""A gap of any length costs bounded memory (issue 19, item 2): up to ``MAX_FILL_S`` it is
held over sample by sample and flagged; beyond, the stream goes on in a new segment that
starts at the right onset, flagged "segment", with no filler epochs."""

from __future__ import annotations

import tracemalloc

import numpy as np

from edgesleep.dsp import EPOCH_SAMPLES
from edgesleep.ort import ExportedModel
from edgesleep.stager import MAX_FILL_S, Stager, score_signal
from edgesleep.synth.psg import generate_night


def _signal(seed: int, n_epochs: int, sfreq: float = 100.0) -> np.ndarray:
    stages = np.array(([0] * 4 + [2] * 6 + [4] * 4) * 10)[:n_epochs]
    return generate_night(seed, 0, sfreq=sfreq, stages=stages).signals["EEG Fpz-Cz"]


def test_a_jump_of_two_to_the_31_samples_starts_a_new_segment(exported: dict) -> None:
    model = ExportedModel(exported["root"] / "out", "fp32")
    first, second = _signal(1, 30), _signal(2, 25)
    delay = 3 if model.fixed_delay is None else model.fixed_delay  # a causal model: its own
    stager = Stager(model, 100.0, delay=delay)
    results = stager.push(first, t0=0.0)
    jump_epoch = 2**31 // EPOCH_SAMPLES  # the device index jumped by ~2**31 samples
    tracemalloc.start()
    results += stager.push(second[:1000], t0=jump_epoch * 30.0)
    results += stager.push(second[1000:]) + stager.flush()
    peak_mb = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    assert peak_mb < 50, peak_mb  # filling the gap would take 17 GB
    indices = [r.index for r in results]
    assert indices == [*range(30), *range(jump_epoch, jump_epoch + 25)]
    new = results[30:]
    assert new[0].onset_s == jump_epoch * 30.0 and "segment" in new[0].flags
    # the new segment is scored as a stream of its own: equal to offline scoring of it
    offline = score_signal(model, second, 100.0, delay=delay)
    np.testing.assert_allclose(
        np.stack([r.probabilities for r in new]),
        np.stack([r.probabilities for r in offline]),
        atol=1e-5,
    )
    assert [r.stage for r in new] == [r.stage for r in offline]


def test_gaps_up_to_the_bound_are_filled_and_flagged(exported: dict) -> None:
    model = ExportedModel(exported["root"] / "out", "fp32")
    sfreq = 128.0
    signal = _signal(3, 40, sfreq)
    gap_s = MAX_FILL_S - 30.0  # 9 epochs, not a new segment
    stager = Stager(model, sfreq, delay=0)
    cut = int(12.5 * 30 * sfreq)
    results = stager.push(signal[:cut])
    results += stager.push(signal[cut:], t0=cut / sfreq + gap_s) + stager.flush()
    n_epochs = int((signal.shape[0] / sfreq + gap_s) // 30)
    assert [r.index for r in results] == list(range(n_epochs))
    gap_epochs = {r.index for r in results if "gap" in r.flags}
    assert gap_epochs == set(range(12, 12 + int(np.ceil(0.5 + gap_s / 30))))
    assert not any("segment" in r.flags for r in results)
