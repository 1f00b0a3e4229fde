"""What every staging architecture shares: an epoch encoder run once per epoch and a
sequence model over the epoch vectors, as two modules the runtime can run apart."""

from __future__ import annotations

import torch
from torch import nn


class EpochSequenceModel(nn.Module):
    """Base class: ``encoder`` maps (n, 29, 129) -> (n, dim); ``sequence`` maps
    (batch, L, dim) -> logits (batch, L, n_classes)."""

    encoder: nn.Module
    sequence: nn.Module

    def epoch_vectors(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, L, 29, 129) -> (batch, L, dim)."""
        batch, seq_len = x.shape[:2]
        z = self.encoder(x.reshape(batch * seq_len, *x.shape[2:]))
        return z.reshape(batch, seq_len, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, L, 29, 129) -> logits (batch, L, n_classes)."""
        return self.sequence(self.epoch_vectors(x))
