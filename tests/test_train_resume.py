"""A killed training run continues with --resume and ends with the weights of an
uninterrupted run (issue 20, item 4; CPU, deterministic)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from edgesleep.cli import app
from edgesleep.train import checkpoint as ckpt_io


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Bit for bit needs the same thread count in every process (sums split differently)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_sigkill_then_resume_ends_as_the_uninterrupted_run(
    tiny_dataset: Path, tmp_path: Path, one_thread: None
) -> None:
    config = tmp_path / "run.toml"
    config.write_text(
        "[model]\nn_bands = 4\nchannels = [4, 4, 4]\nepoch_dim = 4\n"
        "[train]\nmax_steps = 60\neval_every = 4\nstride = 2\nbatch_size = 4\nlr = 0.003\n"
        "patience = 100\n"
    )
    args = ["train", "--data", str(tiny_dataset), "--channel", "EOG horizontal", "--model",
            "student", "--subjects", "0,1,2", "--config", str(config),
            "--device", "cpu"]  # fmt: skip
    whole = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "whole.pt")])
    assert whole.exit_code == 0, whole.output
    out = tmp_path / "killed.pt"
    state = out.with_name(out.name + ".state")
    # the same run, slowed down by a progress callback so that it can be killed midway
    slow = (
        "import sys, time; from pathlib import Path; import torch; torch.set_num_threads(1)\n"
        "from edgesleep.train.training import TrainOptions, load_run_config\n"
        "from edgesleep.train.transfer import train_model\n"
        "fields, train = load_run_config(Path(sys.argv[2]))\n"
        "opts = TrainOptions(**{**train, 'device': 'cpu'})\n"
        "from edgesleep.train.specs import TrainSpec\n"
        "spec = TrainSpec(Path(sys.argv[1]), 'EOG horizontal', Path(sys.argv[3]), 'student', 5,\n"
        "                 subjects=('0', '1', '2'), train=opts, model_config=fields)\n"
        "train_model(spec, progress=lambda *a: time.sleep(0.1))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", slow, str(tiny_dataset), str(config), str(out)],
                            cwd=tmp_path)  # fmt: skip
    deadline = time.monotonic() + 60
    while not state.is_file() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.5)  # a few more steps past the saved state
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert state.is_file() and not out.exists()
    resumed = CliRunner().invoke(app, [*args, "--out", str(out), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert not state.exists()
    a, b = ckpt_io.load(tmp_path / "whole.pt"), ckpt_io.load(out)
    for key, value in a.state_dict.items():
        assert torch.equal(value, b.state_dict[key]), key
    assert a.provenance["training"]["best_step"] == b.provenance["training"]["best_step"]


def test_an_interrupted_distillation_resumes_to_the_same_student(
    tiny_dataset: Path, tmp_path: Path, one_thread: None
) -> None:
    from edgesleep.train.distill import distill_model
    from edgesleep.train.specs import DistillOptions, DistillSpec, TrainSpec
    from edgesleep.train.training import TrainOptions
    from edgesleep.train.transfer import train_model

    small = {"n_bands": 4, "channels": (4, 4, 4), "epoch_dim": 4}
    opts = TrainOptions(max_steps=16, eval_every=4, stride=2, batch_size=4, lr=3e-3,
                        patience=100, device="cpu")  # fmt: skip
    teacher = tmp_path / "teacher.pt"
    train_model(TrainSpec(tiny_dataset, "EEG Fpz-Cz", teacher, "student", 4,
                          subjects=("0", "1", "2"), train=opts, model_config=small))  # fmt: skip
    common = {"classes": 4, "subjects": ("0", "1", "2"), "train": opts, "model_config": small,
              "distill": DistillOptions(feature_transfer=True)}  # fmt: skip
    whole = distill_model(DistillSpec(teacher, tiny_dataset, "ECG", tmp_path / "whole.pt",
                                      **common))  # fmt: skip

    def crash(step: int, *_: object) -> None:
        if step == 10:  # after the state saved at step 8
            raise KeyboardInterrupt

    out = tmp_path / "resumed.pt"
    with pytest.raises(KeyboardInterrupt):
        distill_model(DistillSpec(teacher, tiny_dataset, "ECG", out, **common), progress=crash)
    assert out.with_name(out.name + ".state").is_file()
    resumed = distill_model(DistillSpec(teacher, tiny_dataset, "ECG", out, resume=True, **common))
    for key, value in whole.state_dict.items():
        assert torch.equal(value, resumed.state_dict[key]), key
