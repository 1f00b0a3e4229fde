"""Data-parallel training: 2 CPU processes (torchrun, gloo) end with the weights of one
process on the same global batches (dropout off; sums split differently, so to float
tolerance). Class weights, the weighted loss's normalisation, distillation's projection head
and the early-stopping decision are all in play. Weight decay is large so that a gradient
off by a factor (Adam alone would hide it) changes the weights."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from edgesleep.train import checkpoint as ckpt_io

TRAIN = ["--channel", "EOG horizontal", "--max-steps", "8", "--eval-every", "3",
         "--batch-size", "8", "--stride", "3", "--class-weighting", "--device", "cpu",
         "--lr", "0.003"]  # fmt: skip


def run(args: list[str], cwd: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("best validation accuracy") == 1  # rank 1 prints nothing


def same(one: Path, two: Path) -> None:
    a, b = ckpt_io.load(one), ckpt_io.load(two)
    for key, value in a.state_dict.items():
        torch.testing.assert_close(b.state_dict[key], value, rtol=1e-5, atol=1e-6)
    assert a.provenance["training"]["steps"] == b.provenance["training"]["steps"] == 8
    assert a.provenance["metrics"] == pytest.approx(b.provenance["metrics"])


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ddp") / "tiny.toml"
    path.write_text("[model]\ndropout = 0.0\nweight_decay = 0.5\nn_filters = 8\n"
                    "epoch_hidden = 8\nattention_size = 8\nseq_hidden = 8\n")  # fmt: skip
    return path


def test_two_processes_train_as_one(tiny_dataset: Path, tiny_config: Path, tmp_path: Path) -> None:
    common = ["--data", str(tiny_dataset), *TRAIN, "--config", str(tiny_config)]
    run([sys.executable, "-m", "edgesleep.cli.launch", *common, "--out", "one.pt"], tmp_path)
    run([sys.executable, "-m", "edgesleep.cli", "train", *common, "--out", "two.pt",
         "--nproc", "2"], tmp_path)  # fmt: skip
    same(tmp_path / "one.pt", tmp_path / "two.pt")


def test_two_processes_distil_as_one(tiny_dataset: Path, tiny_config: Path, tmp_path: Path) -> None:
    teacher = ["--data", str(tiny_dataset), *TRAIN, "--config", str(tiny_config)]
    run([sys.executable, "-m", "edgesleep.cli.launch", *teacher, "--out", "teacher.pt"], tmp_path)
    student = tmp_path / "student.toml"
    student.write_text("[model]\ndropout = 0.0\nweight_decay = 0.5\nn_bands = 4\n"
                       "channels = [4, 4, 4]\nepoch_dim = 4\n")  # fmt: skip
    common = ["distill", "--teacher", "teacher.pt", "--data", str(tiny_dataset),
              "--student-channel", "EEG C4-A1", "--teacher-channel", "EOG horizontal",
              "--config", str(student), *TRAIN[2:]]  # fmt: skip
    run([sys.executable, "-m", "edgesleep.cli.launch", *common, "--out", "one.pt"], tmp_path)
    env_two = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node=2", "-m", "edgesleep.cli.launch"]  # fmt: skip
    run([*env_two, *common, "--out", "two.pt"], tmp_path)
    same(tmp_path / "one.pt", tmp_path / "two.pt")
