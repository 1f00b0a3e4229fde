"""Synthetic PSG generator: determinism, read-back, beat-times mode, hypnogram realism."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgesleep.cli import app
from edgesleep.io.dataset import load_night, read_dataset
from edgesleep.io.edf import channels, read_annotations
from edgesleep.synth.hypnograms import markov_model, real_hypnograms, rem_periods
from edgesleep.synth.psg import (
    ARTEFACT_KINDS,
    CHANNELS,
    PHYSICAL_RANGE_UV,
    add_artefacts,
    generate_night,
    write_night_edf,
)
from edgesleep.synth.signals import Subject, beat_times

SHORT = np.array([0] * 4 + [1] * 4 + [2] * 8 + [3] * 8 + [2] * 4 + [4] * 8 + [0] * 4, dtype=np.int8)


def test_same_seed_same_bytes_and_read_back(tmp_path: Path) -> None:
    """One whole night through the CLI, twice: identical files that read back."""
    for name in ("a", "b"):
        args = ["data", "synth", "--out", str(tmp_path / name), "--nights", "1", "--seed", "3"]
        result = CliRunner().invoke(app, [*args, "--hypnograms", "markov"])
        assert result.exit_code == 0, result.output
        assert "SYNTHETIC" in result.output
    files = [(tmp_path / n / "psg" / "synth-000.edf").read_bytes() for n in ("a", "b")]
    assert hashlib.sha256(files[0]).digest() == hashlib.sha256(files[1]).digest()
    ds = read_dataset(tmp_path / "a")
    assert ds.synthetic and ds.info["generator_version"] and ds.subjects == ["0"]
    assert [c.label for c in channels(tmp_path / "a" / ds.entries[0].psg)] == list(CHANNELS)
    night = load_night(ds, ds.entries[0], "EOG horizontal")
    reference = generate_night(3, 0, hypnograms="markov")
    np.testing.assert_array_equal(night.stages, reference.stages)
    peak = PHYSICAL_RANGE_UV["EOG horizontal"]
    expected = np.clip(reference.signals["EOG horizontal"], -peak, peak)
    # EDF stores 16-bit samples: one step is 2 * peak / 65535
    np.testing.assert_allclose(night.signal, expected, atol=2 * peak / 65535 * 1.01)


def test_subjects_differ() -> None:
    subjects = [Subject.draw(np.random.default_rng([0, s, 0])) for s in range(4)]
    assert len({round(s.alpha_hz, 6) for s in subjects}) == 4
    assert len({round(s.heart_rate_bpm, 6) for s in subjects}) == 4


def test_ecg_at_given_beats_depends_only_on_beats() -> None:
    """Beat-times mode: shuffling the stages gives a bit-identical ECG."""
    times = np.sort(np.random.default_rng(1).uniform(0.5, SHORT.shape[0] * 30 - 1, 1500))
    labels = np.where(np.arange(times.shape[0]) % 50 == 0, "V", "N")
    shuffled = np.random.default_rng(2).permutation(SHORT)
    assert not np.array_equal(shuffled, SHORT)
    a = generate_night(5, 1, stages=SHORT, beats=(times, labels))
    b = generate_night(5, 1, stages=shuffled, beats=(times, labels))
    assert a.signals["ECG"].tobytes() == b.signals["ECG"].tobytes()
    assert a.signals["EEG Fpz-Cz"].tobytes() != b.signals["EEG Fpz-Cz"].tobytes()
    r_peaks = np.round(times * 100).astype(int)
    normal = labels == "N"
    assert np.median(a.signals["ECG"][r_peaks[normal]]) > 500  # R waves at the given beats


def test_heart_rate_lower_in_n3_than_w_and_rsa() -> None:
    stages = np.array([0] * 60 + [3] * 60, dtype=np.int8)
    subject = Subject.draw(np.random.default_rng(0))
    beats = beat_times(stages, subject, np.random.default_rng(1))
    rr = np.diff(beats)
    t = beats[1:]
    assert 60 / rr[t < 1700].mean() > 60 / rr[t > 1900].mean()
    series = np.interp(np.arange(1900, 3500, 0.25), t, rr)
    spec = np.abs(np.fft.rfft(series - series.mean())) ** 2
    freqs = np.fft.rfftfreq(series.shape[0], 0.25)
    band = (freqs > 0.1) & (freqs < 0.5)
    assert abs(freqs[band][np.argmax(spec[band])] - subject.resp_hz) < 0.03


def test_markov_nights_look_like_real_ones() -> None:
    real = real_hypnograms()
    rng = np.random.default_rng(0)
    sim = [markov_model().sample(rng) for _ in range(60)]

    def proportions(nights: list[np.ndarray] | tuple[np.ndarray, ...]) -> np.ndarray:
        scored = np.concatenate([n[n >= 0] for n in nights])
        return np.bincount(scored, minlength=5) / scored.shape[0]

    def thirds(nights: list[np.ndarray] | tuple[np.ndarray, ...], stage: int) -> np.ndarray:
        out = []
        for n in nights:
            asleep = np.flatnonzero(n > 0)
            period = n[asleep[0] : asleep[-1] + 1]
            k = period.shape[0] // 3
            out.append([np.mean(period[:k] == stage), np.mean(period[-k:] == stage)])
        return np.mean(out, axis=0)

    np.testing.assert_allclose(proportions(sim), proportions(real), atol=0.04)
    assert abs(np.mean([rem_periods(n) for n in sim]) - np.mean([rem_periods(n) for n in real])) < 1
    n3, rem = thirds(sim, 3), thirds(sim, 4)
    assert n3[0] > 2 * n3[1] and rem[1] > 2 * rem[0]  # N3 early, REM late


def test_artefacts_are_added_and_annotated(tmp_path: Path) -> None:
    night = generate_night(0, 0, stages=SHORT)
    clean = {k: v.copy() for k, v in night.signals.items()}
    add_artefacts(night, ARTEFACT_KINDS, np.random.default_rng(0), per_hour=20)
    kinds = {text.split()[1] for _, _, text in night.artefacts}
    assert kinds == set(ARTEFACT_KINDS)
    assert any(not np.array_equal(clean[k], night.signals[k]) for k in clean)
    write_night_edf(tmp_path / "n.edf", night)
    notes = [a.description for a in read_annotations(tmp_path / "n.edf")]
    assert sum(n.startswith("Artefact") for n in notes) == len(night.artefacts)
    assert "Sleep stage 3" in notes
    bad = CliRunner().invoke(app, ["data", "synth", "--out", str(tmp_path), "--artefacts", "x"])
    assert bad.exit_code == 2 and "unknown artefact kinds ['x']" in bad.output


@pytest.mark.parametrize("sfreq", [200.0, 256.0])
def test_other_rates(sfreq: float) -> None:
    night = generate_night(0, 0, sfreq=sfreq, stages=SHORT)
    n = night.stages.shape[0] * int(30 * sfreq)
    assert all(x.shape == (n,) for x in night.signals.values())
