"""Synthetic EEG, EOG and ECG for a stage sequence (numpy only, µV).

Stage-dependent amplitudes become per-sample envelopes that cross-fade over
``TRANSITION_S`` at stage changes and jitter from epoch to epoch; each envelope scales
band-limited noise or a train of events (spindles, K-complexes, saw-tooth waves,
saccades, blinks). Tables are indexed by stage: W, N1, N2, N3, REM.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgesleep.dsp import EPOCH_S

TRANSITION_S = 10.0
EPOCH_JITTER = 0.45  # sd of the log of the per-epoch amplitude factor
DRIFT_SD = 0.3  # sd of the log of a slow (~20 min) amplitude drift over the night
EYES_OPEN_P = 0.4  # share of W epochs with eyes open: alpha blocked, more beta

# RMS amplitude (µV) of the EEG components per stage      W     N1    N2    N3    REM
EEG_RMS: dict[str, tuple[float, ...]] = {
    "pink": (7.0, 9.0, 10.0, 12.0, 8.0),
    "alpha": (10.0, 4.0, 1.5, 1.0, 3.0),
    "theta": (4.5, 8.0, 6.0, 6.0, 7.0),
    "delta": (4.0, 7.0, 17.0, 30.0, 6.0),
    "beta": (4.0, 2.5, 1.8, 1.2, 2.5),
}
# events per minute per stage                            W     N1    N2    N3    REM
EEG_EVENTS: dict[str, tuple[float, ...]] = {
    "spindle": (0.0, 0.3, 4.0, 1.5, 0.0),
    "k_complex": (0.0, 0.2, 1.2, 0.5, 0.0),
    "sawtooth": (0.0, 0.2, 0.0, 0.0, 2.0),
}
# derivation gains on each component: frontal delta/K-complexes, central spindles/alpha
DERIVATIONS: dict[str, dict[str, float]] = {
    "EEG Fpz-Cz": {
        "pink": 1.0,
        "alpha": 0.6,
        "theta": 1.0,
        "delta": 1.15,
        "beta": 1.0,
        "spindle": 0.7,
        "k_complex": 1.2,
        "sawtooth": 0.8,
        "gain": 1.0,
    },
    "EEG C4-A1": {
        "pink": 1.0,
        "alpha": 1.0,
        "theta": 0.9,
        "delta": 1.0,
        "beta": 0.8,
        "spindle": 1.2,
        "k_complex": 1.0,
        "sawtooth": 1.0,
        "gain": 1.4,
    },
}
# EOG                                                     W     N1    N2    N3    REM
EOG_SACCADES_PER_MIN = (25.0, 2.0, 0.0, 0.0, 0.0)
EOG_REM_BURSTS_PER_MIN = (0.0, 0.0, 0.0, 0.0, 2.0)
EOG_BLINKS_PER_MIN = (12.0, 2.0, 0.0, 0.0, 0.0)
EOG_SLOW_RMS = (6.0, 15.0, 4.0, 4.0, 4.0)  # slow rolling movements, 0.1-0.4 Hz
EOG_LEAKAGE = 0.15  # share of the frontal EEG seen by the EOG electrodes
# ECG                                                     W     N1    N2    N3    REM
HR_FACTOR = (1.08, 1.0, 0.96, 0.92, 1.02)  # mean heart rate relative to the subject's
HR_LF_SD_BPM = (3.5, 2.0, 1.5, 0.7, 3.5)  # slow (0.02-0.15 Hz) heart-rate wander
RSA_BPM = (2.0, 2.5, 3.0, 3.5, 1.8)  # amplitude of respiratory sinus arrhythmia


@dataclass(frozen=True)
class Subject:
    """Per-subject constants: a different person per draw."""

    gain: float  # overall EEG amplitude factor
    alpha_hz: float
    heart_rate_bpm: float
    resp_hz: float
    noise_uv: float
    eog_gain: float
    ecg_gain: float

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Subject:
        return cls(
            gain=float(rng.lognormal(0.0, 0.35)),
            alpha_hz=float(rng.uniform(8.5, 10.5)),
            heart_rate_bpm=float(rng.uniform(52, 76)),
            resp_hz=float(rng.uniform(0.2, 0.3)),
            noise_uv=float(rng.uniform(1.0, 3.0)),
            eog_gain=float(rng.lognormal(0.0, 0.25)),
            ecg_gain=float(rng.lognormal(0.0, 0.35)),
        )


def _fast_len(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n: the FFT of such a length is fast."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35 * (1 << max(0, (-(-n // p35) - 1).bit_length()))
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def band_noise(
    rng: np.random.Generator, n_times: int, sfreq: float, lo: float, hi: float, slope: float = 0.0
) -> np.ndarray:
    """Unit-RMS noise with power in [lo, hi] Hz (smooth edges) and 1/f**slope amplitude."""
    size = _fast_len(n_times)
    spec = rng.standard_normal(size // 2 + 1) + 1j * rng.standard_normal(size // 2 + 1)
    freqs = np.fft.rfftfreq(size, 1 / sfreq)
    edge = 0.15 * (hi - lo) + 0.05
    # product of two logistic edges, written with tanh so it cannot overflow
    shape = (1 + np.tanh((freqs - lo) / edge * 2)) * (1 - np.tanh((freqs - hi) / edge * 2)) / 4
    if slope:
        shape = shape / np.maximum(freqs, lo) ** slope
    x = np.fft.irfft(spec * shape, n=size)[:n_times]
    return x / (x.std() + 1e-12)


def envelope(
    stages: np.ndarray,
    table: tuple[float, ...],
    sfreq: float,
    rng: np.random.Generator | None = None,
    factor: np.ndarray | None = None,
) -> np.ndarray:
    """Per-sample amplitude from a per-stage table, cross-faded at stage changes.

    Parameters
    ----------
    stages : ndarray of shape (n_epochs,), values 0..4
    table : 5 values, one per stage
    rng : if given, each epoch's value is multiplied by a log-normal jitter and by a slow
        log-normal drift over the night
    factor : ndarray of shape (n_epochs,), optional per-epoch multiplier

    Returns
    -------
    ndarray of shape (n_epochs * 30 * sfreq,)
    """
    values = np.asarray(table, dtype=float)[stages]
    if factor is not None:
        values = values * factor
    if rng is not None:
        n_epochs, span = values.shape[0], 40
        walk = np.convolve(rng.standard_normal(n_epochs + span), np.ones(span), mode="valid")
        drift = DRIFT_SD * walk[:n_epochs] / np.sqrt(span)
        values = values * np.exp(drift + rng.normal(0.0, EPOCH_JITTER, n_epochs))
    per_epoch = int(round(EPOCH_S * sfreq))
    x = np.repeat(values, per_epoch)
    width = max(1, int(TRANSITION_S * sfreq))
    padded = np.pad(x, (width // 2 + 1, width - 1 - width // 2), mode="edge")
    csum = np.cumsum(padded)
    return (csum[width:] - csum[:-width]) / width  # moving average over `width` samples


def _causal_filter(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``np.convolve(x, kernel)[: len(x)]`` through the FFT."""
    size = _fast_len(x.shape[0] + kernel.shape[0] - 1)
    y = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(kernel, size), size)
    return y[: x.shape[0]]


