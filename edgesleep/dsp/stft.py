"""The one STFT front end: 30-s epochs at 100 Hz -> (29, 129) log-power images.

Symmetric Hamming window of 200 samples (``np.hamming``, as MATLAB and the SeqSleepNet
code), hop 100, nfft 256, no padding, no detrending, no scaling:
``10 * log10(|rfft(window * frame, 256)|**2 + POWER_FLOOR)`` in dB re 1 µV².
Frames never cross epoch boundaries: frame k of an epoch covers its samples
[100 k, 100 k + 200), k = 0..28.

Training (batch) and the device (incremental) call the same ``_log_power`` on the same
samples, so they agree to floating-point rounding. numpy only (``np.fft``: no BLAS, whose
first call alone costs a streaming process ~7 MB of buffers).
"""

from __future__ import annotations

import numpy as np

from edgesleep.dsp.inputs import InputKind

SFREQ = 100.0
EPOCH_S = 30.0  # the one epoch length: a stage per 30-s epoch
EPOCH_SAMPLES = 3000
WIN_SAMPLES = 200
HOP_SAMPLES = 100
NFFT = 256
N_FRAMES = 1 + (EPOCH_SAMPLES - WIN_SAMPLES) // HOP_SAMPLES  # 29
N_FREQS = NFFT // 2 + 1  # 129
POWER_FLOOR = 1e-10  # µV², keeps flat lines finite (-100 dB)

_WINDOW = np.hamming(WIN_SAMPLES)


def _log_power(frames: np.ndarray, padded: np.ndarray | None = None) -> np.ndarray:
    """Windowed log power of frames.

    Parameters
    ----------
    frames : ndarray of shape (..., 200), µV
    padded : ndarray of shape (..., 256), optional
        Scratch whose last 56 columns are zero (a stream keeps one; default: a new one).

    Returns
    -------
    ndarray of shape (..., 129), float32, dB re 1 µV²
    """
    if padded is None:  # rfft pads slower than a zeroed buffer
        padded = np.zeros((*frames.shape[:-1], NFFT))
    np.multiply(frames, _WINDOW, out=padded[..., :WIN_SAMPLES])
    spec = np.fft.rfft(padded)
    power = spec.real**2
    power += spec.imag**2
    power += POWER_FLOOR
    np.log10(power, out=power)
    power *= 10.0
    return power.astype(np.float32)


def stft_epochs(epochs: np.ndarray) -> np.ndarray:
    """Log-power STFT images of 30-s epochs (vectorised over epochs).

    Parameters
    ----------
    epochs : ndarray of shape (n_epochs, 3000)
        Signal at 100 Hz in µV, one row per epoch.

    Returns
    -------
    ndarray of shape (n_epochs, 29, 129), float32
        Log power in dB re 1 µV², frames x frequency bins (0..50 Hz in 100/256 Hz steps).
    """
    epochs = np.asarray(epochs, dtype=np.float64)
    if epochs.ndim != 2 or epochs.shape[1] != EPOCH_SAMPLES:
        raise ValueError(
            f"epochs must have shape (n_epochs, {EPOCH_SAMPLES}) (30 s at 100 Hz), "
            f"got {epochs.shape}"
        )
    frames = np.lib.stride_tricks.sliding_window_view(epochs, WIN_SAMPLES, axis=1)
    return _log_power(frames[:, ::HOP_SAMPLES])


def stft_signal(signal: np.ndarray) -> np.ndarray:
    """Log-power STFT images of a whole 100-Hz signal, cut into 30-s epochs.

    Parameters
    ----------
    signal : ndarray of shape (n_times,)
        Signal at 100 Hz in µV. A trailing partial epoch is dropped.

    Returns
    -------
    ndarray of shape (n_epochs, 29, 129), float32
    """
    signal = np.asarray(signal)
    if signal.ndim != 1:
        raise ValueError(f"signal must be 1-D (n_times,), got shape {signal.shape}")
    n_epochs = signal.shape[0] // EPOCH_SAMPLES
    return stft_epochs(signal[: n_epochs * EPOCH_SAMPLES].reshape(n_epochs, EPOCH_SAMPLES))


