"""Data pipeline: dataset nights -> STFT images, normalisation, training windows."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from edgesleep.io.dataset import Crop, Dataset, Entry
from edgesleep.readout import epoch_clock_h
from edgesleep.stages import to_classes
from edgesleep.train.cache import Request, ensure

log = logging.getLogger("edgesleep")
IGNORE = -100  # torch's ignore_index for artefact / unscored epochs
# A training window's clock starts up to this many epochs (1 h) late, drawn per item: the
# nights are cropped to the recording as scored, a stream starts whenever the sensor goes
# on, so a model with a clock must not learn where the crop falls.
CLOCK_OFFSET_EPOCHS = 120


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
    cache: Path | None = None,
    jobs: int = 1,
) -> list[NightFeatures]:
    """Input images (of input ``kind``: :mod:`edgesleep.dsp.inputs`) and labels of
    ``channel`` for the given nights (default: all), from the feature cache
    (:mod:`edgesleep.train.cache`; what is missing is computed first, over ``jobs``
    processes). The images are read-only memory maps: nothing is held in RAM twice.

    ``labelled=False`` reads the signals only (for ``adapt`` on unlabelled nights).
    """
    chosen = entries if entries is not None else dataset.entries
    req = Request(channel, kind, crop if labelled else "unlabelled")
    nights = []
    for path, index in ensure(dataset, chosen, req, cache, jobs):
        images = np.load(path, mmap_mode="r")
        stages = np.asarray(index["stages"], dtype=np.int8)
        nights.append(NightFeatures(index["record"], index["subject"], images,
                                    to_classes(stages, n_classes)))  # fmt: skip
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


class _Nights(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """What :class:`Windows` and :class:`Chunks` share: the nights' images (memory maps,
    read and normalised per item: no copy is held) and their labels (IGNORE where unscored)."""

    def __init__(
        self, nights: Sequence[NightFeatures], mean: np.ndarray, std: np.ndarray, seq_len: int
    ) -> None:
        self.images = [n.images for n in nights]
        self.mean, self.std, self.seq_len = mean, std, seq_len
        self.labels = [np.where(n.labels >= 0, n.labels, IGNORE).astype(np.int64) for n in nights]

    def _epochs(self, night: int, start: int, stop: int) -> torch.Tensor:
        """Normalised images of epochs ``start:stop`` of a night."""
        return torch.from_numpy(normalise(self.images[night][start:stop], self.mean, self.std))


class Windows(_Nights):
    """Windows of ``seq_len`` consecutive epochs with a stride, from every night.

    Items: (x (seq_len, 29, 129) normalised, y (seq_len,) int64 with IGNORE for unscored).
    With ``clock`` (a model with a clock input), items are (x, clock, y): clock (seq_len,)
    float32 hours (:func:`edgesleep.readout.epoch_clock_h`) of the window's epochs from
    the night's start plus a random 0..``CLOCK_OFFSET_EPOCHS`` epochs (torch's generator,
    drawn per item). Windows in which no epoch is scored are skipped. With ``pad_short``
    (for a causal model:
    its outputs before the padding do not see it) a night shorter than ``seq_len`` (a 2-h
    record under a 256-epoch model) is one window, zero-padded at its end with IGNORE
    labels, which the loss skips; without, such a night gives no window. Images are read
    (from the nights' memory maps) and normalised per item: the dataset holds no copy.
    """

    def __init__(
        self,
        nights: Sequence[NightFeatures],
        mean: np.ndarray,
        std: np.ndarray,
        seq_len: int,
        stride: int,
        pad_short: bool = False,
        clock: bool = False,
    ) -> None:
        super().__init__(nights, mean, std, seq_len)
        self.clock = clock
        last = 1 if pad_short else 0  # the last window start + 1 of a night shorter than L
        self.index = [
            (i, start)
            for i, night in enumerate(nights)
            for start in range(0, max(last, night.n_epochs - seq_len + 1), stride)
            if (night.labels[start : start + seq_len] >= 0).any()
        ]
        if not self.index:
            raise ValueError(f"no scored window of {seq_len} epochs in {len(nights)} nights")

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, ...]:
        night, start = self.index[item]
        stop = start + self.seq_len
        x, y = self._epochs(night, start, stop), torch.from_numpy(self.labels[night][start:stop])
        if x.shape[0] < self.seq_len:  # a night shorter than a window
            short = self.seq_len - x.shape[0]
            x = torch.cat([x, x.new_zeros(short, *x.shape[1:])])
            y = torch.cat([y, y.new_full((short,), IGNORE)])
        if not self.clock:
            return x, y
        offset = int(torch.randint(0, CLOCK_OFFSET_EPOCHS + 1, ()))
        clock = epoch_clock_h(np.arange(start, stop) + offset)
        return x, torch.from_numpy(clock), y


class Chunks(_Nights):
    """Training windows grouped into chunks of consecutive epochs that share encodings.

    The windows of :class:`Windows` (``seq_len`` epochs every ``stride``), taken
    ``per_chunk`` at a time along each night: a chunk holds the epochs its windows span
    (``seq_len + (per_chunk - 1) * stride``), so each epoch is encoded once per step however
    many windows contain it. A night's last chunk ends at the night's end and may overlap
    the one before it; the windows seen twice are masked there (labels IGNORE), so every
    window counts once per pass.

    Dropout: the epoch encoder's masks are drawn once per epoch and step, so the windows
    sharing an epoch share its mask (apart, each window would draw its own); the sequence
    model's masks stay per window. With dropout off, loss and gradients equal the
    separate-window computation (``tests/test_shared_encodings.py``).

    Items: (x (n_epochs, n_frames, n_freqs) normalised, starts (n_windows,) int64 epoch
    offsets of the windows in the chunk, y (n_windows, seq_len) int64). Batch them with
    :func:`collate_chunks`.
    """

    def __init__(
        self,
        nights: Sequence[NightFeatures],
        mean: np.ndarray,
        std: np.ndarray,
        seq_len: int,
        stride: int,
        per_chunk: int,
    ) -> None:
        if not 1 <= stride < seq_len:
            raise ValueError(f"shared encodings need a stride below {seq_len}, not {stride}")
        super().__init__(nights, mean, std, seq_len)
        # (night, window starts, windows masked at the front)
        self.index: list[tuple[int, np.ndarray, int]] = []
        for i, night in enumerate(nights):
            starts = np.arange(0, night.n_epochs - seq_len + 1, stride)
            for first in range(0, starts.size, per_chunk):
                group, masked = starts[first : first + per_chunk], 0
                if group.size < per_chunk and starts.size >= per_chunk:
                    group, masked = starts[-per_chunk:], per_chunk - group.size
                stop = group[-1] + seq_len
                if (night.labels[group[masked] : stop] >= 0).any():
                    self.index.append((i, group, masked))
        if not self.index:
            raise ValueError(f"no scored window of {seq_len} epochs in {len(nights)} nights")

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        night, starts, masked = self.index[item]
        first, stop = int(starts[0]), int(starts[-1]) + self.seq_len
        y = np.stack([self.labels[night][s : s + self.seq_len] for s in starts])
        y[:masked] = IGNORE
        return (
            self._epochs(night, first, stop),
            torch.from_numpy(starts - first),
            torch.from_numpy(y),
        )


def collate_chunks(
    items: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Chunks -> one batch: their epochs concatenated (n_epochs, n_frames, n_freqs), each
    window's first epoch in that concatenation (n_windows,), labels (n_windows, seq_len)."""
    offsets = np.cumsum([0, *(x.shape[0] for x, _, _ in items[:-1])])
    return (
        torch.cat([x for x, _, _ in items]),
        torch.cat([starts + int(o) for (_, starts, _), o in zip(items, offsets, strict=True)]),
        torch.cat([y for _, _, y in items]),
    )
