"""A causal model's readout is its fixed delay: trained to stage epoch t - K at position t,
read out from the window ending K epochs later; fusion is refused for it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from edgesleep.cli import app
from edgesleep.errors import InputError
from edgesleep.io.edf import read_signal
from edgesleep.ort import ExportedModel
from edgesleep.readout import CausalReadout, Fusion, default_delay, probabilities, read_out
from edgesleep.stager import Stager, score_signal
from edgesleep.train import checkpoint as ckpt_io
from edgesleep.train.models import build, make_config
from edgesleep.train.training import align_to_delay


def test_causal_readout_stages_each_epoch_from_k_windows_later() -> None:
    rng = np.random.default_rng(0)
    # window t: log-probabilities for its positions; the last one is what a causal model says
    windows = [np.log(rng.dirichlet(np.ones(3), size=min(t + 1, 5))) for t in range(9)]
    probs = read_out(windows, CausalReadout(5, 2))
    expected = [windows[i + 2][-1] for i in range(7)] + [windows[8][-1]] * 2
    np.testing.assert_allclose(np.log(probs), np.stack(expected), atol=1e-12)
    np.testing.assert_allclose(
        read_out(windows, CausalReadout(5, 0)), read_out(windows, Fusion(5, 0))
    )


def test_training_pairs_position_t_with_epoch_t_minus_k(tiny_models: dict) -> None:
    cfg = make_config("student", "stft", delay=2, **tiny_models["student"])
    model = build("student", cfg)
    assert model.fixed_delay == 2 and model.causal
    outputs, targets = torch.arange(10).reshape(1, 10), torch.arange(100, 110).reshape(1, 10)
    out, tgt = align_to_delay(model, outputs, targets)
    assert out.tolist() == [[2, 3, 4, 5, 6, 7, 8, 9]] and tgt.tolist() == [list(range(100, 108))]


def test_a_delayed_causal_model_trains_exports_and_streams(
    tiny_dataset: Path, tiny_models: dict, tmp_path: Path
) -> None:
    from edgesleep.export.pipeline import ExportOptions, export_model
    from edgesleep.train.specs import TrainSpec
    from edgesleep.train.training import TrainOptions
    from edgesleep.train.transfer import train_model

    fields = {**tiny_models["student"], "delay": 2}
    opts = TrainOptions(max_steps=10, eval_every=5, stride=2, lr=3e-3)
    train_model(TrainSpec(tiny_dataset, "EEG Fpz-Cz", tmp_path / "m.pt", "student", 3,
                          subjects=("0", "1"), train=opts, model_config=fields))  # fmt: skip
    export_model(tmp_path / "m.pt", tmp_path / "out", ExportOptions(latency_repeats=2))
    model = ExportedModel(tmp_path / "out", "fp32")
    assert model.fixed_delay == 2 and model.info.raw["readout"]["delay"] == 2
    night = tiny_dataset / "psg" / sorted(p.name for p in (tiny_dataset / "psg").iterdir())[4]
    signal = read_signal(night, "EEG Fpz-Cz")
    offline = score_signal(model, signal.data, signal.sfreq)  # the default: its fixed delay
    stager, streamed = Stager(model, signal.sfreq), []
    for i in range(0, signal.data.shape[0], 1234):
        streamed += stager.push(signal.data[i : i + 1234])
    streamed += stager.flush()
    assert [r.index for r in streamed] == [r.index for r in offline] == list(range(len(offline)))
    np.testing.assert_allclose(np.stack([r.probabilities for r in streamed]),
                               np.stack([r.probabilities for r in offline]), atol=1e-5)  # fmt: skip
    # the torch side reads it out the same way
    from edgesleep.dsp import stft_signal

    scorer = ckpt_io.load(tmp_path / "m.pt").scorer()
    assert default_delay(scorer) == 2
    expected = probabilities(scorer, stft_signal(signal.data), [2])[2]
    np.testing.assert_allclose(np.stack([r.probabilities for r in offline]), expected, atol=1e-4)
    # fusion (or another delay) is refused, by the API and by the CLI
    with pytest.raises(InputError, match="causal and was trained for a delay of 2"):
        Stager(model, signal.sfreq, delay=19)
    with pytest.raises(ValueError, match="readout delay is 2"):
        probabilities(scorer, stft_signal(signal.data), [0])
    result = CliRunner().invoke(app, ["stage", str(night), "--model", str(tmp_path / "out"),
                                      "--out", str(tmp_path / "s"), "--delay", "5"])  # fmt: skip
    assert result.exit_code == 2 and "a delay of 2 epoch(s)" in result.output


def test_the_old_config_key_still_works_for_a_release() -> None:
    from edgesleep.config import from_mapping
    from edgesleep.train.student import StudentConfig

    with pytest.warns(DeprecationWarning, match="'lookahead' is now 'delay'"):
        cfg = from_mapping(StudentConfig, {"lookahead": 3}, "[model]")
    assert cfg.delay == 3
