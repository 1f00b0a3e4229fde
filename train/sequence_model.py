"""What every staging architecture is and declares.

A model is an epoch encoder run once per epoch and a sequence model over the epoch vectors,
as two modules the runtime runs apart. Each architecture (one file) subclasses
:class:`EpochSequenceModel` and declares, as class attributes, what training, transfer,
export, quantization, streaming and the readout need; nothing elsewhere looks at its name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from edgesleep.dsp.inputs import InputKind

# The parts of SeqSleepNet each of seed 1's finetuning strategies trains; an architecture
# maps every strategy (``edgesleep.train.models.STRATEGIES``) onto its own parts.
SEQSLEEPNET_PARTS: dict[str, tuple[str, ...]] = {
    "none": (),
    "softmax": ("softmax",),
    "softmax+epoch": ("softmax", "filterbank", "epoch"),
    "softmax+sequence": ("softmax", "sequence"),
    "all": ("softmax", "filterbank", "epoch", "sequence"),
}
# "weight-only": int8 weights behind DequantizeLinear, folded at load (any graph, GRUs
# included, which ONNX Runtime does not quantize); "static-qdq": calibrated int8 activations
# and weights (graphs of MatMul/Gemm/Conv only).
Quantization = Literal["weight-only", "static-qdq"]
# "step": the device makes one call of the step graph per new epoch (the new epoch's image and
# the cached epoch vectors in; the logits the readout needs and the window out; see
# :meth:`EpochSequenceModel.step_tail`). Exports made before it say "window" (two calls: the
# encoder, then the sequence graph over the window); the runtime still reads them.
Streaming = Literal["step"]


@dataclass(frozen=True)
class Declaration:
    """An architecture's declared properties, as export metadata and ``edgesleep models``."""

    name: str
    version: int
    causal: bool
    quantization: Quantization
    streaming: Streaming
    classifier: str
    finetune_parts: dict[str, tuple[str, ...]]
    no_decay: tuple[str, ...]


