"""The step graph: one call per new epoch, only the outputs the readout takes, equal to the
encoder + sequence graphs (fp32 and int8) and to the torch model. Tiny exported models
(conftest ``exported``), SYNTHETIC signals."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHORT_NIGHT

from edgesleep.errors import InputError
from edgesleep.ort import ExportedModel, StepStream, WindowStream
from edgesleep.readout import log_softmax
from edgesleep.stager import MAX_FILL_S, Stager, score_signal
from edgesleep.synth.psg import generate_night
from edgesleep.train.models import build, make_config


@pytest.mark.parametrize("name", ["seqsleepnet", "student"])
def test_tail_equals_the_sequence_model(name: str) -> None:
    """torch: the architecture's step (tail, or the sequence model on the last
    ``stream_context + 1`` vectors) gives the sequence model's outputs the readout takes."""
    model = build(name, make_config(name)).eval()  # the student's default dilations: 1, 2
    seq_len, dim = model.cfg.seq_len, model.cfg.epoch_dim
    z = torch.randn(seq_len, dim)
    tail = model.step_tail()
    with torch.no_grad():
        for n in (1, 2, 7, seq_len):
            window = z[-n:]
            full = model.sequence(window[None])[0]  # (n, n_classes)
            if tail is None:  # causal: the last output from the last context + 1 vectors
                recent = window[-(model.stream_context + 1) :]
                got = model.sequence(recent[None])[0, -1:]
                torch.testing.assert_close(got, full[-1:], atol=1e-6, rtol=0)
                continue
            for delay in (0, 3, seq_len - 1):
                got = tail(window, torch.tensor([-1 - delay]))
                assert got.shape == (min(n, delay + 1), model.cfg.n_classes)
                torch.testing.assert_close(got, full[-got.shape[0] :], atol=1e-6, rtol=0)
    if name == "student":
        assert model.stream_context == model.receptive_field - 1 == 6 < seq_len - 1
    else:
        assert model.stream_context == seq_len - 1


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_step_graph_equals_the_two_graphs(exported: dict, precision: str) -> None:
    """Per new epoch the step graph returns the last min(n, K + 1) positions (one for a
    causal model) of the window the two-call path computes, and keeps at most
    ``stream_context`` vectors; int8 included, because the step is composed from the very
    int8 encoder and sequence graphs."""
    model = ExportedModel(exported["root"] / "out", precision)
    assert model.step is not None and model.info.streaming == "step"
    rng = np.random.default_rng(3)
    shape = (25, model.info.input["n_frames"], model.info.input["n_freqs"])
    images = rng.normal(-10, 8, shape).astype(np.float32)
    context = model.info.raw["readout"]["stream_context"]
    delays = (0, 2, model.seq_len - 1) if model.fixed_delay is None else (model.fixed_delay,)
    for delay in delays:
        stream, window = StepStream(model, delay), WindowStream(model)
        for t, image in enumerate(images):
            got = stream.logits(image)
            full = window.logits(image)  # (n, n_classes), n = min(t + 1, L)
            m = 1 if model.fixed_delay is not None else min(full.shape[0], delay + 1)
            assert got.shape == (m, model.info.n_classes)
            np.testing.assert_allclose(got, full[-m:], atol=1e-5)
            assert stream.feeds["past"].shape == (min(t + 1, context), model.info.epoch_dim)


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_streaming_through_the_step_equals_offline_across_segments(
    exported: dict, precision: str
) -> None:
    """A gap longer than ``MAX_FILL_S`` starts a new segment: the step's cache is emptied,
    so each segment streams as offline scoring of it alone."""
    model = ExportedModel(exported["root"] / "out", precision)
    night = generate_night(5, 0, sfreq=100.0, stages=SHORT_NIGHT).signals[exported["channel"]]
    first, second = night[: 12 * 3000], night[12 * 3000 : 40 * 3000]
    delays = (0, model.seq_len - 1) if model.fixed_delay is None else (model.fixed_delay,)
    for delay in delays:
        stager = Stager(model, 100.0, delay)
        assert isinstance(stager.calls, StepStream)
        out = stager.push(first)
        resume_s = 12 * 30 + MAX_FILL_S + 60
        out += stager.push(second, t0=resume_s) + stager.flush()
        expected = score_signal(model, first, 100.0, delay) + score_signal(
            model, second, 100.0, delay
        )
        offset = int(resume_s // 30)  # the second segment starts at this epoch
        assert [r.index for r in out] == [
            r.index + (offset if i >= 12 else 0) for i, r in enumerate(expected)
        ]
        np.testing.assert_allclose(
            np.stack([r.probabilities for r in out]),
            np.stack([r.probabilities for r in expected]),
            atol=1e-5,
        )


def test_step_flops_and_logits(exported: dict) -> None:
    """The metadata counts the step's FLOPs; at delay 0 SeqSleepNet's step runs the backward
    sequence GRU one step instead of L (fewer FLOPs than the two calls)."""
    model = ExportedModel(exported["root"] / "out", "fp32")
    flops = model.info.raw["flops"]
    if model.fixed_delay is None:
        assert flops["step_per_new_epoch_delay_0"] < flops["per_new_epoch"]
        assert flops["step_per_new_epoch_delay_max"] >= flops["per_new_epoch"] * 0.99
    else:
        assert flops["step_per_new_epoch_delay_0"] <= flops["per_new_epoch"]
    stream = StepStream(model, 0)
    image = np.zeros((model.info.input["n_frames"], model.info.input["n_freqs"]), np.float32)
    assert np.isfinite(log_softmax(stream.logits(image))).all()


def test_an_export_before_the_step_graph_is_upgraded(exported: dict, tmp_path: Path) -> None:
    """``python -m edgesleep.export.upgrade``: a causal model's step graph composed from its
    exported files alone streams as its two graphs did; a non-causal one is refused (its
    step needs the checkpoint)."""
    from edgesleep.export.upgrade import add_step

    folder = tmp_path / "old"
    shutil.copytree(exported["root"] / "out", folder)
    for precision in ("fp32", "int8"):
        (folder / precision / "step.onnx").unlink()
    if ExportedModel(folder, "fp32").fixed_delay is None:
        with pytest.raises(InputError, match="not causal.*edgesleep export"):
            add_step(folder)
        return
    assert add_step(folder) == [folder / "int8", folder / "fp32"]
    assert add_step(folder) == []  # already there
    signal = generate_night(6, 0, sfreq=100.0, stages=SHORT_NIGHT).signals[exported["channel"]]
    for precision in ("fp32", "int8"):
        upgraded = ExportedModel(folder, precision)
        assert upgraded.step is not None and upgraded.info.streaming == "step"
        stager = Stager(upgraded, 100.0)
        streamed = stager.push(signal) + stager.flush()
        offline = score_signal(ExportedModel(exported["root"] / "out", precision), signal, 100.0)
        np.testing.assert_allclose(
            np.stack([r.probabilities for r in streamed]),
            np.stack([r.probabilities for r in offline]),
            atol=1e-5,
        )
