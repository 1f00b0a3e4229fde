"""The input-kind registry: what a model's input image is and how it is made from a signal.

An input kind is defined once, in its own module, as an :class:`InputKind`: the image shape,
the batch function used for training and offline scoring, the streaming front end the device
runs, and the metadata written into every export (the runtime refuses a model whose
metadata differs from what it computes). Built-in kinds: ``stft`` (:mod:`edgesleep.dsp.stft`)
and ``beats`` (:mod:`edgesleep.dsp.beats`). Adding a kind is one module that builds an
:class:`InputKind`, plus its line in ``BUILTIN`` (or :func:`register` at run time). Nothing
outside this registry compares kind names.

numpy only; the built-in modules are imported when a kind is first looked up.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from edgesleep.errors import UsageError

HEART = "heart"  # the channel of a model trained on heart series of any source (pooled)
SIGNAL_OF_SERIES = "ECG"  # the EDF channel such a model reads when given a recording

# name -> module that defines ``KIND``: one line per built-in kind
BUILTIN = {"stft": "edgesleep.dsp.stft", "beats": "edgesleep.dsp.beats"}
_KINDS: dict[str, InputKind] = {}


class ImageStream(Protocol):
    """A streaming front end: 100-Hz samples in, ``(epoch index, image)`` out as each
    epoch's image is complete (possibly later than the epoch's last sample).

    Optionally ``samples_due() -> int``: the samples still to come before the next image
    can be complete. The stager then keeps a stream's samples until that many have come
    and processes them as one block (a stream without it gets every packet at once).
    """

    def reset(self) -> None: ...

    def push(self, y: np.ndarray) -> list[tuple[int, np.ndarray]]: ...

    def flush(self, n_samples: int) -> list[tuple[int, np.ndarray]]:
        """End of stream after ``n_samples`` samples at 100 Hz: the images still held."""
        ...


class SeriesStream(Protocol):
    """A streaming front end for a time series of events (beat times, heart-rate
    samples): ``(time_s, values)`` in, ``(epoch index, image)`` out as epochs complete.
    Made with the epoch its grid starts at (<= 0: the epochs before 0 fill the context
    and are not returned)."""

    def reset(self) -> None: ...

    def push(
        self, time_s: np.ndarray, values: np.ndarray | None, horizon_s: float
    ) -> list[tuple[int, np.ndarray]]:
        """Add events (non-decreasing times, s from the stream start; every event before
        ``horizon_s`` pushed); return the images of the epochs that end by ``horizon_s``."""
        ...


@dataclass(frozen=True)
class SeriesSource:
    """A time series an input kind can be made from instead of a signal.

    Attributes
    ----------
    name : e.g. "beats" (R-peak times) or "heart-rate" (beats/min samples)
    help : one line for ``--help``
    images : offline function, (time_s (n,), values (n,) or None, n_epochs or None) ->
        images (n_epochs, n_frames, n_freqs) (default n_epochs: the whole epochs that end by the
        last event); times in s from the recording start, any order
    stream : a new streaming front end (:class:`SeriesStream`) that makes the same images,
        given the epoch its grid starts at (<= 0)
    keep : (time_s (n,), values (n,) or None) -> boolean mask (n,) of the usable events
        (finite times; plausible values)
    hold_s : how long one event stands for data: a 2-Hz grid time whose last event is
        older than this is missing (a hole: flagged ``gap``); see
        :class:`edgesleep.stager.SeriesFrontEnd`
    """

    name: str
    help: str
    images: Callable[[np.ndarray, np.ndarray | None, int | None], np.ndarray]
    stream: Callable[[int], SeriesStream]
    keep: Callable[[np.ndarray, np.ndarray | None], np.ndarray]
    hold_s: float


@dataclass(frozen=True)
class InputKind:
    """One kind of model input.

    Attributes
    ----------
    name : registry key, stored in checkpoints and export metadata
    help : one line for ``--help``
    image_shape : (n_frames, n_freqs) of one epoch's image
    spectral : whether the image's second axis is frequency over 0-50 Hz (a filterbank
        over it makes sense), or another axis (then models size their filterbank to it)
    images : batch function, 100-Hz signal of shape (n_epochs * 3000,) in µV ->
        images of shape (n_epochs, n_frames, n_freqs), float32
    stream : a new streaming front end (:class:`ImageStream`) that makes the same images
    metadata : what this runtime computes, as export metadata (``kind`` is ``name``)
    series : the time series (beyond a signal) the same images can be made from, by name;
        a model of this kind then stages from any of them
    epoch_local : whether an epoch's image depends on that epoch's 30 s only (then epochs
        cut out of a recording one by one, e.g. MASS's expanded 20-s epochs, give the same
        images as a continuous recording)
    """

    name: str
    help: str
    image_shape: tuple[int, int]
    spectral: bool
    images: Callable[[np.ndarray], np.ndarray]
    stream: Callable[[], ImageStream]
    metadata: dict[str, Any]
    series: dict[str, SeriesSource] = field(default_factory=dict)
    epoch_local: bool = False

    def spec(self) -> dict[str, Any]:
        """The export metadata: the kind's parameters, its name and image shape."""
        n_frames, n_freqs = self.image_shape
        return {"kind": self.name, **self.metadata, "n_frames": n_frames, "n_freqs": n_freqs}


def register(kind: InputKind) -> InputKind:
    """Add ``kind`` to the registry (replacing one of the same name); return it."""
    _KINDS[kind.name] = kind
    return kind


def kind_names() -> list[str]:
    """Every registered kind, built-in ones first (imports nothing)."""
    return [*BUILTIN, *(k for k in _KINDS if k not in BUILTIN)]


def get_kind(name: str) -> InputKind:
    """The kind called ``name``.

    Raises
    ------
    UsageError
        If no such kind is registered (the message lists the known ones).
    """
    if name not in _KINDS and name in BUILTIN:
        register(importlib.import_module(BUILTIN[name]).KIND)
    if name not in _KINDS:
        raise UsageError(f"unknown input kind {name!r}; choose one of {kind_names()}")
    return _KINDS[name]