class EpochSequenceModel(nn.Module):
    """Base class: ``encoder`` maps (n, n_frames, n_freqs) -> (n, dim); ``sequence`` maps
    (batch, L, dim) -> logits (batch, L, n_classes).

    Class attributes every architecture declares:

    - ``name``: registry key, stored in checkpoints and exports;
    - ``version``: bump when the architecture changes (exports carry it);
    - ``config_class``: its frozen config dataclass (``n_classes``, ``seq_len``,
      ``n_frames``, ``n_freqs``, ``weight_decay`` and its own fields);
    - ``causal``: position t of the sequence model never sees epochs after t;
    - ``quantization``: its int8 method (see ``Quantization``);
    - ``streaming``: how the device runs it (see ``Streaming``; :meth:`step_tail` and
      :attr:`stream_context` say what its step graph computes);
    - ``classifier``: the state-dict prefix of the final classifier, replaced when
      finetuning to another class set;
    - ``finetune_parts``: for each of ``STRATEGIES``, the parts (keys of
      :meth:`parameter_groups`) that train;
    - ``no_decay``: parts without L2 (weight decay).

    An encoder may define ``normalised(mean, std) -> nn.Module``: itself on images before
    normalisation (e.g. the normalisation folded into its first linear map); export uses
    it instead of normalising the images in the graph.
    """

    name: ClassVar[str]
    version: ClassVar[int]
    config_class: ClassVar[type]
    causal: ClassVar[bool]
    quantization: ClassVar[Quantization]
    streaming: ClassVar[Streaming] = "step"
    classifier: ClassVar[str] = "sequence.classifier"
    finetune_parts: ClassVar[dict[str, tuple[str, ...]]] = SEQSLEEPNET_PARTS
    no_decay: ClassVar[tuple[str, ...]] = ("filterbank",)

    encoder: nn.Module
    sequence: nn.Module
    cfg: Any

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters by part: the units the finetuning strategies train or freeze."""
        raise NotImplementedError(f"{type(self).__name__} must define parameter_groups")

    @classmethod
    def input_fields(cls, kind: InputKind) -> dict[str, Any]:
        """Config fields that fit the model to input ``kind`` (its image shape)."""
        n_frames, n_freqs = kind.image_shape
        return {"n_frames": n_frames, "n_freqs": n_freqs}

    @property
    def fixed_delay(self) -> int:
        """The delay a causal model is trained for: the output at position t stages epoch
        t - delay (its config's ``delay``; 0 for models without one)."""
        return int(getattr(self.cfg, "delay", 0))

    @property
    def clocked(self) -> bool:
        """Whether the encoder also takes the hours from the recording's start to each
        epoch (its config's ``clock``; :func:`edgesleep.readout.epoch_clock_h`)."""
        return bool(getattr(self.cfg, "clock", False))

    def encode(self, images: torch.Tensor, clock_h: torch.Tensor | None = None) -> torch.Tensor:
        """(n, n_frames, n_freqs) normalised images [, (n,) hours] -> (n, dim)."""
        return self.encoder(images, clock_h) if self.clocked else self.encoder(images)

    @property
    def receptive_field(self) -> int | None:
        """Epochs (the current one included) one output of the sequence model depends on;
        None: the whole window."""
        return None

    @property
    def stream_context(self) -> int:
        """Epoch vectors before the new one that the streaming step keeps: those the
        readout's outputs of the window ending at the new epoch depend on (L - 1, or fewer
        when the receptive field is shorter than L)."""
        seq_len = int(self.cfg.seq_len)
        field = self.receptive_field
        return seq_len - 1 if field is None else min(seq_len, field) - 1

    def step_tail(self) -> nn.Module | None:
        """What the step graph runs after the encoder.

        None (a causal model): the sequence model on the last ``stream_context + 1``
        vectors, its last output (what :class:`edgesleep.readout.CausalReadout` reads).
        Otherwise a module ``(window (n, dim), first (1,) int64) -> logits (m, n_classes)``
        of the window's positions from ``first`` = -(K + 1) on, counted from its end
        (``m = min(n, K + 1)``: what :class:`edgesleep.readout.Fusion` reads at delay K),
        equal to the sequence model's outputs there (batch 1, so no batch axis).
        """
        if self.causal:
            return None
        raise NotImplementedError(f"{type(self).__name__} must define step_tail")

    @classmethod
    def declaration(cls) -> Declaration:
        return Declaration(
            cls.name,
            cls.version,
            cls.causal,
            cls.quantization,
            cls.streaming,
            cls.classifier,
            dict(cls.finetune_parts),
            cls.no_decay,
        )

    def epoch_vectors(self, x: torch.Tensor, clock_h: torch.Tensor | None = None) -> torch.Tensor:
        """(batch, L, n_frames, n_freqs) [, (batch, L) hours] -> (batch, L, dim)."""
        batch, seq_len = x.shape[:2]
        flat = None if clock_h is None else clock_h.reshape(batch * seq_len)
        z = self.encode(x.reshape(batch * seq_len, *x.shape[2:]), flat)
        return z.reshape(batch, seq_len, -1)

    def forward(self, x: torch.Tensor, clock_h: torch.Tensor | None = None) -> torch.Tensor:
        """(batch, L, n_frames, n_freqs) [, (batch, L) hours from the recording's start
        to each epoch, for a ``clocked`` model] -> logits (batch, L, n_classes)."""
        return self.sequence(self.epoch_vectors(x, clock_h))

    def shared_forward(self, epochs: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
        """Windows that share epochs, each epoch encoded once.

        Parameters
        ----------
        epochs : (n_epochs, n_frames, n_freqs), runs of consecutive epochs
        starts : (n_windows,) int64, the index in ``epochs`` of each window's first epoch
            (window j is ``epochs[starts[j] : starts[j] + L]``)

        Returns
        -------
        logits : (n_windows, L, n_classes), what :meth:`forward` gives on the windows
        """
        z = self.encode(epochs)  # a clocked model trains on Windows, not chunks
        positions = starts[:, None] + torch.arange(self.cfg.seq_len, device=starts.device)
        return self.sequence(z[positions])
