"""--device and --amp (issue 20, item 1): named devices resolve or are refused before any
data loads; CPU training is unchanged; checkpoints hold CPU tensors."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from edgesleep.cli import app
from edgesleep.errors import UsageError
from edgesleep.train.specs import TrainSpec
from edgesleep.train.training import TrainOptions, resolve_device
from edgesleep.train.transfer import train_model


def test_device_names() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available() and torch.backends.mps.is_available():
        expected = "mps"
    assert resolve_device("auto").type == expected
    with pytest.raises(UsageError, match="choose auto, cpu, cuda, cuda:N or mps"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="0 CUDA device"):
            resolve_device("cuda:0")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a CPU machine")
@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--device", "cuda"], "0 CUDA device"),
        (["--device", "cuda:3"], "0 CUDA device"),
        (["--amp", "bf16"], "CUDA only"),
        (["--amp", "fp16"], "'fp16' is not one of 'bf16'"),
    ],
)
def test_unusable_devices_are_usage_errors_before_any_data(
    args: list[str], words: str, tmp_path: Path
) -> None:
    base = ["train", "--data", str(tmp_path / "nowhere"), "--channel", "EOG"]
    result = CliRunner().invoke(app, [*base, *args])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and words in lines[0], result.output


@pytest.mark.skipif(resolve_device("auto").type != "cpu", reason="auto is an accelerator here")
def test_cpu_training_is_unchanged_and_checkpoints_are_cpu_tensors(
    tiny_dataset: Path, tmp_path: Path
) -> None:
    opts = TrainOptions(max_steps=4, eval_every=2, stride=5, seed=3)
    fields = {"n_bands": 4, "channels": (4, 4, 4), "epoch_dim": 4}
    runs = [
        train_model(TrainSpec(tiny_dataset, "EOG horizontal", tmp_path / f"{d}.pt", "student", 5,
                              subjects=("0", "1"), train=replace(opts, device=d),
                              model_config=fields))
        for d in ("auto", "cpu")
    ]  # fmt: skip
    for key, value in runs[0].state_dict.items():
        assert value.device.type == "cpu" and torch.equal(value, runs[1].state_dict[key])
