"""Night summary, after YASA's ``sleep_statistics``."""

from __future__ import annotations

import numpy as np

from edgesleep.dsp import EPOCH_S
from edgesleep.stages import class_labels


def sleep_statistics(stages: np.ndarray, n_classes: int = 5) -> dict[str, float]:
    """Summary statistics of one hypnogram.

    Definitions (YASA's): TIB, time in bed = all epochs; SPT, sleep period = first to last
    sleep epoch; TST = sleep epochs (any class but W, scored); SE = TST / TIB;
    SOL, sleep-onset latency = start to first sleep epoch; WASO = wake within SPT;
    Lat_REM = sleep onset to first REM epoch (NaN without REM); awakenings = changes from
    sleep to wake within SPT (a count). Per class: minutes, and
    percent of TST (``%W`` is percent of TIB). Artefact and unscored epochs count in TIB
    only.

    Parameters
    ----------
    stages : ndarray of shape (n_epochs,)
        Class indices of an ``n_classes`` set (W = 0, REM = n_classes - 1), negative codes
        allowed.
    n_classes : {3, 4, 5}

    Returns
    -------
    dict of str to float
        Durations in minutes, efficiency and percentages in %.
    """
    stages = np.asarray(stages)
    labels = class_labels(n_classes)
    epoch_min = EPOCH_S / 60
    sleep = stages > 0
    out: dict[str, float] = {"TIB": stages.shape[0] * epoch_min}
    if not sleep.any():
        out.update(
            {
                "SPT": 0.0,
                "TST": 0.0,
                "SE": 0.0,
                "SOL": float("nan"),
                "WASO": 0.0,
                "Lat_REM": float("nan"),
                "awakenings": 0.0,
            }
        )
    else:
        onset, end = np.flatnonzero(sleep)[[0, -1]]
        spt = stages[onset : end + 1]
        rem = np.flatnonzero(stages == n_classes - 1)
        out.update(
            {
                "SPT": spt.shape[0] * epoch_min,
                "TST": float(sleep.sum()) * epoch_min,
                "SE": 100 * float(sleep.sum()) / stages.shape[0],
                "SOL": onset * epoch_min,
                "WASO": float((spt == 0).sum()) * epoch_min,
                "Lat_REM": (rem[0] - onset) * epoch_min if rem.size else float("nan"),
                "awakenings": float(np.sum((spt[1:] == 0) & (spt[:-1] > 0))),
            }
        )
    tst = out["TST"]
    for cls, name in enumerate(labels):
        minutes = float((stages == cls).sum()) * epoch_min
        out[name] = minutes
        base = out["TIB"] if cls == 0 else tst
        out[f"%{name}"] = 100 * minutes / base if base else 0.0
    return out
