"""Stage sequences for synthetic nights: the real Sleep-EDF ones and a Markov simulator.

The simulator is a Markov chain on (stage, REM in the last 10 min) whose transition
probabilities depend on the hour since sleep onset, estimated from the 39 shipped SC-20
hypnograms: N3 comes early and REM late, and REM periods hold together instead of
fragmenting, as in real nights. Sleep-period lengths are drawn from the same hypnograms.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from edgesleep.dsp import EPOCH_S
from edgesleep.io.hypnogram import read_hypnogram, sleep_window_epochs
from edgesleep.io.sleepedf import records
from edgesleep.stages import N1, REM, UNSCORED, W

EPOCHS_PER_HOUR = int(3600 / EPOCH_S)
N_HOUR_BINS = 8  # the last bin holds every hour from the 8th on
REM_MEMORY_EPOCHS = 20  # "REM recently" = REM within the last 10 min


@cache
def real_hypnograms() -> tuple[np.ndarray, ...]:
    """The 39 SC-20 hypnograms, each cropped to 30 min of wake around sleep.

    Returns
    -------
    tuple of ndarray of shape (n_epochs,), int8
        YASA stage integers (unscored epochs kept as -2).
    """
    out = []
    for rec in records().values():
        stages = read_hypnogram(rec.hypnogram_path)
        out.append(stages[sleep_window_epochs(stages)])
    return tuple(out)


@dataclass(frozen=True)
class MarkovNightModel:
    """Hour-dependent Markov chain of sleep stages.

    Attributes
    ----------
    transitions : ndarray of shape (N_HOUR_BINS, 2, 5, 5)
        P(next stage | hour since sleep onset, REM recently, stage), rows sum to 1.
    sleep_period_epochs : ndarray of shape (n_nights,)
        Sleep period lengths (first to last sleep epoch) seen in the real nights.
    """

    transitions: np.ndarray
    sleep_period_epochs: np.ndarray

    @classmethod
    def fit(cls, hypnograms: tuple[np.ndarray, ...]) -> MarkovNightModel:
        """Count transitions per hour since sleep onset (add-one smoothing)."""
        counts = np.ones((N_HOUR_BINS, 2, 5, 5))
        periods = []
        for stages in hypnograms:
            asleep = np.flatnonzero(stages > W)
            onset, end = asleep[0], asleep[-1]
            periods.append(end - onset + 1)
            for i in range(onset, end):
                a, b = stages[i], stages[i + 1]
                if a < 0 or b < 0:
                    continue
                hour = min((i - onset) // EPOCHS_PER_HOUR, N_HOUR_BINS - 1)
                recent = int(np.any(stages[max(onset, i - REM_MEMORY_EPOCHS) : i] == REM))
                counts[hour, recent, a, b] += 1
        return cls(counts / counts.sum(axis=3, keepdims=True), np.array(periods))

    def sample(self, rng: np.random.Generator, margin_epochs: int = 60) -> np.ndarray:
        """One night: wake, sleep onset in N1, the chain for a real-length sleep period,
        wake until its end, and ``margin_epochs`` of wake on each side.

        Returns
        -------
        ndarray of shape (n_epochs,), int8
        """
        n_sleep = int(rng.choice(self.sleep_period_epochs))
        stages = np.empty(n_sleep, dtype=np.int8)
        stages[0] = N1
        last_rem = -REM_MEMORY_EPOCHS - 1
        for i in range(1, n_sleep):
            hour = min((i - 1) // EPOCHS_PER_HOUR, N_HOUR_BINS - 1)
            recent = int(i - 1 - last_rem < REM_MEMORY_EPOCHS)
            stages[i] = rng.choice(5, p=self.transitions[hour, recent, stages[i - 1]])
            if stages[i - 1] == REM:
                last_rem = i - 1
        last_sleep = np.flatnonzero(stages > W)[-1]
        wake = np.full(margin_epochs, W, dtype=np.int8)
        return np.concatenate([wake, stages[: last_sleep + 1], wake])


@cache
def markov_model() -> MarkovNightModel:
    """The model fitted to the shipped SC-20 hypnograms."""
    return MarkovNightModel.fit(real_hypnograms())


def rem_periods(stages: np.ndarray, min_gap_epochs: int = 30) -> int:
    """Number of REM periods: REM epochs merged when less than ``min_gap_epochs`` apart."""
    rem = np.flatnonzero(stages == REM)
    if rem.size == 0:
        return 0
    return 1 + int(np.count_nonzero(np.diff(rem) > min_gap_epochs))


def render_stages(stages: np.ndarray) -> np.ndarray:
    """Stages to draw the signal from: unscored epochs take the previous scored stage
    (W at the start). The annotations keep them unscored."""
    out = stages.copy()
    previous = W
    for i, stage in enumerate(out):
        if stage == UNSCORED or stage < 0:
            out[i] = previous
        else:
            previous = stage
    return out
