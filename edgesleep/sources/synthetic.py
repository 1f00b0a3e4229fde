"""``synthetic:?seed=0&epochs=60``: a SYNTHETIC night from the generator (demos, tests)."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgesleep.io.edf import find_channel
from edgesleep.sources.base import ArraySource, Param, StreamInfo

DOC = "one channel of a SYNTHETIC night from the generator"
TARGET = None
PARAMS = {
    "seed": Param(int, 0, "the night's seed", 0, 2**31 - 1),
    "epochs": Param(int, 0, "the night's length in epochs (0: a whole night)", 0, 4_000),
    "speed": Param(float, 0.0, "1 real time, 0 as fast as possible", 0.0, 1e6),
    "channel": Param(str, "", "the channel (default: the model's)"),
}


def open_spec(target: str, params: dict[str, Any], channel: str) -> ArraySource:
    return synthetic_source(params["channel"] or channel, params["seed"],
                            params["epochs"] or None, params["speed"] or None)  # fmt: skip


def synthetic_source(
    channel: str, seed: int = 0, n_epochs: int | None = None, speed: float | None = None
) -> ArraySource:
    """Replay one channel of a SYNTHETIC night from the generator (night 0 of ``seed``)."""
    from edgesleep.synth.hypnograms import markov_model
    from edgesleep.synth.psg import CHANNELS, generate_night

    index = find_channel(list(CHANNELS), channel, "the synthetic generator")
    stages = None
    if n_epochs is not None:
        stages = markov_model().sample(np.random.default_rng(seed), margin_epochs=5)[:n_epochs]
    night = generate_night(seed, 0, stages=stages)
    info = StreamInfo(night.sfreq, (CHANNELS[index],), None, f"synthetic seed {seed}", True,
                      clock="the generator's samples")  # fmt: skip
    return ArraySource(night.signals[CHANNELS[index]][:, None], info, speed)
