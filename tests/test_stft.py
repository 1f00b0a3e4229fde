import numpy as np
import pytest

from edgesleep.dsp import stft

pytestmark = pytest.mark.parity  # also run on (emulated) aarch64: bench/arm/run.sh


def _night(n_epochs: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n_epochs * stft.EPOCH_SAMPLES) / stft.SFREQ
    return 30 * np.sin(2 * np.pi * 10 * t) + 20 * rng.standard_normal(t.shape)


def test_batch_shape_and_definition() -> None:
    x = _night(3)
    images = stft.stft_signal(x)
    assert images.shape == (3, 29, 129)
    assert images.dtype == np.float32
    # frame 5 of epoch 1, computed by hand from the definition
    frame = x[3000 + 500 : 3000 + 700] * np.hamming(200)
    power = np.abs(np.fft.rfft(frame, 256)) ** 2
    np.testing.assert_allclose(images[1, 5], 10 * np.log10(power + stft.POWER_FLOOR), atol=1e-4)
    # the 10 Hz sine peaks at bin 10 / (100 / 256) = 25.6
    assert int(np.argmax(images[0].mean(axis=0))) in (25, 26)


def test_matches_scipy_with_symmetric_window_and_no_padding() -> None:
    from scipy.signal import spectrogram

    x = _night(1)
    _, _, sxx = spectrogram(
        x,
        window=np.hamming(200),
        nperseg=200,
        noverlap=100,
        nfft=256,
        detrend=False,
        scaling="spectrum",
        mode="psd",
    )
    # scipy's "spectrum" scaling divides by sum(window)**2 and doubles one-sided bins
    scale = np.hamming(200).sum() ** 2 / np.r_[1, np.full(127, 2.0), 1]
    ref = 10 * np.log10(sxx.T * scale + stft.POWER_FLOOR)
    np.testing.assert_allclose(stft.stft_signal(x)[0], ref, atol=1e-3)


def test_bad_shape() -> None:
    with pytest.raises(ValueError, match=r"\(n_epochs, 3000\)"):
        stft.stft_epochs(np.zeros((2, 2999)))


def test_frames_appear_as_their_last_sample_arrives() -> None:
    s = stft.StreamingSTFT()
    x = _night(2)
    counts = []
    for i in range(3000):
        images = s.push(x[i : i + 1])
        counts.append(s.n_frames if not images else 29)
    counts_arr = np.array(counts)
    assert counts_arr[198] == 0  # after 199 samples
    assert counts_arr[199] == 1  # after sample 200 exactly one frame
    assert counts_arr[298] == 1 and counts_arr[299] == 2
    expected = np.minimum(29, np.maximum(0, (np.arange(1, 3001) - 200) // 100 + 1))
    np.testing.assert_array_equal(counts_arr, expected)
    assert s.n_epochs == 1 and s.n_frames == 0
    s.push(x[3000:3250])
    assert s.n_frames == 1
    np.testing.assert_allclose(s.frames[0], stft.stft_signal(x)[1, 0], atol=1e-4)
    # frames read early and those computed when the epoch completes make one image
    (image,) = s.push(x[3250:6000])
    np.testing.assert_allclose(image, stft.stft_signal(x)[1], atol=1e-4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_streaming_equals_batch_for_random_chunks(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = _night(7, seed)
    s = stft.StreamingSTFT()
    images = []
    pos = 0
    while pos < x.shape[0]:
        # from 1 sample to several epochs
        n = int(rng.choice([1, 2, 99, 100, 101, 2999, 3001, 9000])) + int(rng.integers(0, 50))
        images += s.push(x[pos : pos + n])
        pos += n
    assert len(images) == 7 and s.n_epochs == 7
    np.testing.assert_allclose(np.stack(images), stft.stft_signal(x), atol=1e-4, rtol=0)


def test_reset_drops_partial_epoch() -> None:
    s = stft.StreamingSTFT()
    x = _night(1)
    s.push(x[:1234])
    s.reset()
    (image,) = s.push(x)
    np.testing.assert_allclose(image, stft.stft_signal(x)[0], atol=1e-4)


def test_flat_line_is_finite() -> None:
    assert np.isfinite(stft.stft_epochs(np.zeros((1, 3000)))).all()
