"""SeqSleepNet: shapes, readout, finetuning freezes, checkpoints, the train/evaluate/adapt verbs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from edgesleep.cli import app
from edgesleep.metrics import evaluate
from edgesleep.readout import fuse, log_softmax, window_log_probs
from edgesleep.train import checkpoint as ckpt_io
from edgesleep.train.data import NightFeatures, Windows, norm_stats
from edgesleep.train.evaluate import TorchScorer
from edgesleep.train.seqsleepnet import SeqSleepNet, SeqSleepNetConfig, triangular_filterbank
from edgesleep.train.sequence_model import SEQSLEEPNET_PARTS as FINETUNE
from edgesleep.train.training import TrainOptions, fit


def _nights(n: int, n_epochs: int = 30, seed: int = 0) -> list[NightFeatures]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        labels = rng.integers(0, 5, n_epochs).astype(np.int8)
        images = rng.normal(0, 1, (n_epochs, 29, 129)).astype(np.float32) + labels[:, None, None]
        out.append(NightFeatures(f"r{i}", str(i), images, labels))
    return out


def test_shapes() -> None:
    cfg = SeqSleepNetConfig()
    model = SeqSleepNet(cfg).eval()
    assert model(torch.zeros(2, 20, 29, 129)).shape == (2, 20, 5)
    assert model.encoder(torch.zeros(3, 29, 129)).shape == (3, 128)
    assert model.sequence(torch.zeros(1, 7, 128)).shape == (1, 7, 5)  # dynamic L
    assert 100_000 < sum(p.numel() for p in model.parameters()) < 150_000
    masks = triangular_filterbank(32, 129, 100.0, 50.0)
    assert masks.shape == (129, 32) and masks.min() == 0 and (masks.max(axis=0) > 0.8).all()


def test_fusion_matches_the_definition() -> None:
    rng = np.random.default_rng(0)
    seq_len, n_epochs = 4, 9
    windows = [log_softmax(rng.normal(size=(min(t + 1, seq_len), 3))) for t in range(n_epochs)]
    for delay in range(seq_len):
        fused = fuse(windows, seq_len, delay)
        for i in range(n_epochs):
            total = np.zeros(3)
            for t in range(i, min(i + delay, n_epochs - 1) + 1):
                start = max(0, t - seq_len + 1)
                total += windows[t][i - start]
            np.testing.assert_allclose(fused[i], np.exp(log_softmax(total)))
    # K = 0 is the last position of the window ending at i
    np.testing.assert_allclose(
        fuse(windows, seq_len, 0), np.exp(np.stack([w[-1] for w in windows]))
    )
    with pytest.raises(ValueError, match="delay"):
        fuse(windows, seq_len, seq_len)


def test_batched_windows_equal_single_calls() -> None:
    torch.manual_seed(0)
    model = SeqSleepNet(SeqSleepNetConfig(seq_len=5)).eval()
    images = np.random.default_rng(1).normal(size=(12, 29, 129)).astype(np.float32)
    mean, std = np.zeros(129, np.float32), np.ones(129, np.float32)
    logp = window_log_probs(TorchScorer(model, mean, std), images)
    assert [w.shape[0] for w in logp] == [1, 2, 3, 4, 5, 5, 5, 5, 5, 5, 5, 5]
    with torch.no_grad():
        z = model.encoder(torch.from_numpy(images))
        single = model.sequence(z[None, 3:8])[0].numpy()
    np.testing.assert_allclose(logp[7], log_softmax(single.astype(np.float64)), atol=1e-5)


def test_metrics_against_sklearn() -> None:
    from sklearn.metrics import cohen_kappa_score, f1_score

    rng = np.random.default_rng(0)
    truth = rng.integers(0, 5, 500)
    pred = np.where(rng.random(500) < 0.7, truth, rng.integers(0, 5, 500))
    m = evaluate(np.r_[truth, -2], np.r_[pred, 0], 5)
    assert m["n_epochs"] == 500
    assert m["kappa"] == pytest.approx(cohen_kappa_score(truth, pred))
    assert m["macro_f1"] == pytest.approx(f1_score(truth, pred, average="macro"))
    assert m["weighted_f1"] == pytest.approx(f1_score(truth, pred, average="weighted"))


@pytest.mark.parametrize("finetune", list(FINETUNE))
def test_frozen_parts_stay_bit_identical(finetune: str) -> None:
    torch.manual_seed(0)
    model = SeqSleepNet(SeqSleepNetConfig(seq_len=5))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    nights = _nights(3)
    mean, std = norm_stats(nights)
    opts = TrainOptions(max_steps=3, batch_size=4, eval_every=3, stride=5, finetune=finetune)
    fit(model, nights[:2], nights[2:], mean, std, opts)
    trained = set(FINETUNE[finetune])
    names = {
        "filterbank": "encoder.filterbank.",
        "epoch": ("encoder.rnn.", "encoder.attention.", "encoder.context."),
        "sequence": "sequence.rnn.",
        "softmax": "sequence.classifier.",
    }
    for key, value in model.state_dict().items():
        part = next(
            p
            for p, prefix in names.items()
            if key.startswith(prefix) or key == "encoder.filterbank.mask"
        )
        same = torch.equal(before[key], value)
        if key == "encoder.filterbank.mask":
            assert same
        elif part in trained:
            assert not same, f"{key} should have trained under {finetune}"
        else:
            assert same, f"{key} changed under {finetune}"


def test_windows_skip_unscored_and_use_ignore_index() -> None:
    nights = _nights(1, 12)
    labels = nights[0].labels.copy()
    labels[:6] = -2
    night = NightFeatures("r", "0", nights[0].images, labels)
    mean, std = norm_stats([night])
    windows = Windows([night], mean, std, seq_len=4, stride=2)
    assert [s for _, s in windows.index] == [4, 6, 8]  # windows 0 and 2 are all unscored
    x, y = windows[0]
    assert x.shape == (4, 29, 129) and y.tolist()[:2] == [-100, -100]


def test_train_evaluate_adapt_finetune_verbs(tiny_dataset: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    src = tmp_path / "src.pt"
    common = ["--max-steps", "4", "--eval-every", "2", "--stride", "10", "--seed", "1"]
    result = runner.invoke(
        app,
        ["train", "--data", str(tiny_dataset), "--channel", "C4-A1", "--out", str(src), *common],
    )
    assert result.exit_code == 0, result.output
    assert "SYNTHETIC" in result.output
    ckpt = ckpt_io.load(src)
    assert ckpt.channel == "C4-A1" and ckpt.provenance["synthetic"] is True
    assert ckpt.provenance["git_commit"] and set(ckpt.provenance["val_subjects"]).isdisjoint(
        ckpt.provenance["train_subjects"]
    )
    assert ckpt.norm_mean.shape == (129,)

    target = tmp_path / "eog.pt"
    result = runner.invoke(
        app,
        [
            "train",
            "--data",
            str(tiny_dataset),
            "--channel",
            "EOG horizontal",
            "--init-from",
            str(src),
            "--finetune",
            "softmax",
            "--out",
            str(target),
            *common,
        ],
    )
    assert result.exit_code == 0, result.output
    tuned = ckpt_io.load(target)
    assert tuned.channel == "EOG horizontal" and tuned.provenance["parent"]["channel"] == "C4-A1"
    for key, value in tuned.state_dict.items():
        if not key.startswith("sequence.classifier"):
            assert torch.equal(value, ckpt.state_dict[key]), key
    # normalisation comes from the target channel, not the source
    assert not np.allclose(tuned.norm_mean, ckpt.norm_mean)

    result = runner.invoke(
        app,
        [
            "evaluate",
            str(target),
            "--data",
            str(tiny_dataset),
            "--delay",
            "0",
            "--delay",
            "19",
            "--json",
            str(tmp_path / "m.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "kappa" in result.output and (tmp_path / "m.json").is_file()

    adapted = tmp_path / "adapted.pt"
    result = runner.invoke(
        app, ["adapt", str(target), "--data", str(tiny_dataset), "--out", str(adapted)]
    )
    assert result.exit_code == 0, result.output
    again = ckpt_io.load(adapted)
    assert not np.array_equal(again.norm_mean, tuned.norm_mean)
    assert all(torch.equal(again.state_dict[k], v) for k, v in tuned.state_dict.items())


def test_bad_checkpoint_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "x.pt"
    bad.write_bytes(b"not a checkpoint")
    result = CliRunner().invoke(app, ["evaluate", str(bad), "--data", str(tmp_path)])
    assert result.exit_code == 1 and "not an edgesleep checkpoint" in result.output
    with pytest.raises(ValueError, match="--finetune .half.: choose one of"):
        fit(
            SeqSleepNet(SeqSleepNetConfig()),
            [],
            [],
            np.zeros(129),
            np.ones(129),
            TrainOptions(finetune="half"),
        )
