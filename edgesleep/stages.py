"""Sleep-stage encoding: the one definition used everywhere in edgesleep.

Stages are YASA's integers: W=0, N1=1, N2=2, N3=3, REM=4, artefact=-1, unscored=-2.
Models predict one of three class sets, indexed 0..n_classes-1:

- 5 classes: W, N1, N2, N3, REM (the stage integers themselves)
- 4 classes: W, Light (N1+N2), Deep (N3), REM
- 3 classes: W, NREM (N1+N2+N3), REM

Negative codes (artefact, unscored) pass through every conversion unchanged.
"""

from __future__ import annotations

import numpy as np

W, N1, N2, N3, REM = 0, 1, 2, 3, 4
ARTEFACT = -1
UNSCORED = -2
MAX_NIGHT_S = 86_400.0  # the longest recording a night's file may describe (from its start)

STAGE_NAMES: dict[int, str] = {
    W: "W",
    N1: "N1",
    N2: "N2",
    N3: "N3",
    REM: "REM",
    ARTEFACT: "ART",
    UNSCORED: "UNS",
}

CLASS_LABELS: dict[int, tuple[str, ...]] = {
    5: ("W", "N1", "N2", "N3", "REM"),
    4: ("W", "Light", "Deep", "REM"),
    3: ("W", "NREM", "REM"),
}

# Stage integer (0..4) -> class index, per class set.
_TO_CLASS: dict[int, np.ndarray] = {
    5: np.array([0, 1, 2, 3, 4]),
    4: np.array([0, 1, 1, 2, 3]),
    3: np.array([0, 1, 1, 1, 2]),
}

# A stage that stands for each class of a set (to map one class set onto a coarser one).
_CLASS_STAGES: dict[int, tuple[int, ...]] = {
    5: (W, N1, N2, N3, REM),
    4: (W, N2, N3, REM),
    3: (W, N2, REM),
}

# Annotation strings (lower-cased, stripped) -> stage. R&K stage 4 merges into N3;
# movement time and "?" are unscored (the Sleep-EDF / SeqSleepNet convention).
_STRING_TO_STAGE: dict[str, int] = {
    "w": W,
    "wake": W,
    "0": W,
    "1": N1,
    "n1": N1,
    "s1": N1,
    "2": N2,
    "n2": N2,
    "s2": N2,
    "3": N3,
    "4": N3,
    "n3": N3,
    "s3": N3,
    "s4": N3,
    "r": REM,
    "rem": REM,
    "5": REM,
    "?": UNSCORED,
    "mt": UNSCORED,
    "m": UNSCORED,
    "movement time": UNSCORED,
    "movement": UNSCORED,
    "unscored": UNSCORED,
    "art": ARTEFACT,
    "artefact": ARTEFACT,
    "artifact": ARTEFACT,
}

_PREFIXES = ("sleep stage ", "sleep_stage_", "stage ")


def stage_from_string(label: str) -> int:
    """Parse one stage annotation into a stage integer.

    Accepts Sleep-EDF annotations ("Sleep stage W", "Sleep stage 4", "Sleep stage ?",
    "Movement time"), R&K codes as in slpdb ("W", "1".."4", "R", "MT", "M") and AASM
    names ("N1", "REM"). R&K stage 4 becomes N3; movement and "?" become unscored.

    Parameters
    ----------
    label : str
        The annotation text.

    Returns
    -------
    int
        The YASA stage integer.

    Raises
    ------
    ValueError
        If the label is not a known stage annotation.
    """
    key = label.strip().lower()
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            key = key[len(prefix) :].strip()
            break
    if key not in _STRING_TO_STAGE:
        raise ValueError(
            f"unknown stage annotation {label!r}; expected one of "
            f"{sorted(set(_STRING_TO_STAGE))} (optionally prefixed by 'Sleep stage ')"
        )
    return _STRING_TO_STAGE[key]


def to_classes(stages: np.ndarray, n_classes: int) -> np.ndarray:
    """Map stage integers to class indices of a 5-, 4- or 3-class set.

    Parameters
    ----------
    stages : ndarray of shape (n_epochs,)
        YASA stage integers; negative codes (artefact, unscored) are kept as they are.
    n_classes : {5, 4, 3}
        The class set, see :data:`CLASS_LABELS`.

    Returns
    -------
    ndarray of shape (n_epochs,), int8
        Class indices in 0..n_classes-1, or the negative code where the input had one.
    """
    if n_classes not in _TO_CLASS:
        raise ValueError(f"n_classes must be one of {sorted(_TO_CLASS)}, got {n_classes}")
    stages = np.asarray(stages)
    if stages.size and (stages.max() > REM or stages.min() < UNSCORED):
        raise ValueError(f"stage codes must lie in [{UNSCORED}, {REM}], got {np.unique(stages)}")
    out = stages.astype(np.int8, copy=True)
    scored = stages >= 0
    out[scored] = _TO_CLASS[n_classes][stages[scored]]
    return out


def class_labels(n_classes: int) -> tuple[str, ...]:
    """Names of the classes of a class set, e.g. ``("W", "NREM", "REM")`` for 3."""
    if n_classes not in CLASS_LABELS:
        raise ValueError(f"n_classes must be one of {sorted(CLASS_LABELS)}, got {n_classes}")
    return CLASS_LABELS[n_classes]


def class_map(from_classes: int, to_classes_: int) -> np.ndarray:
    """Index map from one class set onto an equal or coarser one, e.g. 5 -> 3 is
    ``[0, 1, 1, 1, 2]`` (W, N1, N2, N3, REM -> W, NREM, REM).

    Raises
    ------
    ValueError
        If the target set is finer than the source (3 -> 4, 3 -> 5, 4 -> 5).
    """
    if to_classes_ > from_classes:
        raise ValueError(f"cannot map {from_classes} classes onto the finer set of {to_classes_}")
    return to_classes(np.array(_CLASS_STAGES[from_classes]), to_classes_).astype(np.int64)


def collapse_labels(labels: np.ndarray, from_classes: int, to_classes_: int) -> np.ndarray:
    """Class indices of one class set mapped onto an equal or coarser one (:func:`class_map`);
    negative codes (artefact, unscored) are kept.

    Parameters
    ----------
    labels : ndarray of shape (n_epochs,), class indices of ``from_classes``

    Returns
    -------
    ndarray of shape (n_epochs,), int8
    """
    labels = np.asarray(labels)
    table = class_map(from_classes, to_classes_)
    return np.where(labels >= 0, table[np.maximum(labels, 0)], labels).astype(np.int8)


def collapse_matrix(from_classes: int, to_classes_: int) -> np.ndarray:
    """One-hot matrix of :func:`class_map`, shape (from_classes, to_classes_), float32:
    probabilities @ matrix sums the probabilities of merged classes."""
    matrix = np.zeros((from_classes, to_classes_), dtype=np.float32)
    matrix[np.arange(from_classes), class_map(from_classes, to_classes_)] = 1.0
    return matrix
