"""A heart student that sees a sleep cycle (issue 31, item 3): the "2 h" context (dilations
up to 64, windows of 256 epochs) trains, exports as an int8 step graph through the shipped
build, keeps 254 epoch vectors, and streams exactly what it scores offline on a night longer
than its receptive field. Tiny models; SYNTHETIC heart data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_MODELS
from test_heart import night_beats

from edgesleep.api import score_beats
from edgesleep.ort import ExportedModel
from edgesleep.stager import SeriesStager
from edgesleep.train.data import IGNORE, NightFeatures, Windows
from edgesleep.train.models import build as build_model
from edgesleep.train.models import make_config
from edgesleep.workflows.heart_models import CONTEXT, CONTEXTS, build


def test_the_contexts_see_what_they_say() -> None:
    """Receptive field and the epochs a stream keeps, from the model itself."""
    for context in CONTEXTS.values():
        model = build_model("student", make_config("student", **context.fields))
        assert model.receptive_field == context.receptive_field
        assert model.stream_context + 1 == context.epochs_seen
    assert CONTEXTS[CONTEXT].epochs_seen == 20  # the shipped student: 10 min
    assert CONTEXTS["2 h"].epochs_seen == 255 >= 180  # a 90-min cycle and more


def test_a_two_hour_context_builds_streams_and_scores_alike(
    walch_src: Path, data_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "models"
    sources = {"walch": walch_src, "slpdb": data_dir / "slpdb"}
    build(sources, out, None, passes=0.2, context="2 h", classes=(4,), **TINY_MODELS["student"])
    model = ExportedModel(out / "heart-4class")
    assert model.info.raw["precision"] == "int8" and model.seq_len == 256
    assert model.info.card is not None and model.info.card["training"]["context"] == "2 h"
    beats = night_beats(300 * 30.0, seed=4)  # 300 epochs: past the 255-epoch field
    offline = score_beats(beats, model, delay=0)
    assert offline.n_epochs == 299
    stager, results = SeriesStager(model, "beats", delay=0), []
    for i in range(0, beats.size, 811):
        horizon = beats[min(i + 811, beats.size - 1)]
        results += stager.push_series(beats[i : i + 811], None, horizon)
    results += stager.end(beats[-1])
    assert [r.index for r in results] == list(range(offline.n_epochs))
    np.testing.assert_allclose(np.stack([r.probabilities for r in results]),
                               offline.probabilities, atol=1e-5)  # fmt: skip
    # the far past matters: the same last 40 epochs after another first 100 score otherwise
    other = np.concatenate([night_beats(100 * 30.0, seed=9), beats[beats >= 100 * 30.0]])
    moved = score_beats(other, model, delay=0)
    assert not np.allclose(moved.probabilities[-40:], offline.probabilities[-40:], atol=1e-6)


def test_a_night_shorter_than_a_window_trains_a_causal_model() -> None:
    """A 2-h record under 256-epoch windows: one window, padded at its end with IGNORE
    labels (a causal model's earlier outputs do not see the padding); without padding it
    gives no window at all, as before."""
    short = NightFeatures("r", "s", np.ones((240, 27, 20), np.float32), np.full(240, 2))
    mean, std = np.zeros((27, 20), np.float32), np.ones((27, 20), np.float32)
    windows = Windows([short], mean, std, 256, 32, pad_short=True)
    assert len(windows) == 1
    x, y = windows[0]
    assert x.shape == (256, 27, 20) and (x[240:] == 0).all() and (x[:240] == 1).all()
    assert (y[:240] == 2).all() and (y[240:] == IGNORE).all()
    with pytest.raises(ValueError, match="no scored window of 256 epochs"):
        Windows([short], mean, std, 256, 32)
