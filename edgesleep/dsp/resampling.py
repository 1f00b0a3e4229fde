"""Resampling from an integer device rate to the model rate (100 Hz).

One filter design, two paths:

- :func:`resample` (batch, files): ``scipy.signal.resample_poly`` with our taps.
- :class:`StreamingResampler` (device): the same polyphase filter applied chunk by chunk,
  filter state carried across chunks, numpy only (scipy is never imported on the
  streaming path).

Both compensate the filter's group delay the same way: output sample ``m`` is the
filtered signal at input time ``m * down / up`` (``m / 100`` s), so sample ``m`` of the
streaming output is the same instant as sample ``m`` of the batch output, and after
:meth:`StreamingResampler.flush` the two outputs are equal sample for sample.
"""

from __future__ import annotations

from math import gcd

import numpy as np

TARGET_SFREQ = 100
MAX_RATIO = 1024  # largest up or down factor we design a filter for
KAISER_BETA = 5.0  # scipy.signal.resample_poly's default window ("kaiser", 5.0)
EMIT_BLOCK = 1024  # output samples per block: bounds the scratch memory


def rational_factors(sfreq: float, target_sfreq: int = TARGET_SFREQ) -> tuple[int, int]:
    """Up and down factors that take ``sfreq`` to ``target_sfreq``.

    Parameters
    ----------
    sfreq : float
        Input rate in Hz; must be a positive integer value.
    target_sfreq : int
        Output rate in Hz.

    Returns
    -------
    (up, down) : tuple of int
        Coprime factors with ``sfreq * up / down == target_sfreq``.

    Raises
    ------
    ValueError
        If the rate is not a positive integer or needs factors above ``MAX_RATIO``.
    """
    if not np.isfinite(sfreq) or sfreq <= 0 or float(sfreq) != round(sfreq):
        raise ValueError(
            f"sampling rate {sfreq!r} Hz cannot be resampled to {target_sfreq} Hz: "
            "only integer rates are supported (e.g. 100, 128, 200, 250, 256, 360, 500, 512); "
            "resample the recording to an integer rate first"
        )
    rate = int(round(sfreq))
    g = gcd(rate, target_sfreq)
    up, down = target_sfreq // g, rate // g
    if max(up, down) > MAX_RATIO:
        raise ValueError(
            f"sampling rate {rate} Hz needs a {up}/{down} polyphase filter (factors above "
            f"{MAX_RATIO}); resample the recording to a rate such as 200, 250, 256 or 500 Hz"
        )
    return up, down


def lowpass_taps(up: int, down: int) -> np.ndarray:
    """Anti-aliasing FIR taps for a rational ``up/down`` resampler.

    A Kaiser-windowed sinc (beta 5) of length ``20 * max(up, down) + 1`` with cutoff at
    the lower of the two Nyquist rates and unit gain at DC: the design that
    ``scipy.signal.resample_poly`` uses by default, computed with numpy only.

    Returns
    -------
    ndarray of shape (n_taps,), float64
        Odd length; a single tap of 1 when ``up == down == 1``.
    """
    if up == down == 1:
        return np.ones(1)
    max_rate = max(up, down)
    half_len = 10 * max_rate
    n = np.arange(2 * half_len + 1) - half_len
    cutoff = 1.0 / max_rate  # relative to the Nyquist rate of the upsampled signal
    taps = cutoff * np.sinc(cutoff * n) * np.kaiser(2 * half_len + 1, KAISER_BETA)
    return taps / taps.sum()


