"""Cross-validation of transfer learning on a tiny SYNTHETIC cohort."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from edgesleep.cli import app
from edgesleep.train import cv

TINY = """
name = "tiny"
[data]
source = "{data}"
source_channel = "EEG C4-A1"
target = "{data}"
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
"""


def test_folds() -> None:
    assert cv.folds_of(["2", "0", "1"], "loso", 0) == [["0"], ["1"], ["2"]]
    folds = cv.folds_of([str(i) for i in range(7)], 3, 0)
    assert sorted(s for f in folds for s in f) == [str(i) for i in range(7)]
    assert [len(f) for f in folds] == [3, 2, 2]


def test_same_cohort_pretrains_without_the_test_subjects(
    tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = tmp_path / "r.toml"
    recipe.write_text(TINY.format(data=tiny_dataset))
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


def cv_run(recipe: Path, out: Path, *args: str) -> str:
    result = CliRunner().invoke(app, ["cv", "--recipe", str(recipe), "--out", str(out), *args])
    assert result.exit_code == 0, result.output
    return result.output


def tables(out: Path) -> dict[str, Any]:
    """cv.json without its timings."""
    result = json.loads((out / "cv.json").read_text())
    return {k: v for k, v in result.items() if k not in ("seconds", "total_seconds")}


@pytest.fixture(scope="module")
def tiny_recipe(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("recipe") / "tiny.toml"
    path.write_text(TINY.format(data=tiny_dataset))
    cv_run(path, path.parent / "single")
    return path


def test_parts_are_disjoint_cover_the_grid_and_merge_into_the_single_run(
    tiny_recipe: Path, tmp_path: Path
) -> None:
    out = tmp_path / "parts"
    cells = out / "cells"
    seen: list[set[str]] = []
    for i in (1, 2, 3):
        before = set(p.name for p in cells.glob("seed*.json")) if cells.is_dir() else set()
        assert "--collect" in cv_run(tiny_recipe, out, "--part", f"{i}/3")
        seen.append({p.name for p in cells.glob("seed*.json")} - before)
        assert not (out / "cv.json").exists()
        if i == 1:  # merging before every part is done names what is missing
            early = CliRunner().invoke(
                app, ["cv", "--recipe", str(tiny_recipe), "--out", str(out), "--collect"]
            )
            assert early.exit_code == 1 and "12 of 18 cells not done" in early.output
    assert all(a.isdisjoint(b) for a in seen for b in seen if a is not b)
    grid = {f"seed{s}-fold{f}-{k}.json" for s in (0, 1) for f in range(3)
            for k in ("scratch", "none", "softmax")}  # fmt: skip
    assert set().union(*seen) == grid
    cv_run(tiny_recipe, out, "--collect")
    assert tables(out) == tables(tiny_recipe.parent / "single")


def test_jobs_give_the_single_run_table(tiny_recipe: Path, tmp_path: Path) -> None:
    cv_run(tiny_recipe, tmp_path / "jobs", "--jobs", "2")
    assert tables(tmp_path / "jobs") == tables(tiny_recipe.parent / "single")


def test_a_killed_study_continues_where_it_stopped(
    tiny_recipe: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real, calls = cv.train_features, []

    def dies_at_the_fifth_cell(train: Any, val: Any, channel: str, **kw: Any) -> Any:
        calls.append(channel)
        if calls.count("EOG horizontal") == 5:
            raise KeyboardInterrupt
        return real(train, val, channel, **kw)

    monkeypatch.setattr(cv, "train_features", dies_at_the_fifth_cell)
    out = tmp_path / "killed"
    result = CliRunner().invoke(app, ["cv", "--recipe", str(tiny_recipe), "--out", str(out)])
    assert result.exit_code == 130
    assert len(list((out / "cells").glob("seed*.json"))) == 4
    calls.clear()

    def counts(train: Any, val: Any, channel: str, **kw: Any) -> Any:
        calls.append(channel)
        return real(train, val, channel, **kw)

    monkeypatch.setattr(cv, "train_features", counts)
    assert "4 of 18 cells already done" in cv_run(tiny_recipe, out)
    assert calls.count("EOG horizontal") == 14  # the other cells only
    assert tables(out) == tables(tiny_recipe.parent / "single")
    # another recipe's results directory is refused, --fresh starts again
    other = tiny_recipe.with_name("other.toml")
    other.write_text(tiny_recipe.read_text().replace("seeds = [0, 1]", "seeds = [0]"))
    refused = CliRunner().invoke(app, ["cv", "--recipe", str(other), "--out", str(out)])
    assert refused.exit_code == 2 and "another recipe" in refused.output
    cv_run(other, out, "--fresh")
