"""Cross-validation of transfer learning on a tiny SYNTHETIC cohort."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from edgesleep.cli import app
from edgesleep.train import cv


def test_folds() -> None:
    assert cv.folds_of(["2", "0", "1"], "loso", 0) == [["0"], ["1"], ["2"]]
    folds = cv.folds_of([str(i) for i in range(7)], 3, 0)
    assert sorted(s for f in folds for s in f) == [str(i) for i in range(7)]
    assert [len(f) for f in folds] == [3, 2, 2]


def test_same_cohort_pretrains_without_the_test_subjects(
    tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = tmp_path / "r.toml"
    recipe.write_text(f"""
name = "tiny"
[data]
source = "{tiny_dataset}"
source_channel = "EEG C4-A1"
target = "{tiny_dataset}"
target_channel = "EOG horizontal"
[cv]
folds = "loso"
source_val_subjects = 1
seeds = [0, 1]
strategies = ["scratch", "none", "softmax"]
delays = [0, 19]
[pretrain]
max_steps = 2
stride = 10
eval_every = 2
[train]
max_steps = 2
stride = 10
eval_every = 2
""")
    calls: list[dict[str, Any]] = []
    real = cv.train_features

    def spy(train: Any, val: Any, channel: str, **kw: Any) -> Any:
        calls.append({"channel": channel, "subjects": {n.subject for n in [*train, *val]}})
        return real(train, val, channel, **kw)

    monkeypatch.setattr(cv, "train_features", spy)
    result = CliRunner().invoke(app, ["cv", "--recipe", str(recipe), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    # per seed and fold: one pretraining on the two other subjects, then 3 strategies
    pretrains = [c for c in calls if c["channel"] == "EEG C4-A1"]
    assert len(pretrains) == 2 * 3 and all(len(c["subjects"]) == 2 for c in pretrains)
    assert len([c for c in calls if c["channel"] == "EOG horizontal"]) == 2 * 3 * 3
    out = json.loads((tmp_path / "o" / "cv.json").read_text())
    assert out["synthetic"] is True and set(out["results"]) == {"scratch", "none", "softmax"}
    kappa = out["results"]["softmax"]["19"]["kappa"]
    assert len(kappa["runs"]) == 2
    md = (tmp_path / "o" / "cv.md").read_text()
    assert "SYNTHETIC" in md and "direct transfer" in md and "K=0" in md


def test_bundled_recipes_parse() -> None:
    for name in ("synthetic_eeg_to_eog", "sleepedf_eeg_to_eog"):
        path = Path(cv.__file__).parent / "recipes" / f"{name}.toml"
        recipe = cv.load_recipe(path)
        assert recipe.target_channel == "EOG horizontal" and len(recipe.strategies) == 6