def _event_times(rng: np.random.Generator, rate_per_s: np.ndarray, sfreq: float) -> np.ndarray:
    """Sample indices of a Poisson process with a per-sample rate."""
    return np.flatnonzero(rng.random(rate_per_s.shape[0]) < rate_per_s / sfreq)


def _add(x: np.ndarray, start: int, wave: np.ndarray) -> None:
    stop = min(x.shape[0], start + wave.shape[0])
    if start < stop:
        x[start:stop] += wave[: stop - start]


def spindles(rng: np.random.Generator, rate: np.ndarray, sfreq: float) -> tuple[np.ndarray, int]:
    """Sleep spindles: 11-16 Hz, 0.5-2 s, Hann envelope, ~25 µV peak. Returns (signal, count)."""
    x = np.zeros(rate.shape[0])
    starts = _event_times(rng, rate, sfreq)
    for start in starts:
        dur = rng.uniform(0.5, 2.0)
        t = np.arange(int(dur * sfreq)) / sfreq
        wave = np.sin(2 * np.pi * rng.uniform(11, 16) * t + rng.uniform(0, 2 * np.pi))
        _add(x, start, rng.uniform(15, 35) * np.hanning(t.shape[0]) * wave)
    return x, int(starts.shape[0])


def k_complexes(rng: np.random.Generator, rate: np.ndarray, sfreq: float) -> np.ndarray:
    """K-complexes: a sharp negative then a slower positive wave, ~0.6-1 s, 80-150 µV."""
    x = np.zeros(rate.shape[0])
    for start in _event_times(rng, rate, sfreq):
        dur = rng.uniform(0.6, 1.0)
        t = np.arange(int(dur * sfreq)) / sfreq / dur
        wave = -np.exp(-(((t - 0.25) / 0.09) ** 2)) + 0.6 * np.exp(-(((t - 0.6) / 0.16) ** 2))
        _add(x, start, rng.uniform(80, 150) * wave)
    return x


