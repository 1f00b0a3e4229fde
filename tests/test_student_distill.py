"""The compact student and distillation: shapes for every registered model, causality,
quantizable operators, the loss, and the distill verb on a tiny SYNTHETIC cohort."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from edgesleep.cli import app
from edgesleep.train import checkpoint as ckpt_io
from edgesleep.train.distill import DistillOptions, distill_loss
from edgesleep.train.models import BUILTIN, build, make_config


@pytest.mark.parametrize("name", sorted(BUILTIN))
@pytest.mark.parametrize("n_classes", [3, 4, 5])
def test_every_model_shapes(name: str, n_classes: int) -> None:
    model = build(name, make_config(name, n_classes=n_classes)).eval()
    assert model(torch.zeros(2, 20, 29, 129)).shape == (2, 20, n_classes)
    z = model.encoder(torch.zeros(3, 29, 129))  # type: ignore[operator]
    assert z.ndim == 2 and z.shape[0] == 3
    assert model.sequence(torch.zeros(1, 7, z.shape[1])).shape == (1, 7, n_classes)  # type: ignore[operator]
    groups = model.parameter_groups()  # type: ignore[operator]
    assert sum(p.numel() for ps in groups.values() for p in ps) == sum(
        p.numel() for p in model.parameters()
    )


def test_student_is_small_quantizable_and_causal() -> None:
    torch.manual_seed(0)
    model = build("student", make_config("student")).eval()
    assert sum(p.numel() for p in model.parameters()) <= 50_000
    kinds = {type(m).__name__ for m in model.modules()}
    assert kinds <= {
        "Student",
        "StudentEncoder",
        "CausalSequence",
        "Linear",
        "Conv1d",
        "ReLU",
        "Sequential",
        "ModuleList",
        "Dropout",
    }
    z = torch.randn(1, 12, model.cfg.epoch_dim)  # type: ignore[union-attr]
    later = z.clone()
    later[0, 8:] += 1.0
    with torch.no_grad():
        a, b = model.sequence(z), model.sequence(later)  # type: ignore[operator]
    assert torch.equal(a[0, :8], b[0, :8])  # outputs up to t never see t + 1
    assert not torch.equal(a[0, 8:], b[0, 8:])


def test_kl_term_vanishes_for_a_student_equal_to_the_teacher() -> None:
    torch.manual_seed(0)
    teacher = build("seqsleepnet", make_config("seqsleepnet", n_classes=5)).eval()
    student = copy.deepcopy(teacher).eval()
    x = torch.randn(2, 6, 29, 129)
    y = torch.randint(0, 5, (2, 6))
    only_kl = DistillOptions(soft_targets=True, feature_transfer=False, alpha=1.0, temperature=2.0)
    assert distill_loss(teacher, 5, 5, only_kl, None, None)(student, (x, x, y)).item() == (
        pytest.approx(0.0, abs=1e-6)
    )
    # without soft targets and features the loss is plain cross-entropy
    only_ce = DistillOptions(soft_targets=False, feature_transfer=False)
    ce = distill_loss(teacher, 5, 5, only_ce, None, None)(student, (x, x, y)).item()
    expected = torch.nn.functional.cross_entropy(student(x).reshape(-1, 5), y.reshape(-1))
    assert ce == pytest.approx(expected.item(), rel=1e-6)


def test_distill_verb(tiny_dataset: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    teacher = tmp_path / "teacher.pt"
    fast = ["--max-steps", "2", "--eval-every", "2", "--stride", "10"]
    result = runner.invoke(
        app,
        [
            "train",
            "--data",
            str(tiny_dataset),
            "--channel",
            "EEG Fpz-Cz",
            "--out",
            str(teacher),
            *fast,
        ],
    )
    assert result.exit_code == 0, result.output
    for classes, flags in (("4", []), ("3", ["--no-soft-targets", "--no-feature-transfer"])):
        out = tmp_path / f"student{classes}.pt"
        result = runner.invoke(
            app,
            [
                "distill",
                "--teacher",
                str(teacher),
                "--data",
                str(tiny_dataset),
                "--student-channel",
                "ECG",
                "--classes",
                classes,
                "--out",
                str(out),
                *fast,
                *flags,
            ],
        )
        assert result.exit_code == 0, result.output
        assert "SYNTHETIC" in result.output
        ckpt = ckpt_io.load(out)
        assert ckpt.model == "student" and ckpt.channel == "ECG" and ckpt.n_classes == int(classes)
        assert ckpt.provenance["teacher"]["channel"] == "EEG Fpz-Cz"
        assert ckpt.provenance["distillation"]["soft_targets"] is (not flags)
    too_many = runner.invoke(
        app,
        [
            "distill",
            "--teacher",
            str(out),
            "--data",
            str(tiny_dataset),
            "--student-channel",
            "ECG",
            "--classes",
            "5",
            *fast,
        ],
    )
    assert too_many.exit_code == 2 and "the teacher has 3" in too_many.output
