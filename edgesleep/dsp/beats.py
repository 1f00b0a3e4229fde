"""Beats: a streaming R-peak detector and the beat-interval input (numpy only).

:class:`RPeakDetector` follows Pan & Tompkins (1985): a 5-15 Hz band-pass and a
derivative (one linear-phase FIR), squaring, a 150-ms moving-window integral, local maxima
at least 200 ms apart, and adaptive signal/noise levels with T-wave discrimination. Every
step depends on the sample order only, so any chunking gives the same beats; offline
detection (:func:`detect_rpeaks`) is one push and a flush.

The beat-interval input (:class:`BeatImages`, :func:`beat_images`) turns R-peak times into
one "image" per 30-s epoch, shaped like the STFT's (frames, bins) so that every model takes
it unchanged: the instantaneous heart rate (IHR, beats/min) of the last accepted interval,
sampled on a 2-Hz grid, minus a slow per-night baseline (an exponential average of the
epoch means, time constant 60 min) at the epoch's end, over the 9 epochs (270 s) that end with
the epoch, cut into 27 frames of 10 s x 20 samples; unknown rates (before the first interval)
are 0. It is causal: epoch ``i`` needs the beats up to its
end only.
"""

from __future__ import annotations

import numpy as np

from edgesleep.dsp.inputs import InputKind, SeriesSource
from edgesleep.dsp.stft import EPOCH_S, EPOCH_SAMPLES, SFREQ

BAND_HZ = (5.0, 15.0)
MWI_S = 0.15  # moving-window integral
REFRACTORY_S = 0.2  # two beats are at least this far apart
T_WAVE_S = 0.36  # a candidate this close to the last beat may be a T wave
LEARN_S = 2.0  # the first seconds set the initial signal and noise levels

GRID_HZ = 2.0
FRAME_S = 10.0
CONTEXT_EPOCHS = 9
BASELINE_TAU_S = 3600.0
RR_RANGE_S = (0.3, 2.0)  # intervals outside (30-200 beats/min) are not heart beats
SAMPLES_PER_FRAME = int(FRAME_S * GRID_HZ)  # 20 "bins"
FRAMES_PER_EPOCH = int(EPOCH_S / FRAME_S)
N_BEAT_FRAMES = CONTEXT_EPOCHS * FRAMES_PER_EPOCH  # 27 frames
GRID_PER_EPOCH = int(EPOCH_S * GRID_HZ)
# how long one event stands for data (longer without one: a hole, flagged "gap"): beats
# come every 0.3-2 s; a watch's heart rate every 1-15 s (Walch et al.: 99 % within 10 s)
BEATS_HOLD_S = 10.0
RATES_HOLD_S = 60.0


def _bandpass_taps(sfreq: float) -> np.ndarray:
    """Hamming-windowed sinc band-pass, ~1 s long (odd length), unit gain at 10 Hz."""
    n_taps = int(round(sfreq)) | 1
    t = np.arange(n_taps) - (n_taps - 1) / 2
    lo, hi = (f / sfreq for f in BAND_HZ)
    taps = (2 * hi * np.sinc(2 * hi * t) - 2 * lo * np.sinc(2 * lo * t)) * np.hamming(n_taps)
    gain = np.abs(np.sum(taps * np.exp(-2j * np.pi * 10.0 / sfreq * np.arange(n_taps))))
    return taps / gain


class _Fir:
    """Causal FIR for chunks of any size: output n uses inputs n - len + 1 .. n (zeros before)."""

    def __init__(self, taps: np.ndarray) -> None:
        self.taps = taps
        self.tail = np.zeros(taps.shape[0] - 1)

    def push(self, x: np.ndarray) -> np.ndarray:
        joined = np.concatenate([self.tail, x])
        self.tail = joined[joined.shape[0] - self.tail.shape[0] :]
        return np.convolve(joined, self.taps, mode="valid")


