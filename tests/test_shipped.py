"""The heart models shipped in the package: the procedure that builds them (split,
offsets chosen on inner validation, folded into the graphs, int8 with a card), the shipped
files themselves, and `stage` / `stream` / `models` without --model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_MODELS, emulated_wearable
from typer.testing import CliRunner

from edgesleep.api import score_beats, score_heart_rate
from edgesleep.cli import app
from edgesleep.io.heart import Series, read_series, write_series
from edgesleep.io.slpdb import read_record
from edgesleep.metadata import READS
from edgesleep.ort import ExportedModel
from edgesleep.shipped import (
    HEART_MODELS,
    card_summary,
    default_model,
    shipped_model,
    shipped_names,
)
from edgesleep.train.data import NightFeatures
from edgesleep.workflows.heart_models import (
    RECIPES,
    Recipe,
    build,
    choose_offsets,
    fit_offsets,
    fraction_offsets,
    inner_split,
    kappa,
    readout_offsets,
    undo_weights,
    with_offsets,
)

MAX_BYTES = 100 * 1024  # a shipped model's graph files together


def test_offsets_lift_an_under_called_class_and_are_chosen_cross_fitted() -> None:
    """Log-probabilities that never call class 2 although it is there: the fitted offsets
    raise κ, and the cross-fitted choice (each subject scored with the others' offsets)
    keeps them; offsets that fit noise are not kept."""
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 600)
    logp = np.log(np.full((600, 3), 0.1))
    logp[np.arange(600), truth] = np.log(0.5)
    logp[:, 2] -= 2.0  # class 2 never wins
    before = kappa(truth, logp.argmax(1), 3)
    assert before < kappa(truth, (logp + fit_offsets(logp, truth, 3)).argmax(1), 3) == 1.0
    nights = [NightFeatures(f"r{i}", f"s{i}", np.zeros((200, 1, 1)), truth[i * 200 : (i + 1) * 200])
              for i in range(3)]  # fmt: skip
    parts = [logp[i * 200 : (i + 1) * 200] for i in range(3)]
    choice = choose_offsets(nights, parts, 3)
    assert choice.use_offsets and choice.offset_kappa == 1.0 and choice.offsets[1] == 0
    calibrated = [np.log(np.full((200, 3), 1 / 3)) for _ in range(3)]
    for p, t in zip(calibrated, (n.labels for n in nights), strict=True):
        p[np.arange(200), t] = 0.0
    assert not choose_offsets(nights, calibrated, 3).use_offsets  # already perfect


def test_fraction_offsets_match_the_expert_fractions() -> None:
    """A model that over-calls Deep and under-calls Light (as the class-weighted heart
    student did): the fitted offsets bring every stage's share within 0.2 points of the
    expert's; Light (the reference) keeps offset 0."""
    rng = np.random.default_rng(1)
    truth = rng.choice(4, 4000, p=[0.15, 0.5, 0.12, 0.23])
    logp = np.log(rng.dirichlet(np.ones(4), 4000)) + 1.5 * np.eye(4)[truth]
    logp += np.array([0.0, -1.0, 1.2, 0.3])  # Light under-called, Deep over-called
    truth[:50] = -1  # unscored epochs do not count
    before = np.bincount(logp[50:].argmax(1), minlength=4) / 3950
    expert = np.bincount(truth[50:], minlength=4) / 3950
    assert abs(before - expert).max() > 0.1
    offsets = fraction_offsets(logp, truth, 4)
    after = np.bincount((logp[50:] + offsets).argmax(1), minlength=4) / 3950
    assert abs(after - expert).max() < 0.002 and offsets[1] == 0
    assert offsets[2] < 0 < offsets[1] - offsets[2]  # Deep pushed down


def test_undoing_class_weights_gives_back_the_unweighted_posterior() -> None:
    """A weighted cross-entropy's minimiser is proportional to w_c p(c | x): its log plus
    undo_weights(w) is log p up to a constant per epoch, so the argmax is p's."""
    rng = np.random.default_rng(2)
    p = rng.dirichlet(np.ones(3), 500)
    w = np.array([2.0, 0.5, 1.5])
    q = w * p / (w * p).sum(1, keepdims=True)
    back = np.log(q) + undo_weights(w)
    assert undo_weights(w)[1] == 0  # NREM (the reference) stays
    np.testing.assert_allclose(back - back[:, :1], np.log(p) - np.log(p[:, :1]), atol=1e-9)
    nights = [NightFeatures("r", "s", np.zeros((500, 1, 1)), p.argmax(1))]
    np.testing.assert_array_equal(readout_offsets("undo weights", nights, [np.log(q)], w, 3),
                                  undo_weights(w))  # fmt: skip
    assert not readout_offsets("argmax", nights, [np.log(q)], w, 3).any()
    with pytest.raises(ValueError, match="no readout 'softmax'; there are"):
        readout_offsets("softmax", nights, [np.log(q)], w, 3)


def test_inner_split_draws_validation_subjects_per_cohort() -> None:
    nights = [NightFeatures(f"{c}-{i}", f"{c}:{i}", np.zeros((1, 1, 1)), np.zeros(1))
              for c in ("walch", "slpdb") for i in range(5)]  # fmt: skip
    fit, val = inner_split(nights, 3)
    val_subjects = sorted({n.subject for n in val})
    assert [s.split(":")[0] for s in val_subjects] == ["slpdb", "slpdb", "walch", "walch"]
    assert not {n.subject for n in fit} & set(val_subjects) and len(fit) == 6
    assert inner_split(nights, 3)[1] == val


def test_build_trains_exports_and_carries_the_card(
    walch_src: Path, data_dir: Path, tmp_path: Path, tiny_export: object
) -> None:
    """The build on tiny models: the int8 step graph per class set (one file), the card in
    its metadata, calibrated on the training subjects; offsets fold into the bias."""
    out = tmp_path / "models"
    sources = {"walch": walch_src, "slpdb": data_dir / "slpdb"}
    built = build(sources, out, None, passes=0.3, **TINY_MODELS["student"])
    trained = {4: RECIPES[4], 3: RECIPES[3]}
    for n_classes, name in HEART_MODELS.items():
        model = ExportedModel(out / name)
        assert sorted(p.name for p in (out / name).iterdir()) == ["step.onnx"]
        assert model.step is not None and not model.batched
        assert model.info.n_classes == n_classes and model.info.raw["precision"] == "int8"
        card = model.info.card
        assert card is not None and card["name"] == name and "evaluation" not in card
        recipe: Recipe = trained[n_classes]
        assert card["training"]["readout"] == recipe.readout
        assert len(card["training"]["offsets"]) == n_classes
        assert card["training"]["loss"] == ("class-weighted cross-entropy" if recipe.weighted
                                            else "cross-entropy")  # fmt: skip
        assert card["data"]["walch"]["subjects"] == 4 and card["data"]["slpdb"]["nights"] == 1
        quant = model.info.raw["quantization"]
        assert quant["calibration_subjects"] == 5 - 2  # all but the 2 validation subjects
        assert built[name]["parity"]["epoch_agreement"] > 0.9
        assert model.info.signal_channel == "ECG" and model.info.channel == "heart"
    ckpt = tiny_export("student-beats")["ckpt"]  # type: ignore[operator]
    shifted = with_offsets(ckpt, np.array([0.5, 0.0, -1.0]))
    x = torch.randn(2, ckpt.seq_len, 27, 20)
    delta = shifted.build()(x) - ckpt.build()(x)
    torch.testing.assert_close(delta, torch.tensor([0.5, 0.0, -1.0]).expand_as(delta))


@pytest.mark.parametrize("name", sorted(HEART_MODELS.values()))
def test_the_shipped_models(name: str) -> None:
    """In the package, loadable by this runtime's format, int8 within 100 KB, real data,
    with a card that holds the study's cross-validated metrics."""
    assert name in shipped_names()
    model = shipped_model(name)
    assert model.info.raw["format"] in READS, (
        "this runtime no longer reads the shipped models' format: rebuild with "
        "`python -m edgesleep.workflows.heart_models`"
    )
    size = sum(p.stat().st_size for p in model.folder.glob("*.onnx"))
    assert size <= MAX_BYTES and model.info.raw["precision"] == "int8"
    assert not model.info.synthetic
    card = model.info.card
    assert card is not None and set(card["data"]) == {"walch", "slpdb"}
    assert card["data"]["walch"]["subjects"] == 21 and card["data"]["slpdb"]["subjects"] == 12
    both = card["evaluation"]["both"]
    assert 0 < both["kappa"] < 1 and both["subject_kappa_sd"] > 0
    assert model.info.n_classes == (4 if name == "heart-4class" else 3)


def test_stage_without_a_model_uses_the_shipped_heart_model(data_dir: Path, tmp_path: Path) -> None:
    rec = read_record(data_dir / "slpdb", "slp01a")
    beats, hr = tmp_path / "beats.csv", tmp_path / "hr.csv"
    write_series(beats, Series("beats", rec.beat_times_s, None))
    rr = np.diff(rec.beat_times_s)
    write_series(hr, Series("heart-rate", rec.beat_times_s[1:][::5], (60 / rr)[::5]))
    runner = CliRunner()
    result = runner.invoke(app, ["stage", str(beats), str(hr), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "no --model: the shipped heart-4class (W / Light / Deep / REM" in result.output
    offline = score_beats(rec.beat_times_s, default_model())
    rows = (tmp_path / "o" / "beats.csv").read_text().splitlines()
    assert [int(r.split(",")[2]) for r in rows[1:]] == offline.stages.tolist()
    three = runner.invoke(app, ["stage", str(beats), "--classes", "3", "--out",
                                str(tmp_path / "t")])  # fmt: skip
    assert three.exit_code == 0 and "heart-3class (W / NREM / REM" in three.output
    assert {r.split(",")[3] for r in (tmp_path / "t" / "beats.csv").read_text().splitlines()[1:]
            } <= {"W", "NREM", "REM"}  # fmt: skip
    bad = runner.invoke(app, ["stage", str(beats), "--classes", "5"])
    assert bad.exit_code == 2 and "have [3, 4] classes" in bad.output
    both = runner.invoke(app, ["stage", str(beats), "--model", str(tmp_path), "--classes", "3"])
    assert both.exit_code == 2 and "--classes picks a shipped model" in both.output
    listed = runner.invoke(app, ["models"])
    assert listed.exit_code == 0 and "heart-4class" in listed.output
    summary = card_summary(default_model(3))
    assert summary["data"] == "slpdb 12 subjects, walch 21 subjects"
    assert summary["classes"] == "W / NREM / REM" and int(summary["KB"]) <= 100
    # the night summary's biases in class order, whatever order the metadata keeps
    fractions = default_model(4).info.card["evaluation"]["both"]["fraction_bias"]  # type: ignore[index]
    shown = card_summary(default_model(4))["fraction_bias"].split(" / ")
    assert [part.split()[0] for part in shown] == ["W", "Light", "Deep", "REM"]
    assert [float(part.split()[1]) for part in shown] == [
        round(fractions[c]["mean"], 1) for c in ("W", "Light", "Deep", "REM")
    ]


def test_stream_without_a_model_from_a_watch(tmp_path: Path) -> None:
    """A heart-rate-only device (rates frames) staged live by the shipped model, equal to
    scoring the same samples offline."""
    t = np.arange(0.0, 1500.0, 5.0)
    bpm = (62 + 6 * np.sin(t / 400)).astype(np.float32)
    write_series(tmp_path / "hr.csv", Series("heart-rate", t, bpm))
    link = tmp_path / "watch"
    with emulated_wearable(tmp_path, link, "--from", str(tmp_path / "hr.csv"), "--speed", "0",
                           "--linger", "5"):  # fmt: skip
        out = tmp_path / "stages.csv"
        args = ["stream", f"serial:{link}", "--out", str(out), "--quiet", "--series",
                "heart-rate"]  # fmt: skip
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        assert "no --model: the shipped heart-4class" in result.output
    series = read_series(tmp_path / "hr.csv")
    offline = score_heart_rate(series.time_s, series.values, default_model())
    rows = [r.split(",") for r in out.read_text().splitlines()[1:]]
    assert [int(r[2]) for r in rows] == offline.stages.tolist()
