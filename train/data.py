"""Data pipeline: dataset nights -> STFT images, normalisation, training windows."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from edgesleep.dsp import EPOCH_SAMPLES
from edgesleep.dsp.inputs import get_kind
from edgesleep.io.dataset import Crop, Dataset, Entry, load_night
from edgesleep.io.edf import read_signal
from edgesleep.stages import to_classes

log = logging.getLogger("edgesleep")
IGNORE = -100  # torch's ignore_index for artefact / unscored epochs


@dataclass(frozen=True)
class NightFeatures:
    """One night as the model sees it.

    Attributes
    ----------
    images : ndarray of shape (n_epochs, n_frames, n_freqs), float32, not normalised: the
        STFT (29, 129) in dB or the beat-interval image (27, 20) in beats/min
    labels : ndarray of shape (n_epochs,), int8, class indices; negative = not scored;
        all -2 for an unlabelled night
    """

    record: str
    subject: str
    images: np.ndarray
    labels: np.ndarray

    @property
    def n_epochs(self) -> int:
        return int(self.labels.shape[0])


def load_features(
    dataset: Dataset,
    channel: str,
    n_classes: int,
    crop: Crop = "in-bed",
    entries: Sequence[Entry] | None = None,
    labelled: bool = True,
    kind: str = "stft",
) -> list[NightFeatures]:
    """Input images (of input ``kind``: :mod:`edgesleep.dsp.inputs`) and labels of
    ``channel`` for the given nights (default: all).

    ``labelled=False`` reads the signals only (for ``adapt`` on unlabelled nights).
    """
    make = get_kind(kind).images
    nights = []
    for entry in entries if entries is not None else dataset.entries:
        if labelled:
            night = load_night(dataset, entry, channel, crop)
            images, labels = make(night.signal), to_classes(night.stages, n_classes)
        else:
            signal = read_signal(dataset.root / entry.psg, channel).data
            whole = signal[: signal.shape[0] // EPOCH_SAMPLES * EPOCH_SAMPLES]
            images = make(whole)
            labels = np.full(images.shape[0], -2, dtype=np.int8)
        nights.append(NightFeatures(entry.record, entry.subject, images, labels))
        log.debug("%s: %d epochs of %r", entry.record, images.shape[0], channel)
    return nights


def norm_stats(nights: Sequence[NightFeatures]) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin mean and std over every frame of the nights.

    Returns
    -------
    mean, std : ndarray of shape (n_freqs,), float32 (dB for the STFT)
    """
    total = np.zeros(nights[0].images.shape[-1])
    total_sq = np.zeros_like(total)
    count = 0
    for night in nights:
        frames = night.images.reshape(-1, night.images.shape[-1]).astype(np.float64)
        total += frames.sum(axis=0)
        total_sq += (frames**2).sum(axis=0)
        count += frames.shape[0]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 1e-12))
    return mean.astype(np.float32), std.astype(np.float32)


def normalise(images: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(images - mean) / std per frequency bin; shape kept, float32."""
    return ((images - mean) / std).astype(np.float32)


def class_weights(nights: Sequence[NightFeatures], n_classes: int) -> np.ndarray:
    """Inverse-frequency class weights, mean 1, shape (n_classes,)."""
    labels = np.concatenate([n.labels for n in nights])
    counts = np.bincount(labels[labels >= 0], minlength=n_classes).astype(np.float64)
    weights = counts.sum() / np.maximum(counts, 1) / n_classes
    return (weights / weights.mean()).astype(np.float32)


class Windows(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """Windows of ``seq_len`` consecutive epochs with a stride, from every night.

    Items: (x (seq_len, 29, 129) normalised, y (seq_len,) int64 with IGNORE for unscored).
    Windows in which no epoch is scored are skipped.
    """

    def __init__(
        self,
        nights: Sequence[NightFeatures],
        mean: np.ndarray,
        std: np.ndarray,
        seq_len: int,
        stride: int,
    ) -> None:
        self.images = [normalise(n.images, mean, std) for n in nights]
        self.labels = [np.where(n.labels >= 0, n.labels, IGNORE).astype(np.int64) for n in nights]
        self.seq_len = seq_len
        self.index = [
            (i, start)
            for i, night in enumerate(nights)
            for start in range(0, night.n_epochs - seq_len + 1, stride)
            if (night.labels[start : start + seq_len] >= 0).any()
        ]
        if not self.index:
            raise ValueError(f"no scored window of {seq_len} epochs in {len(nights)} nights")

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, torch.Tensor]:
        night, start = self.index[item]
        stop = start + self.seq_len
        return (
            torch.from_numpy(self.images[night][start:stop]),
            torch.from_numpy(self.labels[night][start:stop]),
        )