class StreamingSTFT:
    """Incremental STFT over a preallocated one-epoch buffer.

    Samples arrive in chunks of any size and are copied into the buffer once. Frame k of
    the current epoch exists as soon as its last sample has arrived (after sample 200 of an
    epoch one frame, then one more per 100 samples); frames are computed in one batched FFT
    when the epoch's 3000th sample arrives, and the (29, 129) image returned, or earlier
    for whoever reads :attr:`frames`. One call per epoch instead of one per frame: at 1-s
    packets the per-call overhead of 29 small FFTs would cost more than the model. The
    image equals :func:`stft_epochs` of the same samples.
    """

    def __init__(self) -> None:
        self._buf = np.zeros(EPOCH_SAMPLES, dtype=np.float64)
        # (29, 200) view: row k is frame k of the current epoch
        self._frames = np.lib.stride_tricks.sliding_window_view(self._buf, WIN_SAMPLES)[
            ::HOP_SAMPLES
        ]
        self._image = np.zeros((N_FRAMES, N_FREQS), dtype=np.float32)
        self._padded = np.zeros((N_FRAMES, NFFT))  # windowed frames, zero-padded
        self._n_samples = 0  # samples of the current epoch received
        self._n_frames = 0  # frames of the current epoch computed
        self.n_epochs = 0  # epochs completed since the last reset

    @property
    def n_frames(self) -> int:
        """Frames of the current (incomplete) epoch whose samples have all arrived."""
        return min(N_FRAMES, max(0, (self._n_samples - WIN_SAMPLES) // HOP_SAMPLES + 1))

    @property
    def frames(self) -> np.ndarray:
        """The frames of the current epoch so far, shape (n_frames, 129), dB."""
        self._compute(self.n_frames)
        return self._image[: self._n_frames]

    def _compute(self, n_frames: int) -> None:
        if n_frames > self._n_frames:
            self._image[self._n_frames : n_frames] = _log_power(
                self._frames[self._n_frames : n_frames], self._padded[: n_frames - self._n_frames]
            )
            self._n_frames = n_frames

    def push(self, samples: np.ndarray) -> list[np.ndarray]:
        """Feed samples; return the images of the epochs they complete.

        Parameters
        ----------
        samples : ndarray of shape (n_times,)
            Signal at 100 Hz in µV.

        Returns
        -------
        list of ndarray of shape (29, 129), float32
            One image per epoch completed by this chunk, oldest first (often empty).
        """
        samples = np.asarray(samples, dtype=np.float64).reshape(-1)
        images: list[np.ndarray] = []
        pos, n_times = 0, samples.shape[0]
        while pos < n_times:
            take = min(EPOCH_SAMPLES - self._n_samples, n_times - pos)
            self._buf[self._n_samples : self._n_samples + take] = samples[pos : pos + take]
            self._n_samples += take
            pos += take
            if self._n_samples == EPOCH_SAMPLES:
                self._compute(N_FRAMES)
                images.append(self._image.copy())
                self._n_samples = 0
                self._n_frames = 0
                self.n_epochs += 1
        return images

    def reset(self) -> None:
        """Drop the current partial epoch and start counting epochs from zero."""
        self._n_samples = 0
        self._n_frames = 0
        self.n_epochs = 0


class StftStream:
    """The ``stft`` kind's streaming front end: (epoch, image) as each epoch completes."""

    def __init__(self) -> None:
        self.stft = StreamingSTFT()

    def reset(self) -> None:
        self.stft.reset()

    def push(self, y: np.ndarray) -> list[tuple[int, np.ndarray]]:
        first = self.stft.n_epochs
        return list(enumerate(self.stft.push(y), start=first))

    def samples_due(self) -> int:
        """Samples still to come before the next image is complete."""
        return EPOCH_SAMPLES - self.stft._n_samples

    def flush(self, n_samples: int) -> list[tuple[int, np.ndarray]]:
        return []  # a partial epoch makes no image


KIND = InputKind(
    name="stft",
    help="log-power STFT of the channel (EEG, EOG, ...)",
    image_shape=(N_FRAMES, N_FREQS),
    spectral=True,
    images=stft_signal,
    stream=StftStream,
    epoch_local=True,  # frames never cross epoch boundaries
    metadata={
        "sfreq": SFREQ,
        "epoch_s": EPOCH_S,
        "window": "hamming-symmetric",
        "window_samples": WIN_SAMPLES,
        "hop_samples": HOP_SAMPLES,
        "nfft": NFFT,
        "scale": "10*log10(max(|X|^2, 1e-10)), dB",
    },
)
