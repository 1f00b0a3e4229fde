"""Resampling from an integer device rate to the model rate (100 Hz).

One filter design, two paths:

- :func:`resample` (batch, files): ``scipy.signal.resample_poly`` with our taps.
- :class:`StreamingResampler` (device): the same polyphase filter applied chunk by chunk,
  filter state carried across chunks, numpy only (scipy is never imported on the
  streaming path).

Both run the filter as :class:`GroupFilter`: consecutive outputs share one window of
inputs, so a block of outputs is one matrix product with a strided view of the input.

Both compensate the filter's group delay the same way: output sample ``m`` is the
filtered signal at input time ``m * down / up`` (``m / 100`` s), so sample ``m`` of the
streaming output is the same instant as sample ``m`` of the batch output, and after
:meth:`StreamingResampler.flush` the two outputs are equal sample for sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd

import numpy as np

TARGET_SFREQ = 100
MAX_RATIO = 1024  # largest up or down factor we design a filter for
KAISER_BETA = 5.0  # scipy.signal.resample_poly's default window ("kaiser", 5.0)
# inputs per matrix product (groups x width): bounds the scratch memory and keeps each
# product under OpenBLAS's threading thresholds (m n k < 262144 for a matrix product, m k <
# 9216 for a matrix-vector one), so it runs on the calling thread: two BLAS threads
# spinning beside the stager's other work cost more CPU than they save
BLOCK_INPUTS = 8192
MIN_GROUP = 16  # outputs per group of the matrix product at least (see GroupFilter)


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


@dataclass(frozen=True)
class GroupFilter:
    """The polyphase filter as one matrix over groups of ``outputs`` consecutive outputs
    (a multiple of ``up``, at least ``MIN_GROUP``).

    Output ``g * outputs + j`` is ``matrix[j] @ x[g * stride + first : g * stride + first +
    width]`` (``x``: the input, zeros before sample 0 and after its end; ``stride`` =
    ``down * outputs / up``): the outputs of a group share one window of inputs, and the
    windows of consecutive groups are ``stride`` inputs apart. So any number of groups is
    one matrix product with a strided view of the input (no gather, no per-phase loop).
    The rows hold the taps of :func:`phase_taps` (zeros where a row's own inputs end): the
    same filter, the same output instants. Groups of several ``up`` keep the windows from
    overlapping much when ``up`` is small (200 Hz: up 1, down 2): the copied windows are
    then about the input's size, not ``width / down`` times it.

    Attributes
    ----------
    up, down : int
    matrix_t : ndarray of shape (width, outputs), float64, the matrix transposed (C order)
    first : int
        The input index of group 0's window (negative: zeros before the signal).
    width : int
    half : int
        The filter's centre (its delay in input samples * up), as in :func:`phase_taps`.
    outputs, stride : int
        Outputs per group, inputs between consecutive groups' windows.
    """

    up: int
    down: int
    matrix_t: np.ndarray
    first: int
    width: int
    half: int
    outputs: int
    stride: int

    @classmethod
    def design(cls, up: int, down: int) -> GroupFilter:
        taps, half = phase_taps(up, down)
        k = taps.shape[1]
        repeat = -(-MIN_GROUP // up)
        j = np.arange(up * repeat)
        newest = (j * down + half) // up  # each row's newest input, less g * stride
        phase = (j * down + half) % up
        width = int(newest[-1] - newest[0] + k)
        matrix = np.zeros((j.size, width))
        for row in range(j.size):
            at = int(newest[row] - newest[0])
            matrix[row, at : at + k] = taps[phase[row], ::-1]
        return cls(up, down, np.ascontiguousarray(matrix.T), int(newest[0] - (k - 1)), width,
                   half, up * repeat, down * repeat)  # fmt: skip

    @property
    def block(self) -> int:
        """Groups per matrix product (``BLOCK_INPUTS`` inputs)."""
        return max(1, BLOCK_INPUTS // self.width)

    def windows(self, x: np.ndarray, start: int, n: int) -> np.ndarray:
        """The input windows of ``n`` groups, the first at ``x[start]``: a strided view
        (n, width) of ``x`` (contiguous float64)."""
        step = x.strides[0]
        return np.ndarray((n, self.width), np.float64, x, start * step, (self.stride * step, step))

    def apply(self, windows: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> None:
        """The outputs of the groups of ``windows`` (n_groups, width: a strided view from
        :meth:`windows`) into ``out`` (n_groups, outputs): the windows copied into
        ``scratch`` (at least n_groups x width), then one BLAS matrix product (numpy
        multiplies overlapping strided rows without BLAS, 5-10x slower)."""
        n = windows.shape[0]
        block = scratch[: n * self.width].reshape(n, self.width)
        np.copyto(block, windows)
        np.matmul(block, self.matrix_t, out=out)


def resample(signal: np.ndarray, sfreq: float) -> np.ndarray:
    """Resample a whole signal to 100 Hz (batch path, for files), numpy only: blocks of
    output groups, each one matrix product with a strided view of the signal
    (:class:`GroupFilter`), equal to ``scipy.signal.resample_poly`` with
    :func:`lowpass_taps` and to the streaming resampler (the tests check both).

    Parameters
    ----------
    signal : ndarray of shape (n_times,)
        Signal at ``sfreq``, finite.
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
    f = GroupFilter.design(up, down)
    n_out = -(-x.shape[0] * up // down)
    n_groups = -(-n_out // f.outputs)
    lead = -f.first  # zeros before input 0: group g's window starts at padded[g * stride]
    padded = np.zeros(max((n_groups - 1) * f.stride + f.width, lead + x.shape[0]))
    padded[lead : lead + x.shape[0]] = x
    out = np.empty(n_groups * f.outputs)
    block, per = f.block, f.outputs
    scratch = np.empty(min(block, n_groups) * f.width)
    for g0 in range(0, n_groups, block):
        n = min(block, n_groups - g0)
        f.apply(f.windows(padded, g0 * f.stride, n), out[g0 * per : (g0 + n) * per].reshape(n, per),
                scratch)  # fmt: skip
    return out[:n_out]


class StreamingResampler:
    """Polyphase resampler to 100 Hz for chunks of any size.

    Holds the inputs the next outputs still need in a preallocated buffer; each
    :meth:`push` returns every output sample whose inputs have all arrived (a latency of
    ``delay_s``), as the groups of :class:`GroupFilter` they fall in (one matrix product
    per push; the outputs of a group already emitted or not yet complete are computed and
    dropped), and :meth:`flush` returns the rest as if zeros followed, exactly as the batch
    :func:`resample` does at the end of a signal. Inputs must be finite (the stager repairs
    them first): a zero weight times NaN is NaN.

    Parameters
    ----------
    sfreq : float
        Input rate in Hz (a positive integer value).
    """

    def __init__(self, sfreq: float) -> None:
        self.sfreq = float(sfreq)
        self.up, self.down = rational_factors(sfreq)
        self._f = GroupFilter.design(self.up, self.down)
        self._margin = self._f.width + self._f.stride  # zeros past the newest input
        self._buf = np.zeros(4 * self._margin + 1024)
        self._windows = self._view_windows()
        self._block = self._f.block
        self._scratch = np.empty(self._block * self._f.width)  # the windows of a block
        self.reset()

    @property
    def delay_s(self) -> float:
        """Seconds of input the resampler waits for before it can emit a sample."""
        return self._f.half / self.up / self.sfreq

    def _view_windows(self) -> np.ndarray:
        """Every group window that starts in the buffer: a strided view (the buffer's
        start is always a group window's start)."""
        f = self._f
        return f.windows(self._buf, 0, (self._buf.shape[0] - f.width) // f.stride + 1)

    def reset(self) -> None:
        """Forget all input; the next sample pushed is input sample 0."""
        self._buf[:] = 0.0
        self._base = self._f.first  # the input index of _buf[0]
        self._n_in = 0  # input samples received
        self._n_out = 0  # output samples emitted

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Feed input samples; return the output samples they complete.

        Parameters
        ----------
        samples : ndarray of shape (n_times,)
            Signal at ``sfreq``, finite.

        Returns
        -------
        ndarray of shape (n_out,), float64
            Signal at 100 Hz, continuing the previous output.
        """
        n = len(samples)  # (converted by the copy into the buffer below)
        at = self._n_in - self._base
        end = at + n
        if end + self._margin > self._buf.shape[0]:
            grown = np.zeros(2 * (end + self._margin))
            grown[:at] = self._buf[:at]
            self._buf = grown
            self._windows = self._view_windows()
        self._buf[at:end] = samples
        self._buf[end : end + self._margin] = 0.0  # what the last group reads past the input
        self._n_in += n
        # outputs m whose newest input (m * down + half) // up has arrived
        return self._emit((self._n_in * self.up - 1 - self._f.half) // self.down + 1)

    def inputs_for(self, n_out: int) -> int:
        """Input samples still to come before ``n_out`` more output samples are emitted."""
        m_end = self._n_out + n_out  # output m needs input (m * down + half) // up
        newest = ((m_end - 1) * self.down + self._f.half) // self.up
        return max(0, newest + 1 - self._n_in)

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
            newest_input = ((n_total - 1) * self.down + self._f.half) // self.up
            out = self.push(np.zeros(newest_input + 1 - self._n_in))[:n_missing]
        self.reset()
        return out

    def _emit(self, m_end: int) -> np.ndarray:
        """Outputs ``_n_out .. m_end - 1``: the groups they fall in, in blocks of
        ``GroupFilter.block`` groups; then the inputs no later output needs are dropped."""
        if m_end <= self._n_out:
            return np.zeros(0)
        f = self._f
        per, stride = f.outputs, f.stride
        g0, g1 = self._n_out // per, -(-m_end // per)
        out = np.empty((g1 - g0) * per)
        first = (g0 * stride + f.first - self._base) // stride  # into the cached view
        if g1 - g0 <= self._block:  # the usual push: one product
            f.apply(self._windows[first : first + g1 - g0], out.reshape(g1 - g0, per),
                    self._scratch)  # fmt: skip
        else:
            for b0 in range(0, g1 - g0, self._block):
                n = min(self._block, g1 - g0 - b0)
                f.apply(self._windows[first + b0 : first + b0 + n],
                        out[b0 * per : (b0 + n) * per].reshape(n, per), self._scratch)  # fmt: skip
        done = out[self._n_out - g0 * per : m_end - g0 * per]
        self._n_out = m_end
        base = (m_end // per) * stride + f.first  # the next group's window
        if base > self._base:
            keep = self._n_in - base
            self._buf[:keep] = self._buf[base - self._base : base - self._base + keep]
            self._base = base
        return done
