"""Signal processing shared by training and the device: the one STFT and the resamplers.

Importing this package imports numpy only, and so does calling it: no scipy at run time.
"""

from edgesleep.dsp.resampling import StreamingResampler, rational_factors, resample
from edgesleep.dsp.stft import (
    EPOCH_S,
    EPOCH_SAMPLES,
    N_FRAMES,
    N_FREQS,
    SFREQ,
    StreamingSTFT,
    stft_epochs,
    stft_signal,
)

__all__ = [
    "EPOCH_S",
    "EPOCH_SAMPLES",
    "N_FRAMES",
    "N_FREQS",
    "SFREQ",
    "StreamingResampler",
    "StreamingSTFT",
    "rational_factors",
    "resample",
    "stft_epochs",
    "stft_signal",
]