def sawtooth_bursts(rng: np.random.Generator, rate: np.ndarray, sfreq: float) -> np.ndarray:
    """REM saw-tooth waves: 2-5 s bursts of 2-4 Hz triangular waves, 20-40 µV."""
    x = np.zeros(rate.shape[0])
    for start in _event_times(rng, rate, sfreq):
        t = np.arange(int(rng.uniform(2, 5) * sfreq)) / sfreq
        phase = (rng.uniform(2, 4) * t) % 1.0
        saw = np.where(phase < 0.8, phase / 0.8, (1 - phase) / 0.2) * 2 - 1
        _add(x, start, rng.uniform(20, 40) * np.hanning(t.shape[0]) * saw)
    return x


def eyes_open_epochs(stages: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """W epochs with eyes open (alpha blocked, saccades and blinks); the rest of W has eyes
    closed (alpha, few eye movements). Shape (n_epochs,), bool."""
    return (stages == 0) & (rng.random(stages.shape[0]) < EYES_OPEN_P)


def eeg_sources(
    stages: np.ndarray,
    eyes_open: np.ndarray,
    subject: Subject,
    sfreq: float,
    rng: np.random.Generator,
) -> tuple[dict[str, np.ndarray], int]:
    """Shared EEG components (before derivation gains) and the number of spindles."""
    n = stages.shape[0] * int(round(EPOCH_S * sfreq))
    nyq = sfreq / 2
    bands = {
        "pink": (0.3, min(45.0, nyq * 0.9), 1.0),
        "alpha": (subject.alpha_hz - 1.0, subject.alpha_hz + 1.0, 0.0),
        "theta": (4.0, 7.5, 0.0),
        "delta": (0.5, 2.0, 0.0),
        "beta": (16.0, min(30.0, nyq * 0.9), 0.0),
    }
    factors = {"alpha": np.where(eyes_open, 0.3, 1.0), "beta": np.where(eyes_open, 1.5, 1.0)}
    comps = {
        name: envelope(stages, EEG_RMS[name], sfreq, rng, factors.get(name))
        * band_noise(rng, n, sfreq, lo, hi, s)
        for name, (lo, hi, s) in bands.items()
    }
    rate = {k: envelope(stages, tuple(v / 60 for v in EEG_EVENTS[k]), sfreq) for k in EEG_EVENTS}
    comps["spindle"], n_spindles = spindles(rng, rate["spindle"], sfreq)
    comps["k_complex"] = k_complexes(rng, rate["k_complex"], sfreq)
    comps["sawtooth"] = sawtooth_bursts(rng, rate["sawtooth"], sfreq)
    return comps, n_spindles


def eeg_derivation(
    sources: dict[str, np.ndarray],
    name: str,
    subject: Subject,
    rng: np.random.Generator,
    sfreq: float,
) -> np.ndarray:
    """One derivation: weighted sources, its own background and white noise, µV."""
    gains = DERIVATIONS[name]
    n = next(iter(sources.values())).shape[0]
    x = sum(gains[k] * v for k, v in sources.items())
    own = 4.0 * band_noise(rng, n, sfreq, 0.3, min(45.0, sfreq * 0.45), 1.0)
    return gains["gain"] * subject.gain * (x + own) + subject.noise_uv * rng.standard_normal(n)


def eog(
    stages: np.ndarray,
    eyes_open: np.ndarray,
    frontal_eeg: np.ndarray,
    subject: Subject,
    sfreq: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Horizontal EOG, µV: saccades and blinks in W, slow rolling movements in N1, bursts of
    rapid eye movements in REM, frontal EEG leakage; AC-coupled (0.3 s^-1 decay)."""
    n = frontal_eeg.shape[0]
    steps = np.zeros(n)
    # eyes closed in W: few saccades and blinks; eyes open: many
    eyes = np.where(eyes_open, 1.0 / EYES_OPEN_P, np.where(stages == 0, 0.1, 1.0))
    sacc_rate = envelope(stages, tuple(v / 60 for v in EOG_SACCADES_PER_MIN), sfreq, factor=eyes)
    for start in _event_times(rng, sacc_rate, sfreq):
        steps[start] += rng.choice([-1, 1]) * rng.uniform(40, 150)
    burst_rate = envelope(stages, tuple(v / 60 for v in EOG_REM_BURSTS_PER_MIN), sfreq)
    for start in _event_times(rng, burst_rate, sfreq):
        n_moves = int(rng.integers(3, 12))
        times = start + np.cumsum(rng.uniform(0.2, 0.8, n_moves) * sfreq).astype(int)
        for t in times[times < n]:
            steps[t] += rng.choice([-1, 1]) * rng.uniform(80, 250)
    # eye position: steps with a slow return (AC coupling, time constant ~3 s)
    decay = np.exp(-1 / (3.0 * sfreq))
    kernel = decay ** np.arange(int(15 * sfreq))
    position = _causal_filter(steps, kernel)
    # saccades take ~40 ms: smooth the steps
    rise = np.ones(max(1, int(0.04 * sfreq)))
    position = np.convolve(position, rise / rise.size, mode="same")
    blinks = np.zeros(n)
    blink_rate = envelope(stages, tuple(v / 60 for v in EOG_BLINKS_PER_MIN), sfreq, factor=eyes)
    t = np.arange(int(0.4 * sfreq)) / sfreq
    bump = np.exp(-(((t - 0.2) / 0.07) ** 2))
    for start in _event_times(rng, blink_rate, sfreq):
        _add(blinks, start, rng.uniform(30, 80) * bump)
    slow = envelope(stages, EOG_SLOW_RMS, sfreq, rng) * band_noise(rng, n, sfreq, 0.1, 0.4)
    noise = 12.0 * band_noise(rng, n, sfreq, 0.3, min(40.0, sfreq * 0.45), 1.0)
    return subject.eog_gain * (position + blinks + slow) + EOG_LEAKAGE * frontal_eeg + noise


def beat_times(stages: np.ndarray, subject: Subject, rng: np.random.Generator) -> np.ndarray:
    """R-peak times (s) from a stage-dependent heart-rate model with RSA.

    Heart rate = subject rate x stage factor (cross-faded) + slow wander (LF, stage
    amplitude) + respiratory sinus arrhythmia at the subject's breathing rate.
    """
    fs = 4.0  # heart-rate model grid, Hz
    n = stages.shape[0] * int(EPOCH_S * fs)
    t = np.arange(n) / fs
    base = subject.heart_rate_bpm * envelope(stages, HR_FACTOR, fs)
    wander = envelope(stages, HR_LF_SD_BPM, fs) * band_noise(rng, n, fs, 0.02, 0.15)
    resp_phase = (
        2
        * np.pi
        * np.cumsum(subject.resp_hz * (1 + 0.05 * band_noise(rng, n, fs, 0.005, 0.05)))
        / fs
    )
    rsa = envelope(stages, RSA_BPM, fs) * np.sin(resp_phase)
    hr_hz = np.clip(base + wander + rsa, 35, 150) / 60
    beats = np.cumsum(hr_hz) / fs  # beats elapsed
    k = np.arange(1, int(beats[-1]))
    return np.interp(k, beats, t)


# parametric beat (µV, s relative to the R peak): P, Q, R, S, T as Gaussians
_WAVES_NORMAL = (
    (-0.20, 0.025, 120.0),
    (-0.03, 0.010, -150.0),
    (0.0, 0.012, 1100.0),
    (0.03, 0.012, -250.0),
    (0.26, 0.050, 300.0),
)
_WAVES_VENTRICULAR = ((-0.02, 0.040, -300.0), (0.05, 0.045, 1300.0), (0.30, 0.070, -450.0))


def render_ecg(
    times_s: np.ndarray,
    labels: np.ndarray,
    n_times: int,
    sfreq: float,
    seed: int,
    gain: float = 1.0,
) -> np.ndarray:
    """ECG in µV at ``sfreq`` from beat times and beat labels only.

    Normal beats (and every label but "V") use P-QRS-T Gaussians whose T wave moves with the
    RR interval (QT ~ sqrt(RR)); "V" beats are wide, without P. Baseline wander and noise come
    from ``seed``, so the signal depends on nothing but the beats and the seed.

    Parameters
    ----------
    times_s : ndarray of shape (n_beats,), R-peak times in s
    labels : ndarray of shape (n_beats,), MIT-BIH beat codes
    """
    rng = np.random.default_rng(seed)
    times_s = np.asarray(times_s, dtype=float)
    half = int(0.45 * sfreq)
    offsets = np.arange(-half, half + 1)
    centers = np.round(times_s * sfreq).astype(int)
    # time of each template sample relative to its R peak, s: (n_beats, 2 * half + 1)
    local = (offsets[None, :] - (times_s * sfreq - centers)[:, None]) / sfreq
    rr = np.diff(times_s, prepend=times_s[0] - 1.0) if times_s.size else times_s
    qt = np.sqrt(np.clip(rr, 0.3, 2.0))[:, None]
    ventricular = (np.asarray(labels) == "V")[:, None]
    beats = np.zeros(local.shape)
    for waves, mask in ((_WAVES_NORMAL, ~ventricular), (_WAVES_VENTRICULAR, ventricular)):
        for mu, sd, amp in waves:
            mu_b = mu * qt if mu > 0.1 else mu  # repolarisation moves with the RR interval
            beats += mask * amp * np.exp(-(((local - mu_b) / sd) ** 2) / 2)
    index = centers[:, None] + offsets[None, :]
    inside = (index >= 0) & (index < n_times)
    x = np.bincount(index[inside], weights=beats[inside], minlength=n_times)
    wander = 60.0 * band_noise(rng, n_times, sfreq, 0.05, 0.5)
    noise = 8.0 * rng.standard_normal(n_times)
    return gain * x + wander + noise
