"""A new architecture or input kind is one definition: throwaway ones, defined here and
registered at run time, go through train -> export -> stage without any other file
knowing them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from edgesleep.api import score_file
from edgesleep.dsp import EPOCH_SAMPLES
from edgesleep.dsp import inputs as input_registry
from edgesleep.dsp.inputs import InputKind
from edgesleep.io.dataset import read_dataset
from edgesleep.io.edf import read_signal
from edgesleep.ort import ExportedModel
from edgesleep.readout import default_delay, probabilities
from edgesleep.stager import Stager, score_signal
from edgesleep.train import checkpoint as ckpt_io
from edgesleep.train import models as model_registry
from edgesleep.train.sequence_model import EpochSequenceModel
from edgesleep.train.specs import TrainSpec
from edgesleep.train.training import TrainOptions
from edgesleep.train.transfer import train_model


@dataclass(frozen=True)
class CausalGruConfig:
    n_classes: int = 5
    seq_len: int = 6
    hidden: int = 6
    weight_decay: float = 1e-4
    n_frames: int = 29
    n_freqs: int = 129


class CausalGruHead(nn.Module):
    """(batch, L, hidden) -> logits; a forward-only GRU, so position t sees epochs <= t."""

    def __init__(self, cfg: CausalGruConfig) -> None:
        super().__init__()
        self.memory = nn.GRU(cfg.hidden, cfg.hidden, batch_first=True)
        self.out = nn.Linear(cfg.hidden, cfg.n_classes)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(self.memory(z)[0])


class CausalGru(EpochSequenceModel):
    """Differs from SeqSleepNet and the student in every declaration it can: causal with a
    GRU, weight-only int8, its own parts, classifier prefix, decay rule and version."""

    name = "causal-gru-test"
    version = 7
    config_class = CausalGruConfig
    causal = True
    quantization = "weight-only"
    classifier = "sequence.out"
    finetune_parts = {
        "none": (),
        "softmax": ("out",),
        "softmax+epoch": ("out", "frames"),
        "softmax+sequence": ("out", "memory"),
        "all": ("out", "frames", "memory"),
    }
    no_decay = ("out",)

    def __init__(self, cfg: CausalGruConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = nn.Sequential(
            nn.Flatten(), nn.Linear(cfg.n_frames * cfg.n_freqs, cfg.hidden)
        )
        self.sequence = CausalGruHead(cfg)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        return {
            "frames": list(self.encoder.parameters()),
            "memory": list(self.sequence.memory.parameters()),
            "out": list(self.sequence.out.parameters()),
        }


def envelope_images(signal: np.ndarray) -> np.ndarray:
    """(n_epochs * 3000,) µV at 100 Hz -> (n_epochs, 30, 10): log mean |x| of 0.1-s blocks."""
    n_epochs = signal.shape[0] // EPOCH_SAMPLES
    blocks = np.abs(signal[: n_epochs * EPOCH_SAMPLES]).reshape(n_epochs, 30, 10, 10)
    return np.log(blocks.mean(axis=3) + 1.0).astype(np.float32)


class EnvelopeStream:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.buffer = np.zeros(0)
        self.n_epochs = 0

    def push(self, y: np.ndarray) -> list[tuple[int, np.ndarray]]:
        self.buffer = np.concatenate([self.buffer, y])
        out = []
        while self.buffer.shape[0] >= EPOCH_SAMPLES:
            image = envelope_images(self.buffer[:EPOCH_SAMPLES])[0]
            out.append((self.n_epochs, image))
            self.buffer, self.n_epochs = self.buffer[EPOCH_SAMPLES:], self.n_epochs + 1
        return out

    def flush(self, n_samples: int) -> list[tuple[int, np.ndarray]]:
        return []


ENVELOPE = InputKind(
    name="envelope-test",
    help="log amplitude envelope, 0.1-s blocks",
    image_shape=(30, 10),
    spectral=False,
    images=envelope_images,
    stream=EnvelopeStream,
    metadata={"block_s": 0.1, "scale": "log(mean |x| + 1)"},
)


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(model_registry, "_MODELS", dict(model_registry._MODELS))
    monkeypatch.setattr(input_registry, "_KINDS", dict(input_registry._KINDS))
    model_registry.register(CausalGru)
    input_registry.register(ENVELOPE)
    yield


OPTS = TrainOptions(max_steps=6, eval_every=3, stride=3, batch_size=4, lr=3e-3, seed=2)


def test_new_model_trains_finetunes_exports_and_stages(
    registered: None, tiny_dataset: Path, tmp_path: Path
) -> None:
    from edgesleep.export.pipeline import ExportOptions, export_model

    channel, subjects = "EEG Fpz-Cz", ["0", "1"]
    first = train_model(TrainSpec(tiny_dataset, channel, tmp_path / "m.pt", CausalGru.name, 5,
                                  subjects=tuple(subjects), train=OPTS))  # fmt: skip
    assert isinstance(first.build(), CausalGru)
    # finetune onto 3 classes: only its declared "softmax" part ("out") may change
    opts = TrainOptions(**{**OPTS.__dict__, "finetune": "softmax"})
    tuned = train_model(TrainSpec(tiny_dataset, channel, tmp_path / "ft.pt", CausalGru.name, 3,
                                  init_from=tmp_path / "m.pt", subjects=tuple(subjects),
                                  train=opts))  # fmt: skip
    for key, value in tuned.state_dict.items():
        if not key.startswith("sequence.out."):
            assert torch.equal(value, first.state_dict[key]), key
    report = export_model(
        tmp_path / "ft.pt", tmp_path / "out", ExportOptions(quantize=True, latency_repeats=2)
    )
    assert report["variants"]["int8"]["quantization"]["method"].startswith("weight-only")
    night = read_dataset(tiny_dataset).root / read_dataset(tiny_dataset).entries[4].psg
    for precision in ("fp32", "int8"):
        model = ExportedModel(tmp_path / "out", precision)
        raw = model.info.raw
        readout = raw["readout"]
        assert raw["model"]["version"] == 7 and readout["causal"] is True
        hyp = score_file(night, model)
        assert hyp.n_epochs > 20 and set(hyp.labels) == {"W", "NREM", "REM"}
        recording = read_signal(night, channel)  # streamed through its step graph
        stager = Stager(model, recording.sfreq)
        streamed = [r.stage for r in stager.push(recording.data) + stager.flush()]
        assert model.step is not None and streamed == [int(s) for s in hyp.stages]
    signal = read_signal(night, channel)
    from edgesleep.dsp import stft_signal

    scorer = ckpt_io.load(tmp_path / "ft.pt").scorer()
    k = default_delay(scorer)  # causal: its fixed delay (0), not the fusion
    assert k == 0 and readout["delay"] == 0
    expected = probabilities(scorer, stft_signal(signal.data), [k])
    got = score_signal(ExportedModel(tmp_path / "out", "fp32"), signal.data, signal.sfreq)
    np.testing.assert_allclose(np.stack([r.probabilities for r in got]), expected[k], atol=1e-4)


def test_new_input_kind_trains_exports_and_streams(
    registered: None, tiny_dataset: Path, tmp_path: Path
) -> None:
    from edgesleep.export.pipeline import ExportOptions, export_model

    fields = {"n_bands": 4, "channels": (4, 4, 4), "epoch_dim": 4}
    ckpt = train_model(TrainSpec(tiny_dataset, "EOG horizontal", tmp_path / "m.pt", "student", 4,
                                 ENVELOPE.name, subjects=("0", "1"), train=OPTS,
                                 model_config=fields))  # fmt: skip
    assert (ckpt.config["n_frames"], ckpt.config["n_freqs"]) == (30, 10)
    export_model(tmp_path / "m.pt", tmp_path / "out", ExportOptions(latency_repeats=2))
    model = ExportedModel(tmp_path / "out", "fp32")
    assert model.info.input == ENVELOPE.spec()
    night = read_dataset(tiny_dataset).root / read_dataset(tiny_dataset).entries[5].psg
    signal = read_signal(night, "EOG horizontal")
    offline = score_signal(model, signal.data, signal.sfreq)
    stager, streamed = Stager(model, signal.sfreq), []
    for start in range(0, signal.data.shape[0], 777):
        streamed += stager.push(signal.data[start : start + 777])
    streamed += stager.flush()
    assert len(streamed) == len(offline) == signal.data.shape[0] // EPOCH_SAMPLES
    np.testing.assert_allclose(
        np.stack([r.probabilities for r in streamed]),
        np.stack([r.probabilities for r in offline]),
        atol=1e-5,
    )
    k = default_delay(ckpt.scorer())
    expected = probabilities(ckpt.scorer(), envelope_images(signal.data), [k])[k]
    np.testing.assert_allclose(np.stack([r.probabilities for r in offline]), expected, atol=1e-4)
