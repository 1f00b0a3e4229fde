"""The one STFT front end: 30-s epochs at 100 Hz -> (29, 129) log-power images.

Symmetric Hamming window of 200 samples (``np.hamming``, as MATLAB and the SeqSleepNet
code), hop 100, nfft 256, no padding, no detrending, no scaling:
``10 * log10(|rfft(window * frame, 256)|**2 + POWER_FLOOR)`` in dB re 1 µV².
Frames never cross epoch boundaries: frame k of an epoch covers its samples
[100 k, 100 k + 200), k = 0..28.

Training (batch) and the device (incremental) call the same ``_log_power`` on the same
samples, so they agree to floating-point rounding. numpy only.
"""

from __future__ import annotations

import numpy as np

SFREQ = 100.0
EPOCH_S = 30.0
EPOCH_SAMPLES = 3000
WIN_SAMPLES = 200
HOP_SAMPLES = 100
NFFT = 256
N_FRAMES = 1 + (EPOCH_SAMPLES - WIN_SAMPLES) // HOP_SAMPLES  # 29
N_FREQS = NFFT // 2 + 1  # 129
POWER_FLOOR = 1e-10  # µV², keeps flat lines finite (-100 dB)

_WINDOW = np.hamming(WIN_SAMPLES)
# Windowed real DFT as one (200, 2 * 129) matrix [cos | -sin]: for one frame a matmul costs
# a few µs where np.fft.rfft costs ~20 µs of call overhead; equal to rfft to ~1e-12.
_ANGLES = 2 * np.pi * np.outer(np.arange(WIN_SAMPLES), np.arange(N_FREQS)) / NFFT
_DFT = np.concatenate([np.cos(_ANGLES), -np.sin(_ANGLES)], axis=1) * _WINDOW[:, None]


def _log_power(frames: np.ndarray) -> np.ndarray:
    """Windowed log power of frames.

    Parameters
    ----------
    frames : ndarray of shape (..., 200), µV

    Returns
    -------
    ndarray of shape (..., 129), float32, dB re 1 µV²
    """
    spec = frames @ _DFT
    power = spec[..., :N_FREQS] ** 2 + spec[..., N_FREQS:] ** 2
    power += POWER_FLOOR
    return (10.0 * np.log10(power)).astype(np.float32)


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

    Samples arrive in chunks of any size. Frame k of the current epoch is computed as
    soon as its last sample arrives (after sample 200 of an epoch one frame exists, then
    one more per 100 samples); when the epoch's 3000th sample arrives, its (29, 129)
    image is returned. The image equals :func:`stft_epochs` of the same samples.
    """

    def __init__(self) -> None:
        self._buf = np.zeros(EPOCH_SAMPLES, dtype=np.float64)
        # (29, 200) view: row k is frame k of the current epoch
        self._frames = np.lib.stride_tricks.sliding_window_view(self._buf, WIN_SAMPLES)[
            ::HOP_SAMPLES
        ]
        self._image = np.zeros((N_FRAMES, N_FREQS), dtype=np.float32)
        self._n_samples = 0  # samples of the current epoch received
        self._n_frames = 0  # frames of the current epoch computed
        self.n_epochs = 0  # epochs completed since the last reset

    @property
    def n_frames(self) -> int:
        """Frames of the current (incomplete) epoch computed so far."""
        return self._n_frames

    @property
    def frames(self) -> np.ndarray:
        """View of the frames of the current epoch, shape (n_frames, 129), dB."""
        return self._image[: self._n_frames]

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
        pos = 0
        while pos < samples.shape[0]:
            take = min(EPOCH_SAMPLES - self._n_samples, samples.shape[0] - pos)
            self._buf[self._n_samples : self._n_samples + take] = samples[pos : pos + take]
            self._n_samples += take
            pos += take
            done = min(N_FRAMES, max(0, (self._n_samples - WIN_SAMPLES) // HOP_SAMPLES + 1))
            if done > self._n_frames:
                self._image[self._n_frames : done] = _log_power(self._frames[self._n_frames : done])
                self._n_frames = done
            if self._n_samples == EPOCH_SAMPLES:
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
