"""SeqSleepNet (Phan et al. 2019) for one channel, as its authors trained it.

Per epoch: a filterbank of 32 triangular masks over 0-50 Hz with trainable non-negative
weights, a bidirectional GRU (64 per direction) over the 29 STFT frames and additive
attention (size 64) -> a 128-d epoch vector (:class:`EpochEncoder`). Per sequence: a
bidirectional GRU (64 per direction) over L epoch vectors and a linear classifier shared by
every position (:class:`SequenceModel`). The two modules run apart on the device: the encoder
once per new epoch, the sequence model over the cached vectors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from edgesleep.dsp import N_FRAMES, N_FREQS, SFREQ
from edgesleep.dsp.inputs import InputKind
from edgesleep.train.staging import EpochSequenceModel


@dataclass(frozen=True)
class SeqSleepNetConfig:
    """Hyper-parameters (defaults: the original's)."""

    n_classes: int = 5
    seq_len: int = 20  # L, epochs per training window
    n_filters: int = 32
    fmax_hz: float = 50.0
    epoch_hidden: int = 64  # per direction
    attention_size: int = 64
    seq_hidden: int = 64  # per direction
    dropout: float = 0.25  # keep probability 0.75 on RNN inputs and outputs
    weight_decay: float = 1e-3  # L2 on all weights but the filterbank
    n_frames: int = N_FRAMES
    n_freqs: int = N_FREQS

    @property
    def epoch_dim(self) -> int:
        return 2 * self.epoch_hidden


def triangular_filterbank(n_filters: int, n_freqs: int, sfreq: float, fmax_hz: float) -> np.ndarray:
    """Linear-frequency triangular masks, shape (n_freqs, n_filters), peaks equally spaced in
    (0, fmax_hz), each falling to zero at its neighbours' peaks."""
    freqs = np.linspace(0, sfreq / 2, n_freqs)
    edges = np.linspace(0, fmax_hz, n_filters + 2)
    masks = np.zeros((n_freqs, n_filters))
    for m in range(n_filters):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        rise = (freqs - lo) / (mid - lo)
        fall = (hi - freqs) / (hi - mid)
        masks[:, m] = np.clip(np.minimum(rise, fall), 0, None)
    return masks


class Filterbank(nn.Module):
    """``x @ (sigmoid(W) * mask)``: (..., n_freqs) -> (..., n_filters)."""

    mask: torch.Tensor

    def __init__(self, cfg: SeqSleepNetConfig) -> None:
        super().__init__()
        mask = triangular_filterbank(cfg.n_filters, cfg.n_freqs, SFREQ, cfg.fmax_hz)
        self.register_buffer("mask", torch.tensor(mask, dtype=torch.float32))
        self.weight = nn.Parameter(torch.randn(cfg.n_freqs, cfg.n_filters) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ (torch.sigmoid(self.weight) * self.mask)


class EpochEncoder(nn.Module):
    """STFT image of one epoch -> epoch vector.

    Input (batch, 29, 129) normalised log power; output (batch, 128).
    """

    def __init__(self, cfg: SeqSleepNetConfig) -> None:
        super().__init__()
        self.filterbank = Filterbank(cfg)
        self.dropout = nn.Dropout(cfg.dropout)
        self.rnn = nn.GRU(cfg.n_filters, cfg.epoch_hidden, batch_first=True, bidirectional=True)
        self.attention = nn.Linear(cfg.epoch_dim, cfg.attention_size)
        self.context = nn.Linear(cfg.attention_size, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.rnn(self.dropout(self.filterbank(x)))  # (batch, 29, 128)
        h = self.dropout(h)
        scores = self.context(torch.tanh(self.attention(h)))  # (batch, 29, 1)
        weights = torch.softmax(scores, dim=1)
        return (weights * h).sum(dim=1)


class SequenceModel(nn.Module):
    """Epoch vectors of a window -> class logits at every position.

    Input (batch, L, 128), any L >= 1; output (batch, L, n_classes).
    """

    def __init__(self, cfg: SeqSleepNetConfig) -> None:
        super().__init__()
        self.dropout = nn.Dropout(cfg.dropout)
        self.rnn = nn.GRU(cfg.epoch_dim, cfg.seq_hidden, batch_first=True, bidirectional=True)
        self.classifier = nn.Linear(2 * cfg.seq_hidden, cfg.n_classes)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h, _ = self.rnn(self.dropout(z))
        return self.classifier(self.dropout(h))


class SeqSleepNet(EpochSequenceModel):
    """The whole model: (batch, L, 29, 129) -> logits (batch, L, n_classes).

    Bidirectional in both RNNs; int8 is weight-only (ONNX Runtime quantizes no GRU).
    """

    name = "seqsleepnet"
    version = 1
    config_class = SeqSleepNetConfig
    causal = False
    quantization = "weight-only"

    @classmethod
    def input_fields(cls, kind: InputKind) -> dict[str, Any]:
        """The image shape; for an image that is not a spectrum, triangular masks over
        four fifths of its positions (16 over a beat image's 20)."""
        fields = super().input_fields(kind)
        if not kind.spectral:
            fields["n_filters"] = max(2, 4 * fields["n_freqs"] // 5)
        return fields

    def __init__(self, cfg: SeqSleepNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = EpochEncoder(cfg)
        self.sequence = SequenceModel(cfg)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters by part, the units the finetuning strategies freeze or train.

        filterbank, epoch (GRU + attention), sequence (GRU), softmax (classifier).
        """
        enc, seq = self.encoder, self.sequence
        return {
            "filterbank": list(enc.filterbank.parameters()),
            "epoch": [
                *enc.rnn.parameters(),
                *enc.attention.parameters(),
                *enc.context.parameters(),
            ],
            "sequence": list(seq.rnn.parameters()),
            "softmax": list(seq.classifier.parameters()),
        }
