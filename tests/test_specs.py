"""Run specs (issue 30): one spec per run, built from --config and the command line with
the precedence decided in one place; the CLI only parses; 0.1's positional calls still
work for a release."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgesleep.config import layered
from edgesleep.errors import UsageError
from edgesleep.train.specs import DistillSpec, TrainSpec, distill_spec, train_spec
from edgesleep.train.training import DEFAULT_STRIDE, TrainOptions


def test_the_command_line_wins_over_the_file_and_the_file_over_defaults() -> None:
    file = {"lr": 0.01, "batch_size": 8}
    line = {"lr": 0.5, "batch_size": 32, "seed": 3}  # 32: the option's default, not typed
    assert layered(file, line, given={"lr"}) == {"lr": 0.5, "batch_size": 8, "seed": 3}
    assert layered({}, line, given=()) == line


def test_train_spec_from_config_and_command_line(tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text("[model]\ndilations = [1, 2, 4]\n[train]\nlr = 0.003\npasses = 2.0\n")
    values = {
        "data": tmp_path,
        "channel": "ECG",
        "model": "student",
        "classes": 4,
        "lr": 1e-4,
        "passes": 10.0,
        "stride": None,
        "seed": 7,
        "subjects": ["0", "1"],
    }
    spec = train_spec(values, given={"passes", "seed"}, config=config)
    assert isinstance(spec, TrainSpec) and isinstance(spec.train, TrainOptions)
    assert spec.train.lr == 0.003  # the file's: lr was not typed
    assert spec.train.passes == 10.0 and spec.train.seed == 7  # typed: the command line's
    assert spec.train.stride == DEFAULT_STRIDE and spec.subjects == ("0", "1")
    assert spec.model_config == {"dilations": [1, 2, 4]} and spec.classes == 4
    config.write_text("[train]\nlearning_rate = 0.1\n")
    with pytest.raises(UsageError, match="unknown key 'learning_rate'; valid keys: .*'lr'"):
        train_spec(values, config=config)
    with pytest.raises(UsageError, match="classes = 'four'"):
        train_spec({**values, "classes": "four"})


def test_distill_spec_takes_a_distill_section(tmp_path: Path) -> None:
    config = tmp_path / "kd.toml"
    config.write_text("[distill]\nalpha = 0.9\ntemperature = 2.0\n")
    values = {
        "teacher": tmp_path / "t.pt",
        "data": tmp_path,
        "student_channel": "ECG",
        "alpha": 0.5,
        "temperature": 1.0,
        "soft_targets": True,
    }
    spec = distill_spec(values, given={"temperature"}, config=config)
    assert isinstance(spec, DistillSpec)
    assert spec.distill.alpha == 0.9 and spec.distill.temperature == 1.0


def test_the_train_verb_only_parses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from edgesleep.cli import app
    from edgesleep.train import transfer

    got = {}

    def fake(spec: TrainSpec, progress: object = None) -> None:
        got["spec"] = spec
        raise SystemExit(0)

    monkeypatch.setattr(transfer, "train_model", fake)
    config = tmp_path / "run.toml"
    config.write_text("[train]\nlr = 0.003\nbatch_size = 8\n")
    result = CliRunner().invoke(app, ["train", "--data", str(tmp_path), "--channel", "ECG",
                                      "--config", str(config), "--batch-size", "16",
                                      "--input", "beats", "--subjects", "0,1"])  # fmt: skip
    assert result.exit_code == 0, result.output
    spec = got["spec"]
    assert spec.train.lr == 0.003 and spec.train.batch_size == 16  # typed wins
    assert spec.input == "beats" and spec.subjects == ("0", "1")


def test_the_positional_call_of_0_1_still_works_for_a_release(tmp_path: Path) -> None:
    from edgesleep.train.transfer import _legacy_spec

    with pytest.warns(DeprecationWarning, match="pass a TrainSpec"):
        spec, _ = _legacy_spec(tmp_path, "ECG", tmp_path / "m.pt", "student", 3,
                               subjects=["0"], input_kind="beats")  # fmt: skip
    assert spec == TrainSpec(tmp_path, "ECG", tmp_path / "m.pt", "student", 3, "beats",
                             subjects=("0",))  # fmt: skip


def test_moved_modules_forward_for_a_release() -> None:
    import importlib

    for old, new, name in (("edgesleep.night", "edgesleep.night_file", "NightSink"),
                           ("edgesleep.synth.night", "edgesleep.synth.psg", "generate_night"),
                           ("edgesleep.train.staging", "edgesleep.train.sequence_model",
                            "EpochSequenceModel")):  # fmt: skip
        with pytest.warns(DeprecationWarning, match=f"{old} is deprecated; use {new}"):
            value = getattr(importlib.import_module(old), name)
        assert value is getattr(importlib.import_module(new), name)
