"""A compact, int8-friendly student: convolutions and matrix products only, causal in time.

Per epoch (:class:`StudentEncoder`): a linear projection of the 129 frequency bins (a
learned filterbank), three 1-D convolutions over the 29 frames with ReLU, and the mean over
time -> an epoch vector. Per sequence (:class:`CausalSequence`): two causal dilated 1-D
convolutions over the epoch vectors (receptive field 7 epochs; position t never sees
t + 1), with a residual, and a linear classifier. No GRU: ONNX Runtime quantizes every
operator here (MatMul/Gemm, Conv), and streaming costs one encoder run plus one small
causal step per epoch. Same interface as SeqSleepNet (``encoder``, ``sequence``,
``parameter_groups``), so training, readout and export treat both alike.

With ``clock`` (issue 31), the encoder also takes the time from the recording's start to
each epoch (:func:`edgesleep.readout.epoch_clock_h`, hours) and adds :class:`Clock`'s
vector to the epoch vector: the sequence model, its cached vectors and the step graph stay
as they are; the encoder graph (and the step graph built on it) gains a ``clock`` input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from edgesleep.dsp import N_FRAMES, N_FREQS
from edgesleep.readout import CLOCK_MAX_H
from edgesleep.train.sequence_model import EpochSequenceModel


@dataclass(frozen=True)
class StudentConfig:
    n_classes: int = 5
    seq_len: int = 20  # L of the training windows (the model is causal: any L works)
    n_bands: int = 24  # learned filterbank size
    channels: tuple[int, int, int] = (32, 48, 48)
    epoch_dim: int = 48
    kernel: int = 3
    dilations: tuple[int, ...] = (1, 2)
    delay: int = 0  # the readout delay it is trained for: position t stages epoch t - delay
    RENAMED: ClassVar[dict[str, str]] = {"lookahead": "delay"}  # 0.1's name, for a release
    clock: bool = False  # hours since the recording started, as a second encoder input
    dropout: float = 0.1
    weight_decay: float = 1e-4
    n_frames: int = N_FRAMES
    n_freqs: int = N_FREQS


class Clock(nn.Module):
    """(batch,) hours since the recording started -> (batch, dim): Gaussian bumps
    (``WIDTH_H``) every ``STEP_H`` over 0..``MAX_H`` (later hours count as ``MAX_H``),
    mixed linearly. Smooth in time, bounded, and Exp/Gemm only in ONNX."""

    MAX_H, STEP_H, WIDTH_H = CLOCK_MAX_H, 1.5, 1.5
    centres: torch.Tensor

    def __init__(self, dim: int) -> None:
        super().__init__()
        centres = torch.arange(0.0, self.MAX_H + 1e-6, self.STEP_H)
        self.register_buffer("centres", centres)
        self.mix = nn.Linear(centres.numel(), dim)

    def forward(self, hours: torch.Tensor) -> torch.Tensor:
        t = hours.clamp(0.0, self.MAX_H)[:, None]
        return self.mix(torch.exp(-(((t - self.centres) / self.WIDTH_H) ** 2)))


class StudentEncoder(nn.Module):
    """(batch, 29, 129) normalised log power [, (batch,) clock in hours] -> (batch,
    epoch_dim)."""

    def __init__(self, cfg: StudentConfig) -> None:
        super().__init__()
        self.bands = nn.Linear(cfg.n_freqs, cfg.n_bands)
        c1, c2, c3 = cfg.channels
        self.convs = nn.Sequential(
            nn.Conv1d(cfg.n_bands, c1, 5, padding=2),
            nn.ReLU(),
            nn.Conv1d(c1, c2, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv1d(c2, c3, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.project = nn.Linear(c3, cfg.epoch_dim)
        self.dropout = nn.Dropout(cfg.dropout)
        self.clock = Clock(cfg.epoch_dim) if cfg.clock else None

    def forward(self, x: torch.Tensor, clock_h: torch.Tensor | None = None) -> torch.Tensor:
        h = self.convs(self.bands(x).transpose(1, 2))  # (batch, c3, frames')
        z = self.project(self.dropout(h.mean(dim=2)))
        if self.clock is None:
            return z
        if clock_h is None:
            raise ValueError("this student takes a clock: pass the hours since the start")
        return z + self.clock(clock_h)


class CausalSequence(nn.Module):
    """(batch, L, epoch_dim) -> logits (batch, L, n_classes); position t sees epochs <= t."""

    def __init__(self, cfg: StudentConfig) -> None:
        super().__init__()
        self.pads = [(cfg.kernel - 1) * d for d in cfg.dilations]
        # padded on both sides; the last ``pad`` outputs (which saw the future) are dropped
        self.convs = nn.ModuleList(
            nn.Conv1d(cfg.epoch_dim, cfg.epoch_dim, cfg.kernel, dilation=d, padding=pad)
            for d, pad in zip(cfg.dilations, self.pads, strict=True)
        )
        self.dropout = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(cfg.epoch_dim, cfg.n_classes)

    @property
    def receptive_field(self) -> int:
        """Epochs (the current one included) that one output depends on."""
        return 1 + sum(self.pads)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = z.transpose(1, 2)
        for conv in self.convs:
            h = h + torch.relu(conv(h)[..., : h.shape[2]])
        return self.classifier(self.dropout(h.transpose(1, 2)))


class Student(EpochSequenceModel):
    """(batch, L, 29, 129) -> logits (batch, L, n_classes). Causal; static int8."""

    name = "student"
    version = 1
    config_class = StudentConfig
    causal = True
    quantization = "static-qdq"

    def __init__(self, cfg: StudentConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = StudentEncoder(cfg)
        self.sequence = CausalSequence(cfg)

    @property
    def receptive_field(self) -> int:
        return self.sequence.receptive_field

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parts as for SeqSleepNet: filterbank (bands), epoch, sequence, softmax."""
        enc, seq = self.encoder, self.sequence
        return {
            "filterbank": list(enc.bands.parameters()),
            "epoch": [
                *enc.convs.parameters(),
                *enc.project.parameters(),
                *(enc.clock.parameters() if enc.clock is not None else ()),
            ],
            "sequence": list(seq.convs.parameters()),
            "softmax": list(seq.classifier.parameters()),
        }
