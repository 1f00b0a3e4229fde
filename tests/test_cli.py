"""Every misuse ends in one line naming the problem and the fix, exit 2 (usage) or 1 (data),
no traceback; options are checked before any data loads."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgesleep.cli import app
from edgesleep.io.dataset import read_dataset, write_dataset


def _run(*args: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.output
    return result.exit_code, result.output.strip().splitlines()


def _one_line(code: int, lines: list[str], exit_code: int, *words: str) -> None:
    assert code == exit_code, lines
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert all(w in lines[0] for w in words), lines


@pytest.fixture
def one_subject(tiny_dataset: Path, tmp_path: Path) -> Path:
    ds = read_dataset(tiny_dataset)
    keep = [e for e in ds.entries if e.subject == "0"]
    for e in keep:
        (tmp_path / e.psg).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(tiny_dataset / e.psg, tmp_path / e.psg)
    write_dataset(tmp_path, keep, ds.info)
    return tmp_path


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("--model", "foo", ["'foo' is not one of", "seqsleepnet", "student"]),
        ("--input", "foo", ["'foo' is not one of", "stft", "beats"]),
        ("--classes", "6", ["'6' is not one of", "'3'"]),
        ("--crop", "bogus", ["'bogus' is not one of", "in-bed"]),
        ("--finetune", "half", ["'half' is not one of", "softmax+epoch"]),
    ],
)
def test_bad_choices_are_usage_errors_before_any_data(
    option: str, value: str, words: list[str], tmp_path: Path
) -> None:
    # the dataset does not exist: the choice is refused first
    args = ["train", "--data", str(tmp_path / "nowhere"), "--channel", "EOG", option, value]
    _one_line(*_run(*args), 2, *words, "edgesleep train --help")


def test_one_subject_is_a_data_error(one_subject: Path, tmp_path: Path) -> None:
    args = ["train", "--data", str(one_subject), "--channel", "EOG", "--max-steps", "1"]
    _one_line(*_run(*args, "--out", str(tmp_path / "m.pt")), 1, "at least 2 subjects", "['0']")


def test_missing_dataset_and_files(tmp_path: Path) -> None:
    _one_line(*_run("train", "--data", str(tmp_path), "--channel", "EOG"), 1, str(tmp_path))
    _one_line(*_run("evaluate", str(tmp_path / "m.pt"), "--data", str(tmp_path)), 1, "m.pt")
    night = tmp_path / "night.edf"
    _one_line(*_run("stage", str(night), "--model", str(tmp_path / "m")), 1, "no such model")
    _one_line(*_run("data", "info", str(night)), 1, "night.edf")


def test_bad_model_folder(tmp_path: Path) -> None:
    (tmp_path / "fp32").mkdir()
    (tmp_path / "fp32" / "encoder.onnx").write_bytes(b"not onnx")
    (tmp_path / "fp32" / "sequence.onnx").write_bytes(b"not onnx either")
    code, lines = _run("stream", "synthetic:", "--model", str(tmp_path))
    _one_line(code, lines, 1, "encoder.onnx", "not an ONNX model")


def test_recipe_typo_names_the_closest_key(tmp_path: Path) -> None:
    recipe = tmp_path / "r.toml"
    recipe.write_text('[data]\ntarget = "x"\ntarget_channel = "EOG"\n[train]\npases = 3\n')
    _one_line(*_run("cv", "--recipe", str(recipe)), 2, "unknown key 'pases'", "'passes'")
    recipe.write_text('[data]\ntarget = "x"\ntarget_channel = "EOG"\n[cv]\ncrop = "bed"\n')
    _one_line(*_run("cv", "--recipe", str(recipe)), 2, "crop = 'bed'", "'in-bed'")
    _one_line(*_run("cv", "--recipe", "nope"), 1, "no such recipe", "synthetic_eeg_to_eog")


def test_unknown_verb_and_option() -> None:
    _one_line(*_run("trian"), 2, "No such command")
    _one_line(*_run("stage", "--bogus"), 2, "--bogus")


def test_unexpected_failures_are_one_line_unless_debug(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import edgesleep.io.dataset

    def boom(path: Path) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(edgesleep.io.dataset, "describe", boom)
    _one_line(
        *_run("data", "info", str(tmp_path)), 1, "internal error RuntimeError: boom", "--debug"
    )
    result = CliRunner().invoke(app, ["--debug", "data", "info", str(tmp_path)])
    assert result.exit_code == 1 and isinstance(result.exception, RuntimeError)


def test_help_lists_the_choices_and_the_verbs() -> None:
    result = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "seqsleepnet|student" in result.output and "in-bed|sleep|none" in result.output
    verbs = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"}).output
    order = ["data", "train", "evaluate", "cv", "distill", "export", "stage", "stream", "bench"]
    positions = [verbs.index(f" {v} ") for v in order]
    assert positions == sorted(positions)


def test_models_lists_what_each_architecture_declares() -> None:
    result = CliRunner().invoke(app, ["models"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "weight-only" in result.output and "static-qdq" in result.output
    assert "beats" in result.output and "29x129" in result.output


def test_version() -> None:
    from edgesleep import __version__

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == __version__


def test_every_config_field_through_a_config_file(tiny_dataset: Path, tmp_path: Path) -> None:
    from edgesleep.train import checkpoint as ckpt_io

    config = tmp_path / "run.toml"
    config.write_text(
        "[model]\ndilations = [1, 2, 4, 8]\nn_bands = 6\nchannels = [6, 6, 6]\nepoch_dim = 6\n"
        "dropout = 0.0\n[train]\nlr = 0.003\nbatch_size = 8\nclass_weighting = true\n"
        "max_steps = 3\neval_every = 3\n"
    )
    out = tmp_path / "m.pt"
    args = ["train", "--data", str(tiny_dataset), "--channel", "EOG horizontal", "--model",
            "student", "--subjects", "0,1", "--out", str(out), "--config", str(config)]  # fmt: skip
    result = CliRunner().invoke(app, [*args, "--max-steps", "2"])  # the command line wins
    assert result.exit_code == 0, result.output
    ckpt = ckpt_io.load(out)
    assert ckpt.config["dilations"] == (1, 2, 4, 8) and ckpt.config["dropout"] == 0.0
    assert ckpt.provenance["training"]["steps"] == 2
    assert ckpt.provenance["training"]["class_weighting"] is True
    config.write_text("[model]\ndilatons = [1, 2]\n")
    _one_line(*_run(*args), 2, "unknown key 'dilatons'", "'dilations'")
    config.write_text("[train]\nbatch = 8\n")
    _one_line(*_run(*args), 2, "unknown key 'batch'", "'batch_size'")
