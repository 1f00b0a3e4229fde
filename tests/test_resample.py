import numpy as np
import pytest

from edgesleep.dsp import resampling as rs

pytestmark = pytest.mark.parity  # also run on (emulated) aarch64: bench/arm/run.sh

RATES = [100, 128, 200, 250, 256, 360, 500, 512]


def _feed(r: rs.StreamingResampler, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = []
    pos = 0
    while pos < x.shape[0]:
        n = int(rng.integers(1, 3 * int(r.sfreq)))
        out.append(r.push(x[pos : pos + n]))
        pos += n
    out.append(r.flush())
    return np.concatenate(out)


@pytest.mark.parametrize("sfreq", RATES)
def test_streaming_equals_batch(sfreq: int) -> None:
    rng = np.random.default_rng(sfreq)
    x = rng.standard_normal(sfreq * 61 + 3)
    batch = rs.resample(x, sfreq)
    assert batch.shape[0] == -(-x.shape[0] * 100 // sfreq)
    stream = _feed(rs.StreamingResampler(sfreq), x, rng)
    assert stream.shape == batch.shape
    np.testing.assert_allclose(stream, batch, atol=1e-10)


@pytest.mark.parametrize("sfreq", RATES)
def test_batch_equals_scipy_resample_poly(sfreq: int) -> None:
    """The numpy resampler is scipy's polyphase filter with the same taps (scipy is only
    the reference here: the runtime does not depend on it)."""
    from scipy.signal import resample_poly

    for n in (sfreq * 37 + 5, 3, 1):
        x = np.random.default_rng(sfreq + n).standard_normal(n)
        up, down = rs.rational_factors(sfreq)
        ref = resample_poly(x, up, down, window=rs.lowpass_taps(up, down)) if up != down else x
        np.testing.assert_allclose(rs.resample(x, sfreq), ref, atol=1e-10)


@pytest.mark.parametrize("sfreq", RATES)
def test_delay_is_compensated(sfreq: int) -> None:
    """Output sample m is the instant m / 100 s: a 3 Hz sine stays in phase."""
    t_in = np.arange(sfreq * 40) / sfreq
    x = np.sin(2 * np.pi * 3.0 * t_in)
    r = rs.StreamingResampler(sfreq)
    y = np.concatenate([r.push(x[: len(x) // 2]), r.push(x[len(x) // 2 :]), r.flush()])
    t_out = np.arange(y.shape[0]) / 100.0
    inner = slice(200, y.shape[0] - 200)  # away from the zero-padded ends
    np.testing.assert_allclose(y[inner], np.sin(2 * np.pi * 3.0 * t_out[inner]), atol=2e-3)


def test_taps_equal_scipy_design() -> None:
    from scipy.signal import firwin

    for sfreq in RATES[1:]:
        up, down = rs.rational_factors(sfreq)
        m = max(up, down)
        ref = firwin(20 * m + 1, 1.0 / m, window=("kaiser", 5.0))
        np.testing.assert_allclose(rs.lowpass_taps(up, down), ref, atol=1e-12)


def test_aliasing_is_suppressed() -> None:
    """A 70 Hz tone at 500 Hz would alias to 30 Hz without the low-pass."""
    t = np.arange(500 * 20) / 500
    y = rs.resample(np.sin(2 * np.pi * 70 * t), 500)
    assert np.abs(y[200:-200]).max() < 1e-3


@pytest.mark.parametrize("sfreq", [99.5, 0, -100, float("nan"), 100_003])
def test_bad_rates_are_refused(sfreq: float) -> None:
    with pytest.raises(ValueError, match="cannot be resampled|polyphase"):
        rs.StreamingResampler(sfreq)


def test_identity_rate_passes_through() -> None:
    x = np.arange(10.0)
    r = rs.StreamingResampler(100)
    np.testing.assert_array_equal(np.concatenate([r.push(x), r.flush()]), x)
    assert r.delay_s == 0.0