class RPeakDetector:
    """Streaming R-peak detector for one ECG lead.

    Parameters
    ----------
    sfreq : float
        Sampling rate in Hz (>= 50).

    Notes
    -----
    A peak is final once ``delay_s`` of signal past it has arrived; :meth:`push` returns
    the peaks that became final. Indices count input samples from the first pushed.
    """

    def __init__(self, sfreq: float) -> None:
        if sfreq < 50:
            raise ValueError(f"R-peak detection needs >= 50 Hz, got {sfreq} Hz")
        self.sfreq = float(sfreq)
        bandpass = _bandpass_taps(sfreq)
        derivative = np.array([1.0, 2.0, 0.0, -2.0, -1.0]) * sfreq / 8
        self._bp_delay = (bandpass.shape[0] - 1) // 2
        both = np.convolve(bandpass, derivative)
        self._mwi_len = max(1, int(round(MWI_S * sfreq)))
        self._delay = (both.shape[0] - 1) // 2  # of the derivative signal
        self._bandpass_taps, self._derivative_taps = bandpass, derivative
        self._half = int(round(REFRACTORY_S * sfreq))
        self._t_wave = int(round(T_WAVE_S * sfreq))
        # the first samples carry the filters' start-up transient: learn after it
        self._learn_from = both.shape[0] + self._mwi_len
        self._learn_to = self._learn_from + int(round(LEARN_S * sfreq))
        self.reset()

    @property
    def delay_s(self) -> float:
        """Seconds of signal after an R peak before it is reported."""
        lag = self._delay + self._mwi_len + self._half
        return lag / self.sfreq

    def reset(self) -> None:
        """Forget everything; the next sample pushed is sample 0."""
        self._bp = _Fir(self._bandpass_taps)
        self._deriv = _Fir(self._derivative_taps)
        self._mwi = _Fir(np.full(self._mwi_len, 1.0 / self._mwi_len))
        # recent filter outputs: index k of these arrays is sample self._base + k
        self._base = 0
        self._band = np.zeros(0)
        self._slope = np.zeros(0)
        self._energy = np.zeros(0)
        self._n = 0  # samples received
        self._next = 1  # next energy index to test as a candidate
        self._signal_level: float | None = None
        self._noise_level = 0.0
        self._last_beat = -(10**9)
        self._last_slope = 0.0

    @property
    def horizon(self) -> int:
        """Every peak before this sample index has been reported."""
        return max(0, self._next - self._delay - self._mwi_len)

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Feed samples; return the R peaks that became final.

        Parameters
        ----------
        samples : ndarray of shape (n_times,)
            ECG at ``sfreq`` (any unit; the detector is scale-free).

        Returns
        -------
        ndarray of shape (n_peaks,), int64
            Sample indices of the R peaks, increasing.
        """
        x = np.asarray(samples, dtype=np.float64).reshape(-1)
        if x.size == 0:
            return np.zeros(0, dtype=np.int64)
        band = self._bp.push(x)
        slope = self._deriv.push(band)
        energy = self._mwi.push(slope**2)
        self._band = np.concatenate([self._band, band])
        self._slope = np.concatenate([self._slope, slope])
        self._energy = np.concatenate([self._energy, energy])
        self._n += x.shape[0]
        peaks = self._scan()
        self._trim()
        return peaks

    def flush(self) -> np.ndarray:
        """Report the peaks left by taking the signal as ending here (zeros after), and reset."""
        if self._n == 0:
            return np.zeros(0, dtype=np.int64)
        n = self._n
        peaks = self.push(np.zeros(self._delay + self._mwi_len + self._half + 1))
        self.reset()
        return peaks[peaks < n]

    def _scan(self) -> np.ndarray:
        if self._n < self._learn_to:
            return np.zeros(0, dtype=np.int64)
        if self._signal_level is None:  # Pan-Tompkins' initial levels
            learn = self._energy[self._learn_from - self._base : self._learn_to - self._base]
            self._signal_level = float(learn.max()) / 3
            self._noise_level = float(learn.mean()) / 2
            self._next = max(self._next, self._learn_from)
        stop = self._n - self._half  # candidates whose whole neighbourhood has arrived
        if stop <= self._next:
            return np.zeros(0, dtype=np.int64)
        e = self._energy
        lo, hi = self._next - self._base, stop - self._base
        # a candidate is the maximum of the 2 * half + 1 samples around it and above the
        # sample before: so a local maximum (> before, >= after); the window maximum is
        # taken at those only (a few per beat), not at every sample
        centre = e[lo:hi]
        local = np.flatnonzero((centre > e[lo - 1 : hi - 1]) & (centre >= e[lo + 1 : hi + 1]))
        if local.size:
            around = _window_max(e[lo - self._half : hi + self._half], 2 * self._half + 1)
            candidates = local[centre[local] == around[local]] + lo  # into the kept arrays
        else:
            candidates = local
        self._next = stop
        return self._classify(candidates)

    def _classify(self, at: np.ndarray) -> np.ndarray:
        """Decide on the energy maxima at kept-array indices ``at`` in order; return the
        R-peak sample indices of those that are beats. What each decision reads is
        gathered for all of them at once; only the adaptive levels run one by one."""
        if at.size == 0:
            return np.zeros(0, dtype=np.int64)
        assert self._signal_level is not None
        amplitudes = self._energy[at].tolist()
        # the QRS that made each maximum: the integration window, shifted by the filter
        # delay
        qrs = (at - self._mwi_len + 1)[:, None] + np.arange(self._mwi_len)
        slopes = np.abs(self._slope[qrs]).max(axis=1).tolist()
        starts = at + self._base - self._delay - self._mwi_len + 1
        r_peaks = np.maximum(starts + np.argmax(
            np.abs(self._band[qrs - self._delay + self._bp_delay]), axis=1), 0)  # fmt: skip
        samples = (at + self._base).tolist()
        signal, noise = self._signal_level, self._noise_level
        last_beat, last_slope, t_wave = self._last_beat, self._last_slope, self._t_wave
        found = []  # positions in ``at`` of the beats
        for i, (k, amplitude, slope) in enumerate(zip(samples, amplitudes, slopes, strict=True)):
            if amplitude > noise + 0.25 * (signal - noise) and not (
                k - last_beat < t_wave and slope < 0.5 * last_slope  # a T wave
            ):
                signal = 0.125 * amplitude + 0.875 * signal
                last_beat, last_slope = k, slope
                found.append(i)
            else:
                noise = 0.125 * amplitude + 0.875 * noise
        self._signal_level, self._noise_level = signal, noise
        self._last_beat, self._last_slope = last_beat, last_slope
        return r_peaks[found].astype(np.int64)

    def _trim(self) -> None:
        keep_from = self._next - self._half - self._delay - self._mwi_len - 2
        drop = keep_from - self._base
        if drop > 0:
            self._band, self._slope = self._band[drop:], self._slope[drop:]
            self._energy = self._energy[drop:]
            self._base += drop


def _window_max(x: np.ndarray, width: int) -> np.ndarray:
    """The maximum of each ``width`` consecutive values, ``x[i : i + width]`` for every
    ``i``, by doubling (a few passes over ``x``, no (n, width) gather): exact.

    Returns
    -------
    ndarray of shape (x.shape[0] - width + 1,)
    """
    n_out = x.shape[0] - width + 1
    out, span = x, 1  # out[i] = max(x[i : i + span])
    while 2 * span <= width:
        out = np.maximum(out[:-span], out[span:])
        span *= 2
    if span < width:  # two windows of ``span`` (> width / 2) cover one of ``width``
        out = np.maximum(out[:n_out], out[width - span : width - span + n_out])
    return out[:n_out]


def detect_rpeaks(ecg: np.ndarray, sfreq: float) -> np.ndarray:
    """R-peak sample indices of a whole recording (the streaming detector, one push).

    Parameters
    ----------
    ecg : ndarray of shape (n_times,)
    sfreq : float
        Hz.

    Returns
    -------
    ndarray of shape (n_peaks,), int64
    """
    detector = RPeakDetector(sfreq)
    return np.concatenate([detector.push(ecg), detector.flush()])


class RateImages:
    """Heart-rate samples in, one image per completed 30-s epoch out.

    Each 2-Hz grid time takes the rate of the last sample at or before it (unknown before
    the first: 0 in the image); see the module docstring for the baseline and framing.
    Feed samples in time order with :meth:`push` and say up to when they are complete
    (``horizon_s``); every epoch that ends by then is returned.

    Parameters
    ----------
    first_epoch : int
        The epoch the grid starts at (<= 0). Epochs before 0 are computed (they fill the
        context and the baseline, e.g. from a watch's samples before the recording start)
        but not returned.
    """

    def __init__(self, first_epoch: int = 0) -> None:
        if first_epoch > 0:
            raise ValueError(f"first_epoch {first_epoch}: the grid starts at or before 0")
        self.first_epoch = first_epoch
        self.reset()

    def reset(self) -> None:
        self._times = np.zeros(0)  # s, samples not yet gridded
        self._rates = np.zeros(0)  # beats/min
        self._rate = np.nan  # beats/min of the last sample gridded
        self._grid = np.full((CONTEXT_EPOCHS, GRID_PER_EPOCH), np.nan)  # beats/min, newest last
        self._baseline: float | None = None
        self._n_rated = 0  # epochs that had a heart rate (for the running mean)
        self._epoch_index = self.first_epoch  # the next epoch to compute
        self.n_epochs = 0  # epochs emitted (from epoch 0)

    def push(self, time_s: np.ndarray, bpm: np.ndarray, horizon_s: float) -> list[np.ndarray]:
        """Add rate samples; return the images of the epochs that end at or before
        ``horizon_s``.

        Parameters
        ----------
        time_s : ndarray of shape (n,)
            Sample times in s from the stream's start, non-decreasing and after those of the
            previous pushes.
        bpm : ndarray of shape (n,)
            Heart rate, beats/min.
        horizon_s : float
            Every sample before this time has been pushed.

        Returns
        -------
        list of ndarray of shape (27, 20), float32
            Beats/min relative to the night's baseline, per epoch from 0, in order.
        """
        self._times = np.concatenate([self._times, np.asarray(time_s, dtype=np.float64).ravel()])
        self._rates = np.concatenate([self._rates, np.asarray(bpm, dtype=np.float64).ravel()])
        n_due = _epochs_due(self._epoch_index, horizon_s)
        if n_due <= 0:
            return []
        images = self._epochs(n_due)
        first = self._epoch_index - n_due  # the epochs before 0 are context only
        keep = images[max(0, -first) :] if first < 0 else images
        self.n_epochs += keep.shape[0]
        return list(keep)

    def _epochs(self, n: int) -> np.ndarray:
        """The next ``n`` epochs' images at once (n, 27, 20): each 2-Hz grid time takes
        the rate of the last sample at or before it (or the carried one), each epoch's mean
        updates the baseline in turn, each image is the last 9 epochs' grid less its
        epoch's baseline."""
        epochs = self._epoch_index + np.arange(n)
        grid_s = (epochs[:, None] * EPOCH_S + np.arange(GRID_PER_EPOCH) / GRID_HZ).ravel()
        last = np.searchsorted(self._times, grid_s, side="right") - 1
        rates: np.ndarray = np.full(grid_s.shape, self._rate)  # before any sample: the carried
        if self._times.size:
            rates = np.where(last >= 0, self._rates[np.maximum(last, 0)], rates)
        rates = rates.reshape(n, GRID_PER_EPOCH)
        n_done = int(last[-1]) + 1
        if n_done:
            self._rate = float(self._rates[n_done - 1])
        self._times, self._rates = self._times[n_done:], self._rates[n_done:]
        valid: np.ndarray = np.isfinite(rates)
        whole: list[bool] = np.asarray(valid.all(axis=1)).tolist()
        means = rates.mean(axis=1)  # rows with unknown rates: their known ones, below
        baselines = np.empty(n)
        for i in range(n):  # running mean for the first hour, then an exponential average
            if whole[i] or valid[i].any():
                mean = float(means[i]) if whole[i] else float(rates[i][valid[i]].mean())
                self._n_rated += 1
                weight = max(1.0 / self._n_rated, EPOCH_S / BASELINE_TAU_S)
                base = mean if self._baseline is None else self._baseline
                self._baseline = base + weight * (mean - base)
            baselines[i] = self._baseline or 0.0
        grid = np.concatenate([self._grid, rates])  # (9 + n, 60): the context, then these
        self._grid = grid[-CONTEXT_EPOCHS:]
        self._epoch_index += n
        windows = np.lib.stride_tricks.sliding_window_view(grid[1:], CONTEXT_EPOCHS, axis=0)
        windows = windows.transpose(0, 2, 1)  # (n, 9, 60): image i ends with epoch i
        relative = np.where(np.isfinite(windows), windows - baselines[:, None, None], 0.0)
        return relative.reshape(n, N_BEAT_FRAMES, SAMPLES_PER_FRAME).astype(np.float32)


def _epochs_due(next_epoch: int, horizon_s: float) -> int:
    """How many epochs from ``next_epoch`` end at or before ``horizon_s``."""
    n = 0
    while (next_epoch + n + 1) * EPOCH_S <= horizon_s:
        n += 1
    return n


class BeatImages:
    """R-peak times in, one beat-interval image per completed 30-s epoch out: each
    accepted interval (``RR_RANGE_S``) gives a rate sample at its end, 60 / the median of
    the last 3 accepted intervals, fed to :class:`RateImages`. Offline,
    :func:`beat_images` makes one push with the whole night.
    """

    def __init__(self, first_epoch: int = 0) -> None:
        self.rates = RateImages(max(-(CONTEXT_EPOCHS - 1), first_epoch))
        self.reset()

    def reset(self) -> None:
        self._last_beat_s: float | None = None
        self._intervals: list[float] = []  # the last 3 accepted RR intervals, s
        self.rates.reset()

    @property
    def n_epochs(self) -> int:
        return self.rates.n_epochs

    def push(self, beat_times_s: np.ndarray, horizon_s: float) -> list[np.ndarray]:
        """Add beats; return the images of the epochs that end at or before ``horizon_s``.

        Parameters
        ----------
        beat_times_s : ndarray of shape (n_beats,)
            R-peak times in s from the start of the stream, increasing, after those of the
            previous pushes.
        horizon_s : float
            Every beat before this time has been pushed.

        Returns
        -------
        list of ndarray of shape (27, 20), float32
            Beats/min relative to the night's baseline, per epoch in order.
        """
        t = np.asarray(beat_times_s, dtype=np.float64).reshape(-1)
        if t.size == 0:
            return self.rates.push(t, t, horizon_s)
        before = [] if self._last_beat_s is None else [self._last_beat_s]
        rr = np.diff(np.concatenate([before, t]))  # the interval ending at each beat
        ends = t[t.size - rr.size :]
        ok = (rr >= RR_RANGE_S[0]) & (rr <= RR_RANGE_S[1])
        accepted, times = rr[ok], ends[ok]
        self._last_beat_s = float(t[-1])
        # the median of the last 3 accepted intervals at each (fewer at the night's start)
        history = np.asarray(self._intervals)
        both = np.concatenate([history, accepted])
        self._intervals = both[-2:].tolist()
        medians = np.empty(accepted.size)
        full = np.lib.stride_tricks.sliding_window_view(both, 3) if both.size >= 3 else None
        first_full = max(0, 2 - history.size)  # the first accepted interval with 2 before it
        if full is not None and first_full < accepted.size:
            medians[first_full:] = np.sort(full[history.size + first_full - 2 :], axis=1)[:, 1]
        for i in range(min(first_full, accepted.size)):  # at most 2, once a night
            medians[i] = _median(both[: history.size + i + 1].tolist())
        return self.rates.push(times, 60.0 / medians, horizon_s)


def _median(values: list[float]) -> float:
    """The median of a few values, as ``np.median`` gives it (a numpy call per beat cost a
    night 0.5 s)."""
    ordered = sorted(values)
    half = len(ordered) // 2
    return ordered[half] if len(ordered) % 2 else (ordered[half - 1] + ordered[half]) / 2


def _stack(images: list[np.ndarray]) -> np.ndarray:
    if not images:
        return np.zeros((0, N_BEAT_FRAMES, SAMPLES_PER_FRAME), dtype=np.float32)
    return np.stack(images)


def beat_images(beat_times_s: np.ndarray, n_epochs: int) -> np.ndarray:
    """Beat-interval images of a whole night.

    Parameters
    ----------
    beat_times_s : ndarray of shape (n_beats,)
        R-peak times in s from the recording start, increasing.
    n_epochs : int
        Epochs of the night.

    Returns
    -------
    ndarray of shape (n_epochs, 27, 20), float32
        Beats/min relative to the night's running baseline; see the module docstring.
    """
    return _stack(BeatImages().push(beat_times_s, n_epochs * EPOCH_S))


def _first_epoch(time_s: np.ndarray) -> int:
    """Where the grid of sorted times starts: up to the context before epoch 0."""
    first = int(np.floor(time_s[0] / EPOCH_S)) if time_s.size else 0
    return max(-(CONTEXT_EPOCHS - 1), min(0, first))


def _n_epochs(time_s: np.ndarray, n_epochs: int | None) -> int:
    """``n_epochs``, or the whole epochs that end by the last of the sorted times (as a
    stream that ends there completes)."""
    if n_epochs is not None:
        return n_epochs
    return int(time_s[-1] // EPOCH_S) if time_s.size and time_s[-1] >= 0 else 0


def beat_series_images(
    time_s: np.ndarray, values: np.ndarray | None = None, n_epochs: int | None = None
) -> np.ndarray:
    """Beat-interval images of beat times given directly (a device's or a file's R peaks).

    Parameters
    ----------
    time_s : ndarray of shape (n_beats,)
        Beat times in s from the recording start, any order; beats before 0 serve as
        context.
    values : ignored (beats carry no value)
    n_epochs : int, optional
        Epochs from 0 (default: the whole epochs that end by the last beat).

    Returns
    -------
    ndarray of shape (n_epochs, 27, 20), float32
    """
    time_s = np.sort(np.asarray(time_s, dtype=np.float64)[np.isfinite(time_s)])
    images = BeatImages(_first_epoch(time_s))
    return _stack(images.push(time_s, _n_epochs(time_s, n_epochs) * EPOCH_S))


def heart_rate_images(
    time_s: np.ndarray, bpm: np.ndarray | None, n_epochs: int | None = None
) -> np.ndarray:
    """The same images from a heart-rate series (e.g. a watch's PPG heart rate).

    Parameters
    ----------
    time_s : ndarray of shape (n,)
        Sample times in s from the recording start, any order, irregular; samples before 0
        serve as context (the epochs before 0 fill the context and the baseline).
    bpm : ndarray of shape (n,)
        Beats/min; samples outside 30-200 beats/min (``RR_RANGE_S``) or not finite are dropped.
    n_epochs : int, optional
        Epochs from 0 (default: the whole epochs that end by the last sample).

    Returns
    -------
    ndarray of shape (n_epochs, 27, 20), float32
    """
    if bpm is None:
        raise ValueError("a heart-rate series needs its beats/min values")
    time_s, bpm = np.asarray(time_s, dtype=np.float64), np.asarray(bpm, dtype=np.float64)
    keep = np.isfinite(time_s) & plausible_bpm(bpm)
    order = np.argsort(time_s[keep], kind="stable")
    time_s, bpm = time_s[keep][order], bpm[keep][order]
    rates = RateImages(_first_epoch(time_s))
    return _stack(rates.push(time_s, bpm, _n_epochs(time_s, n_epochs) * EPOCH_S))


def plausible_bpm(bpm: np.ndarray) -> np.ndarray:
    """Finite rates within 30-200 beats/min (``RR_RANGE_S``), as a boolean mask."""
    lo, hi = 60.0 / RR_RANGE_S[1], 60.0 / RR_RANGE_S[0]
    return np.isfinite(bpm) & (bpm >= lo) & (bpm <= hi)


def _usable_beats(time_s: np.ndarray, values: np.ndarray | None) -> np.ndarray:
    """Beats with a finite time."""
    return np.isfinite(time_s)


def _usable_rates(time_s: np.ndarray, values: np.ndarray | None) -> np.ndarray:
    """Rate samples with a finite time and a plausible rate."""
    if values is None:
        raise ValueError("a heart-rate series needs its beats/min values")
    return np.isfinite(time_s) & plausible_bpm(np.asarray(values, dtype=np.float64))


class BeatSeriesStream:
    """Streaming front end for beat times given directly: (epoch, image) as epochs end
    (``first_epoch``: where the grid starts, see :class:`RateImages`)."""

    def __init__(self, first_epoch: int = 0) -> None:
        self.images = BeatImages(max(-(CONTEXT_EPOCHS - 1), first_epoch))

    def reset(self) -> None:
        self.images.reset()

    def push(
        self, time_s: np.ndarray, values: np.ndarray | None, horizon_s: float
    ) -> list[tuple[int, np.ndarray]]:
        first = self.images.n_epochs
        return list(enumerate(self.images.push(time_s, horizon_s), start=first))


class HeartRateStream:
    """Streaming front end for heart-rate samples: implausible rates and samples out of
    time order are dropped (counted in ``dropped``)."""

    def __init__(self, first_epoch: int = 0) -> None:
        self.rates = RateImages(max(-(CONTEXT_EPOCHS - 1), first_epoch))
        self.reset()

    def reset(self) -> None:
        self.rates.reset()
        self.last_s = -np.inf
        self.dropped = 0

    def push(
        self, time_s: np.ndarray, values: np.ndarray | None, horizon_s: float
    ) -> list[tuple[int, np.ndarray]]:
        time_s = np.asarray(time_s, dtype=np.float64).reshape(-1)
        bpm = np.asarray(values, dtype=np.float64).reshape(-1)
        in_order = time_s >= np.maximum.accumulate(np.concatenate([[self.last_s], time_s]))[:-1]
        keep = in_order & plausible_bpm(bpm)
        self.dropped += int((~keep).sum())
        if keep.any():
            self.last_s = float(time_s[keep][-1])
        first = self.rates.n_epochs
        new = self.rates.push(time_s[keep], bpm[keep], horizon_s)
        return list(enumerate(new, start=first))


def night_beat_images(ecg: np.ndarray) -> np.ndarray:
    """The ``beats`` kind's batch function: R peaks of a 100-Hz ECG (the streaming
    detector), then :func:`beat_images`.

    Parameters
    ----------
    ecg : ndarray of shape (n_epochs * 3000,), µV at 100 Hz

    Returns
    -------
    ndarray of shape (n_epochs, 27, 20), float32
    """
    peaks = detect_rpeaks(ecg, SFREQ)
    return beat_images(peaks / SFREQ, ecg.shape[0] // EPOCH_SAMPLES)


class BeatStream:
    """The ``beats`` kind's streaming front end: 100-Hz ECG -> R peaks -> (epoch, image),
    each image ``RPeakDetector.delay_s`` after its epoch's end."""

    def __init__(self) -> None:
        self.detector = RPeakDetector(SFREQ)
        self.images = BeatImages()

    def reset(self) -> None:
        self.detector.reset()
        self.images.reset()

    def _images(self, peaks: np.ndarray, horizon: int) -> list[tuple[int, np.ndarray]]:
        first = self.images.n_epochs
        new = self.images.push(peaks / SFREQ, horizon / SFREQ)
        return list(enumerate(new, start=first))

    def push(self, y: np.ndarray) -> list[tuple[int, np.ndarray]]:
        return self._images(self.detector.push(y), self.detector.horizon)

    def flush(self, n_samples: int) -> list[tuple[int, np.ndarray]]:
        return self._images(self.detector.flush(), n_samples)


KIND = InputKind(
    name="beats",
    help="beat-interval images from the R peaks of an ECG channel",
    image_shape=(N_BEAT_FRAMES, SAMPLES_PER_FRAME),
    spectral=False,
    images=night_beat_images,
    stream=BeatStream,
    metadata={
        "epoch_s": EPOCH_S,
        "detector": "pan-tompkins-streaming-1",
        "grid_hz": GRID_HZ,
        "frame_s": FRAME_S,
        "context_epochs": CONTEXT_EPOCHS,
        "baseline_tau_s": BASELINE_TAU_S,
        "rr_range_s": list(RR_RANGE_S),
        "scale": "beats/min minus the night's running baseline",
    },
    series={
        "beats": SeriesSource(
            "beats",
            "beat (R-peak) times, s",
            beat_series_images,
            BeatSeriesStream,
            _usable_beats,
            hold_s=BEATS_HOLD_S,
        ),
        "heart-rate": SeriesSource(
            "heart-rate",
            "heart-rate samples (time s, beats/min)",
            heart_rate_images,
            HeartRateStream,
            _usable_rates,
            hold_s=RATES_HOLD_S,
        ),
    },
)
