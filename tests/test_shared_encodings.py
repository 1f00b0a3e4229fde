"""Shared encodings: windows that overlap encode each epoch once, with the same loss and
gradients as encoding every window's epochs apart (dropout off)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from edgesleep.io.dataset import read_dataset
from edgesleep.train.data import Chunks, Windows, collate_chunks, load_features, norm_stats
from edgesleep.train.models import build, make_config
from edgesleep.train.training import TrainOptions, cross_entropy, fit


@pytest.fixture(scope="module")
def nights(tiny_dataset: Path) -> list:
    return load_features(read_dataset(tiny_dataset), "EOG horizontal", 5)


@pytest.mark.parametrize(("stride", "per_chunk"), [(1, 8), (3, 5), (7, 2)])
def test_chunks_hold_each_window_once(nights: list, stride: int, per_chunk: int) -> None:
    mean, std = norm_stats(nights)
    chunks = Chunks(nights, mean, std, 20, stride, per_chunk)
    seen = []
    for item, (night, starts, masked) in enumerate(chunks.index):
        x, offsets, y = chunks[item]
        assert x.shape[0] == offsets[-1] + 20 and offsets[0] == 0
        assert (y[:masked] == -100).all()
        seen += [(night, int(s)) for s in starts[masked:]]
    assert sorted(seen) == sorted(Windows(nights, mean, std, 20, stride).index)


@pytest.mark.parametrize("name", ["seqsleepnet", "student"])
def test_shared_loss_and_gradients_equal_separate_windows(
    nights: list, name: str, tiny_models: dict
) -> None:
    torch.manual_seed(0)
    cfg = make_config(name, "stft", dropout=0.0, **tiny_models[name])
    model = build(name, cfg).train()
    mean, std = norm_stats(nights)
    chunks = Chunks(nights, mean, std, 20, 1, 6)
    x, starts, y = collate_chunks([chunks[0], chunks[len(chunks) - 1], chunks[3]])
    loss = cross_entropy(nights, 5, class_weighting=True)

    def grads(batch: list[torch.Tensor]) -> tuple[float, list[torch.Tensor]]:
        model.zero_grad()
        value = loss(model, batch)
        value.backward()
        return value.item(), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    shared_value, shared = grads([x, starts, y])
    windows = x[starts[:, None] + torch.arange(20)]  # (n_windows, 20, 29, 129)
    apart_value, apart = grads([windows, y])
    assert x.shape[0] < windows.shape[0] * windows.shape[1] / 3  # fewer epochs encoded
    assert shared_value == pytest.approx(apart_value, rel=1e-5)
    for a, b in zip(shared, apart, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_training_with_shared_encodings(nights: list, tiny_models: dict) -> None:
    cfg = make_config("seqsleepnet", "stft", **tiny_models["seqsleepnet"])
    model = build("seqsleepnet", cfg)
    mean, std = norm_stats(nights[:4])
    opts = TrainOptions(max_steps=4, stride=1, shared_windows=8, eval_every=2, batch_size=16)
    result = fit(model, nights[:4], nights[4:], mean, std, opts)
    assert result.steps == 4 and np.isfinite(result.history[-1]["loss"])
