"""Agreement like a wearable validation study (issue 31, item 1): stage-fraction and night
summary biases with limits of agreement and subject-bootstrap intervals, by hand; `compare`
reads every expert format the project imports, one night or two folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import DATA, write_edf
from typer.testing import CliRunner

from edgesleep.agreement import Night, agreement, night_row, paired_kappa, summary_bias
from edgesleep.api import compare
from edgesleep.cli import app
from edgesleep.io.hypnogram import centre_stages
from edgesleep.metrics import evaluate


def test_one_night_by_hand() -> None:
    expert = np.array([0, 0, 1, 1, 1, 2, 2, 3, -2, 1])  # W/Light/Deep/REM
    staged = np.array([0, 1, 1, 2, 2, 2, 2, 3, 1, -1])
    row = night_row(Night("n", "s", staged, expert), 4)
    assert row["epochs"] == 8  # the epochs both scored
    # fractions over those 8: staged W 1, Light 2, Deep 4, REM 1; expert W 2, Light 3, Deep 2
    assert row["Deep % diff"] == pytest.approx(100 * (4 - 2) / 8)
    assert row["Light % diff"] == pytest.approx(100 * (2 - 3) / 8)
    assert row["W min diff"] == -0.5 and row["TST diff"] == 0.5
    assert row["SOL staged"] == 0.5 and row["SOL expert"] == 1.0


def test_biases_limits_and_a_subject_bootstrap() -> None:
    rng = np.random.default_rng(0)
    nights = []
    for i in range(8):
        expert = rng.integers(0, 4, 200)
        staged = np.where(rng.random(200) < 0.2, 2, expert)  # Deep over-called
        nights.append(Night(f"n{i}", f"s{i // 2}", staged, expert))
    result = agreement(nights, 4, n_boot=500)
    deep = result["bias"]["Deep %"]
    diffs = [night_row(n, 4)["Deep % diff"] for n in nights]
    assert deep["mean"] == pytest.approx(np.mean(diffs))
    sd = np.std(diffs, ddof=1)
    assert deep["loa"] == pytest.approx([np.mean(diffs) - 1.96 * sd, np.mean(diffs) + 1.96 * sd])
    assert deep["ci"][0] < deep["mean"] < deep["ci"][1] and deep["ci"][0] > 0
    assert result["subjects"] == 4 and result["n_nights"] == 8
    assert sum(result["bias"][f"{c} %"]["mean"] for c in result["classes"]) == pytest.approx(0)
    assert result["pooled"]["per_class"]["sensitivity"][2] == 1.0  # every Deep found
    compact = summary_bias(result)  # what the heart studies' tables and the model cards carry
    assert compact["fraction_bias"]["Deep"] == {k: deep[k] for k in ("mean", "ci", "loa")}
    assert compact["summary_bias"]["TST"]["mean"] == result["bias"]["TST"]["mean"]
    assert set(compact["summary_bias"]) == {"TST", "SE", "WASO", "W min", "Light min",
                                            "Deep min", "REM min"}  # fmt: skip


def test_paired_kappa_difference_with_a_subject_bootstrap() -> None:
    """Staging b errs less than a on every subject: κ as :func:`evaluate` pools it, and the
    paired interval of the difference lies above 0; a against itself gives exactly 0."""
    rng = np.random.default_rng(3)
    truth = [rng.integers(0, 4, 300) for _ in range(10)]
    a = [np.where(rng.random(300) < 0.4, rng.integers(0, 4, 300), t) for t in truth]
    b = [np.where(rng.random(300) < 0.2, rng.integers(0, 4, 300), t) for t in truth]
    found = paired_kappa(truth, a, b, 4, n_boot=400)
    pooled = evaluate(np.concatenate(truth), np.concatenate(b), 4)["kappa"]
    assert found["b"] == pytest.approx(pooled) and found["subjects"] == 10
    assert 0 < found["ci"][0] < found["difference"] < found["ci"][1]
    same = paired_kappa(truth, a, a, 4, n_boot=50)
    assert same["difference"] == 0 and same["ci"] == [0, 0]


def test_compare_reads_every_expert_format(tmp_path: Path, walch_src: Path) -> None:
    staged = tmp_path / "night.csv"
    rows = [f"{30 * i},30,{s},{['W', 'N1', 'N2', 'N3', 'REM'][s]}" for i, s in
            enumerate([0, 0, 2, 2, 3, 4, 2, 0])]  # fmt: skip
    staged.write_text("onset,duration,stage,label\n" + "\n".join(rows) + "\n")
    walch = sorted((walch_src / "labels").glob("*_labeled_sleep.txt"))[0]
    slpdb = DATA / "slpdb" / "slp01a_stages.csv"
    edf = write_edf(tmp_path / "SC-Hypnogram.edf", {},
                    annotations=[(0.0, 60.0, "Sleep stage W"), (60.0, 90.0, "Sleep stage 2"),
                                 (150.0, 90.0, "Sleep stage R")])  # fmt: skip
    xml = tmp_path / "a-nsrr.xml"
    xml.write_text('<?xml version="1.0"?><PSGAnnotation><EpochLength>30</EpochLength>'
                   "<ScoredEvents><ScoredEvent><EventType>Stages|Stages</EventType>"
                   "<EventConcept>Wake|0</EventConcept><Start>0</Start><Duration>240"
                   "</Duration></ScoredEvent></ScoredEvents></PSGAnnotation>")  # fmt: skip
    # MASS's Base.edf: 20-s R&K epochs from 7.3 s on (each 30-s epoch: the stage at its centre)
    mass = write_edf(tmp_path / "01-02-0001 Base.edf", {},
                     annotations=[(7.3 + 20 * i, 20.0, f"Sleep stage {s}") for i, s in
                                  enumerate(["W", "W", "W", "1", "2", "2", "3", "4", "R", "R",
                                             "?", "W"])])  # fmt: skip
    said = {walch: "Walch et al. label file", slpdb: "slpdb stages CSV",
            edf: "EDF+ annotations", xml: "NSRR XML", staged: "hypnogram CSV",
            mass: "off the 30-s grid (MASS)"}  # fmt: skip
    for expert, fmt in said.items():
        r = compare(staged, expert)
        assert fmt in r["formats"][0] and r["n_epochs"] > 0, expert
        result = CliRunner().invoke(app, ["compare", str(staged), str(expert)])
        assert result.exit_code == 0 and fmt in result.output, result.output


def test_scored_epochs_anywhere_onto_the_30_s_grid() -> None:
    """MASS: 20-s epochs scored from 7.3 s on; each 30-s epoch from the recording start
    takes the stage of the scored epoch that holds its centre, unscored where none does."""
    onset = 7.3 + 20.0 * np.arange(6)
    stages = np.array([0, 1, 2, 3, 4, -2], dtype=np.int8)
    got = centre_stages(onset, np.full(6, 20.0), stages)
    # centres 15, 45, 75, 105 s: in the epochs begun at 7.3, 27.3, 67.3, 87.3 s
    assert got.tolist() == [0, 1, 3, 4]
    gap = centre_stages(np.array([0.0, 90.0]), np.array([30.0, 30.0]), np.array([2, 3]))
    assert gap.tolist() == [2, -2, -2, 3]  # no scored epoch holds 45 or 75 s: unscored


def test_compare_two_folders_writes_the_per_night_table(tmp_path: Path) -> None:
    staged, expert = tmp_path / "staged", tmp_path / "expert"
    staged.mkdir()
    expert.mkdir()
    rng = np.random.default_rng(1)
    for sid in ("1001", "1002", "2001"):
        codes = rng.integers(0, 6, 120)
        (expert / f"{sid}_labeled_sleep.txt").write_text(
            "".join(f"{30 * i} {c}\n" for i, c in enumerate(codes)))  # fmt: skip
        labels = ["W", "Light", "Deep", "REM"]
        pred = rng.integers(0, 4, 120)
        (staged / f"{sid}.csv").write_text("onset,duration,stage,label\n" + "".join(
            f"{30 * i},30,{p},{labels[p]}\n" for i, p in enumerate(pred)))  # fmt: skip
    table = tmp_path / "nights.csv"
    result = CliRunner().invoke(app, ["compare", str(staged), str(expert), "--csv", str(table),
                                      "--subject", r"^(\d)"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "3 night(s) of 2 subject(s)" in result.output and "limits of agreement" in result.output
    lines = table.read_text().splitlines()
    assert len(lines) == 4 and lines[0].startswith("night,subject,epochs,kappa")
    (staged / "9999.csv").write_text("onset,duration,stage,label\n0,30,0,W\n")
    lonely = CliRunner().invoke(app, ["compare", str(staged), str(expert)])
    assert lonely.exit_code == 1 and "9999.csv: no expert hypnogram" in lonely.output