def phase_taps(up: int, down: int) -> tuple[np.ndarray, int]:
    """The polyphase filter: ``taps[p, r]`` multiplies input sample ``i_max - r`` for an
    output sample of phase ``p`` (``pos = m * down + half``, ``i_max = pos // up``,
    ``p = pos % up``), and ``half``, the filter's centre (its delay in input samples * up).

    Returns
    -------
    taps : ndarray of shape (up, n_phase_taps), float64 (gain ``up`` included)
    half : int
    """
    taps = lowpass_taps(up, down)
    n_phase_taps = -(-taps.shape[0] // up)
    padded = np.zeros(n_phase_taps * up)
    padded[: taps.shape[0]] = taps * up
    return padded.reshape(n_phase_taps, up).T.copy(), (taps.shape[0] - 1) // 2


def resample(signal: np.ndarray, sfreq: float) -> np.ndarray:
    """Resample a whole signal to 100 Hz (batch path, for files), numpy only: per output
    phase, one product of the taps with a strided view of the signal (no copy), equal to
    ``scipy.signal.resample_poly`` with :func:`lowpass_taps` and to the streaming
    resampler (the tests check both).

    Parameters
    ----------
    signal : ndarray of shape (n_times,)
        Signal at ``sfreq``.
    sfreq : float
        Its rate in Hz (a positive integer value).

    Returns
    -------
    ndarray of shape (ceil(n_times * up / down),), float64
        The signal at 100 Hz; sample ``m`` is the instant ``m / 100`` s.
    """
    up, down = rational_factors(sfreq)
    x = np.asarray(signal, dtype=np.float64).reshape(-1)
    if up == down == 1:
        return x.copy()
    taps, half = phase_taps(up, down)
    k = taps.shape[1]
    n_out = -(-x.shape[0] * up // down)
    last = ((n_out - 1) * down + half) // up  # the newest input any output needs
    padded = np.zeros(k + last)  # input i at k - 1 + i; zeros before and after (as flush)
    padded[k - 1 : k - 1 + x.shape[0]] = x
    out = np.empty(n_out)
    step = padded.strides[0]
    for r in range(min(up, n_out)):  # outputs r, r + up, ...: same phase, inputs down apart
        pos = r * down + half
        rows = len(range(r, n_out, up))
        view = np.lib.stride_tricks.as_strided(
            padded[pos // up :], shape=(rows, k), strides=(down * step, step), writeable=False
        )  # row j: inputs i_max - k + 1 .. i_max of output r + j * up
        out[r::up] = np.einsum("ij,j->i", view, taps[pos % up, ::-1])
    return out


class StreamingResampler:
    """Polyphase resampler to 100 Hz for chunks of any size.

    Holds the last input samples the filter still needs in a preallocated buffer; each
    :meth:`push` returns every output sample whose inputs have all arrived (a latency of
    ``delay_s``), and :meth:`flush` returns the rest as if zeros followed, exactly as the
    batch :func:`resample` does at the end of a signal.

    Parameters
    ----------
    sfreq : float
        Input rate in Hz (a positive integer value).
    """

    def __init__(self, sfreq: float) -> None:
        self.sfreq = float(sfreq)
        self.up, self.down = rational_factors(sfreq)
        # _phases[p, r] multiplies input sample i_max - r for output phase p.
        self._phases, self._half_len = phase_taps(self.up, self.down)
        self._n_phase_taps = self._phases.shape[1]
        self._hist_len = self._n_phase_taps - 1
        self._buf = np.zeros(self._hist_len + 1024)
        # the gathered taps and inputs of one block, kept: allocating them per block (1.7 MB
        # at 4096 outputs) made offline scoring 3x slower in a fresh process (new pages)
        self._taps = np.empty((0, self._n_phase_taps))
        self._inputs = np.empty((0, self._n_phase_taps))
        self.reset()

    @property
    def delay_s(self) -> float:
        """Seconds of input the resampler waits for before it can emit a sample."""
        return self._half_len / self.up / self.sfreq

    def reset(self) -> None:
        """Forget all input; the next sample pushed is input sample 0."""
        self._buf[:] = 0.0
        self._n_in = 0  # input samples received
        self._n_out = 0  # output samples emitted

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Feed input samples; return the output samples they complete.

        Parameters
        ----------
        samples : ndarray of shape (n_times,)
            Signal at ``sfreq``.

        Returns
        -------
        ndarray of shape (n_out,), float64
            Signal at 100 Hz, continuing the previous output.
        """
        samples = np.asarray(samples, dtype=np.float64).reshape(-1)
        n_new = samples.shape[0]
        if self._hist_len + n_new > self._buf.shape[0]:
            grown = np.zeros(2 * (self._hist_len + n_new))
            grown[: self._hist_len] = self._buf[: self._hist_len]
            self._buf = grown
        # _buf[: hist_len] holds inputs n_in - hist_len .. n_in - 1 (zeros before the start).
        self._buf[self._hist_len : self._hist_len + n_new] = samples
        out = self._emit(self._n_in + n_new)
        # keep the newest hist_len samples at the front
        keep = self._buf[n_new : n_new + self._hist_len].copy()
        self._buf[: self._hist_len] = keep
        self._n_in += n_new
        return out

    def flush(self) -> np.ndarray:
        """Emit the remaining output samples (inputs past the end taken as zero) and reset.

        Returns
        -------
        ndarray of shape (n_out,), float64
            After this, the total output length is ``ceil(n_in * up / down)``.
        """
        n_total = -(-self._n_in * self.up // self.down)
        n_missing = n_total - self._n_out
        out = np.zeros(0)
        if n_missing > 0:
            newest_input = ((n_total - 1) * self.down + self._half_len) // self.up
            out = self.push(np.zeros(newest_input + 1 - self._n_in))[:n_missing]
        self.reset()
        return out

    def _emit(self, n_avail: int) -> np.ndarray:
        """Outputs m whose newest input ``(m * down + half_len) // up`` < ``n_avail``, in
        blocks of ``EMIT_BLOCK`` (the gathered taps of a block are the only scratch memory,
        whatever the size of a push)."""
        # largest m with m * down + half_len <= n_avail * up - 1
        m_end = (n_avail * self.up - 1 - self._half_len) // self.down + 1
        if m_end <= self._n_out:
            return np.zeros(0)
        out = np.empty(m_end - self._n_out)
        for m0 in range(self._n_out, m_end, EMIT_BLOCK):
            m = np.arange(m0, min(m0 + EMIT_BLOCK, m_end))
            pos = m * self.down + self._half_len
            i_max = pos // self.up
            phase = pos - i_max * self.up
            # buffer index of input i is i - (self._n_in - self._hist_len)
            idx = (i_max - (self._n_in - self._hist_len))[:, None] - np.arange(self._n_phase_taps)
            taps, inputs = self._scratch(m.shape[0])
            np.take(self._phases, phase, axis=0, out=taps)
            np.take(self._buf, idx, out=inputs)
            at = m0 - self._n_out
            np.einsum("ij,ij->i", taps, inputs, out=out[at : at + m.shape[0]])
        self._n_out = int(m_end)
        return out

    def _scratch(self, rows: int) -> tuple[np.ndarray, np.ndarray]:
        """The first ``rows`` rows of the kept gather buffers (grown when a block needs
        more)."""
        if self._taps.shape[0] < rows:
            self._taps = np.empty((rows, self._n_phase_taps))
            self._inputs = np.empty((rows, self._n_phase_taps))
        return self._taps[:rows], self._inputs[:rows]
