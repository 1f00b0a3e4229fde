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
from edgesleep.train.sequence_model import EpochSequenceModel


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
        self.rnn = nn.GRU(cfg.n_filters, cfg.epoch_hidden, bidirectional=True)
        self.attention = nn.Linear(cfg.epoch_dim, cfg.attention_size)
        self.context = nn.Linear(cfg.attention_size, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.filterbank(x))

    def pool(self, bands: torch.Tensor) -> torch.Tensor:
        """(batch, 29, n_filters) filterbank outputs -> (batch, 128): the GRU and the
        attention, time first (the GRU's own layout: fewer graph nodes)."""
        h = self.dropout(self.rnn(self.dropout(bands).transpose(0, 1))[0])  # (29, batch, 128)
        scores = self.context(torch.tanh(self.attention(h)))  # (29, batch, 1)
        weights = torch.softmax(scores, dim=0)
        return (weights * h).sum(dim=0)

    def normalised(self, mean: torch.Tensor, std: torch.Tensor) -> FoldedEncoder:
        """This encoder on images before normalisation, for export (see
        ``EpochSequenceModel``): the normalisation folded into the filterbank."""
        return FoldedEncoder(self, mean, std)


class FoldedEncoder(nn.Module):
    """:class:`EpochEncoder` on dB images before normalisation: ``(x - mean) / std @ F``
    is ``x @ (F / std) - (mean / std) @ F``, one matrix product and one offset (for
    export: two element-wise passes over the image fewer).

    Input (batch, 29, 129) dB; output (batch, 128).
    """

    weight: torch.Tensor
    offset: torch.Tensor

    def __init__(self, encoder: EpochEncoder, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        bank = encoder.filterbank
        masks = (torch.sigmoid(bank.weight) * bank.mask).detach()
        self.register_buffer("weight", masks / std[:, None])
        self.register_buffer("offset", -(mean / std) @ masks)
        self.encoder = encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder.pool(x @ self.weight + self.offset)


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


def onnx_gru_weights(rnn: nn.GRU, suffix: str) -> tuple[torch.Tensor, ...]:
    """One direction of a torch GRU (``suffix`` "" or "_reverse") as ONNX GRU inputs: W
    (1, 3H, in), R (1, 3H, H), B (1, 6H), gates in ONNX's order z, r, h (torch's: r, z, n)."""

    def reorder(t: torch.Tensor) -> torch.Tensor:
        r, z, n = t.detach().chunk(3, dim=0)
        return torch.cat([z, r, n])

    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    w, r, b_ih, b_hh = (getattr(rnn, f"{n}_l0{suffix}") for n in names)
    return reorder(w)[None], reorder(r)[None], torch.cat([reorder(b_ih), reorder(b_hh)])[None]


class OnnxGRU(torch.autograd.Function):
    """ONNX's GRU (``linear_before_reset=1``, zero initial state, batch 1) on x (n, 1, in):
    Y (n, 1, 1, H). Computed step by step in torch as ONNX defines it; exported as one GRU
    node, forward or ``reverse`` (no time flips in the graph)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: object, x: torch.Tensor, w: torch.Tensor, r: torch.Tensor, b: torch.Tensor,
        reverse: bool,
    ) -> torch.Tensor:  # fmt: skip
        wz, wr, wh = w[0].chunk(3)
        rz, rr, rh = r[0].chunk(3)
        bwz, bwr, bwh, brz, brr, brh = b[0].chunk(6)
        h = x.new_zeros(x.shape[1], r.shape[2])
        out = []
        for t in range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0]):
            z = torch.sigmoid(x[t] @ wz.T + bwz + h @ rz.T + brz)
            reset = torch.sigmoid(x[t] @ wr.T + bwr + h @ rr.T + brr)
            cand = torch.tanh(x[t] @ wh.T + bwh + reset * (h @ rh.T + brh))
            h = (1 - z) * cand + z * h
            out.append(h)
        return torch.stack(out[::-1] if reverse else out)[:, None]

    @staticmethod
    def symbolic(  # type: ignore[no-untyped-def]
        g, x, w, r, b, reverse: bool
    ):  # fmt: skip
        hidden = w.type().sizes()[1] // 3
        direction = "reverse" if reverse else "forward"
        y, _ = g.op("GRU", x, w, r, b, hidden_size_i=hidden, direction_s=direction,
                    linear_before_reset_i=1, outputs=2)  # fmt: skip
        return y


class ReadoutTail(nn.Module):
    """The logits the fused readout at delay K takes from the window ending at the new
    epoch: its last ``min(n, K + 1)`` positions. The forward GRU runs over the whole window
    (its state starts at zero at the window's first epoch, so it cannot be carried from the
    previous window); the backward GRU starts at the window's last epoch and runs K + 1
    steps, not n (one at K = 0). Batch 1, time first, one GRU node per direction: nine
    nodes in the graph.

    Input (n, 128) epoch vectors and (1,) int64 ``first`` = -(K + 1); output
    (min(n, K + 1), n_classes).
    """

    def __init__(self, sequence: SequenceModel) -> None:
        super().__init__()
        for name, suffix in (("ahead", ""), ("behind", "_reverse")):
            for part, value in zip("wrb", onnx_gru_weights(sequence.rnn, suffix), strict=True):
                self.register_buffer(f"{name}_{part}", value)
        self.classifier = sequence.classifier

    def forward(self, window: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
        # x[first:] traces to a Slice from the end, clamped to the window
        x = window[:, None]  # (n, batch 1, 128)
        ahead = OnnxGRU.apply(x, self.ahead_w, self.ahead_r, self.ahead_b, False)
        behind = OnnxGRU.apply(x[first:], self.behind_w, self.behind_r, self.behind_b, True)
        both = torch.cat([ahead[first:], behind], dim=3)  # (m, 1, 1, 2H)
        # the classifier on the 4-D tensor: a MatMul with the sequence graph's weight layout
        return self.classifier(both).reshape(-1, self.classifier.out_features)


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

    def step_tail(self) -> ReadoutTail:
        return ReadoutTail(self.sequence)

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
