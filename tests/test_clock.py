"""Time since the recording started as a model input (issue 31, item 3): the student's
clock, its training windows with random start offsets, an int8 step graph that takes it,
streaming = offline on a night with a gap, and the metadata that declares it. Tiny models;
SYNTHETIC heart data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from conftest import TINY_MODELS
from test_heart import night_beats

from edgesleep.api import score_beats
from edgesleep.errors import InputError
from edgesleep.metadata import CLOCK, META_KEY, check_info
from edgesleep.ort import ExportedModel
from edgesleep.readout import epoch_clock_h
from edgesleep.stager import SeriesStager
from edgesleep.train.data import CLOCK_OFFSET_EPOCHS, NightFeatures, Windows
from edgesleep.train.models import build as build_model
from edgesleep.train.models import make_config
from edgesleep.train.student import Clock
from edgesleep.workflows.heart_models import build


def test_the_clock_is_hours_from_the_start_and_bounded() -> None:
    np.testing.assert_allclose(epoch_clock_h([0, 1, 120, 960]), [0, 1 / 120, 1, 8])
    clock = Clock(4)
    with torch.no_grad():
        late = clock(torch.tensor([12.0, 13.0, 40.0]))
        early = clock(torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(late[1:], late[:1].expand(2, 4))  # past 12 h: as 12 h
    assert not torch.allclose(early[0], early[1])


def test_windows_carry_their_clock_from_a_random_start() -> None:
    night = NightFeatures("r", "s", np.zeros((100, 27, 20), np.float32), np.full(100, 2))
    mean, std = np.zeros((27, 20), np.float32), np.ones((27, 20), np.float32)
    windows = Windows([night], mean, std, 20, 5, clock=True)
    torch.manual_seed(0)
    offsets = []
    for item in range(len(windows)):
        x, clock, y = windows[item]
        start = windows.index[item][1]
        epochs = clock.numpy() * 120  # hours -> epochs
        np.testing.assert_allclose(np.diff(epochs), 1, atol=1e-3)
        offsets.append(epochs[0] - start)
        assert x.shape == (20, 27, 20) and y.shape == (20,)
    assert min(offsets) >= -1e-3 and max(offsets) <= CLOCK_OFFSET_EPOCHS + 1e-3
    assert len(set(np.round(offsets))) > 3  # drawn, not fixed
    assert len(Windows([night], mean, std, 20, 5)[0]) == 2  # no clock: (x, y) as before


def test_a_clocked_model_depends_on_the_clock_only_when_it_has_one() -> None:
    x = torch.randn(1, 20, 27, 20)
    late, early = torch.full((1, 20), 6.0), torch.zeros(1, 20)
    fields = {**TINY_MODELS["student"], "n_frames": 27, "n_freqs": 20}
    clocked = build_model("student", make_config("student", clock=True, **fields)).eval()
    plain = build_model("student", make_config("student", **fields)).eval()
    assert clocked.clocked and not plain.clocked
    with torch.no_grad():
        assert not torch.allclose(clocked(x, late), clocked(x, early))
        torch.testing.assert_close(plain(x, late), plain(x))
        with pytest.raises(ValueError, match="takes a clock"):
            clocked(x)


def test_a_clocked_heart_model_builds_streams_and_scores_alike(
    walch_src: Path, data_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "models"
    sources = {"walch": walch_src, "slpdb": data_dir / "slpdb"}
    build(sources, out, None, passes=0.2, classes=(4,), clock=True, **TINY_MODELS["student"])
    model = ExportedModel(out / "heart-4class")
    assert model.clocked and model.info.raw["clock"] == CLOCK and model.info.raw["format"] == 2
    assert model.info.card is not None and model.info.card["training"]["clock"] is True
    step = onnx.load(out / "heart-4class" / "step.onnx")
    assert [i.name for i in step.graph.input] == ["image", "clock", "past"]
    assert any(n.op_type == "QuantizeLinear" for n in step.graph.node)  # int8
    # a night with a 40-min dropout: the epochs after it keep their clock
    beats = night_beats(200 * 30.0, seed=4)
    beats = beats[(beats < 60 * 30.0) | (beats >= 140 * 30.0)]
    offline = score_beats(beats, model, delay=0)
    stager, results = SeriesStager(model, "beats", delay=0), []
    for i in range(0, beats.size, 577):
        horizon = beats[min(i + 577, beats.size - 1)]
        results += stager.push_series(beats[i : i + 577], None, horizon)
    results += stager.end(beats[-1])
    scored = [r for r in offline.results if "gap" not in r.flags]  # the gap: rows, unscored
    assert [r.index for r in results] == [r.index for r in scored]
    assert results[59].index == 140 and "segment" in results[59].flags
    np.testing.assert_allclose(np.stack([r.probabilities for r in results]),
                               np.stack([r.probabilities for r in scored]), atol=1e-5)  # fmt: skip
    # the clock matters: the same beats two hours later score otherwise
    later = score_beats(beats + 2 * 3600.0, model, delay=0)
    moved = {r.index - 240: r.probabilities for r in later.results if "gap" not in r.flags}
    assert not np.allclose(np.stack([moved[r.index] for r in scored]),
                           np.stack([r.probabilities for r in scored]), atol=1e-4)  # fmt: skip


def test_a_record_longer_than_the_clock_is_named() -> None:
    from edgesleep.readout import clock_warning

    assert clock_warning(True, 11 * 3600.0) is None and clock_warning(False, 20 * 3600.0) is None
    warning = clock_warning(True, 20 * 3600.0)
    assert warning is not None and "20.0 h" in warning and "trim it to the night" in warning


def test_metadata_declares_the_clock_and_is_checked(tmp_path: Path) -> None:
    from edgesleep.shipped import shipped_model

    raw = dict(shipped_model("heart-4class").info.raw)  # format 1: no clock field
    meta = {META_KEY: json.dumps(raw), "edgesleep.sha256": "0" * 64}
    assert not check_info("m", meta).clocked
    for bad in ({"input": "clock", "unit": "min"}, "yes", 1):
        meta[META_KEY] = json.dumps({**raw, "format": 2, "clock": bad})
        with pytest.raises(InputError, match="metadata clock"):
            check_info("m", meta)
    meta[META_KEY] = json.dumps({**raw, "format": 3})
    with pytest.raises(InputError, match="reads 1 and 2"):
        check_info("m", meta)
