"""Offline scoring in bounded pieces and batches that stage what they can (issue 19, items
3 and 4)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import write_edf
from typer.testing import CliRunner

from edgesleep import stager as stager_module
from edgesleep.api import score_file
from edgesleep.cli import app
from edgesleep.io import edf
from edgesleep.ort import ExportedModel
from edgesleep.stager import Stager
from edgesleep.synth.psg import generate_night


def _night(path: Path, sfreq: float, n_epochs: int, channel: str) -> Path:
    stages = np.array(([0] * 3 + [2] * 5 + [4] * 3 + [3] * 3) * 10)[:n_epochs]
    signal = generate_night(5, 0, sfreq=sfreq, stages=stages).signals[channel]
    return write_edf(path, {channel: (signal, sfreq, "uV")})


def test_offline_scoring_reads_and_resamples_in_bounded_pieces(
    exported: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sfreq, channel = 500.0, exported["channel"]
    night = _night(tmp_path / "n.edf", sfreq, 40, channel)
    pushed: list[int] = []
    push = stager_module.FrontEnd.push

    def spy(self: stager_module.FrontEnd, samples: np.ndarray, t0: float | None = None) -> list:
        pushed.append(np.asarray(samples).shape[0])
        return push(self, samples, t0)

    monkeypatch.setattr(stager_module.FrontEnd, "push", spy)
    monkeypatch.setattr(edf, "CHUNK_S", 300.0)
    monkeypatch.setattr(stager_module, "OFFLINE_CHUNK_S", 300.0)
    model = ExportedModel(exported["root"] / "out", "fp32")
    hyp = score_file(night, model)
    assert max(pushed) <= edf.CHUNK_S * sfreq and len(pushed) >= 4
    # the same stages as the night streamed in 1-s packets
    pushed.clear()
    signal = edf.read_signal(night, channel, sfreq=None)
    streamer = Stager(model, sfreq)
    streamed = []
    for start in range(0, signal.data.shape[0], int(sfreq)):
        streamed += streamer.push(signal.data[start : start + int(sfreq)])
    streamed += streamer.flush()
    assert hyp.stages.tolist() == [r.stage for r in streamed]
    np.testing.assert_allclose(hyp.probabilities, [r.probabilities for r in streamed], atol=1e-5)


def test_a_batch_stages_every_night_it_can_and_reruns_the_rest(
    exported: dict, tmp_path: Path
) -> None:
    channel = exported["channel"]
    good_a = _night(tmp_path / "a.edf", 100.0, 30, channel)
    bad = tmp_path / "bad.edf"
    bad.write_bytes(b"0       " + b"x" * 300)
    noise = np.random.default_rng(0).normal(0, 10, 2000)  # 20 s: shorter than one epoch
    short = write_edf(tmp_path / "short.edf", {channel: (noise, 100.0, "uV")})
    good_c = _night(tmp_path / "c.edf", 128.0, 30, channel)
    out = tmp_path / "staged"
    args = ["stage", str(good_a), str(bad), str(short), str(good_c), "--out", str(out),
            "--model", str(exported["root"] / "out")]  # fmt: skip
    first = CliRunner().invoke(app, args, env={"COLUMNS": "250"})
    assert first.exit_code == 1 and "2 of 4 nights failed" in first.output
    assert "Traceback" not in first.output
    assert first.output.count("FAILED") == 2 and "shorter than one 30-s epoch" in first.output
    assert sorted(p.name for p in out.glob("*.json")) == ["a.json", "c.json"]
    assert not (out / "short.csv").exists() and not (out / "bad.csv").exists()
    shutil.copy(good_a, bad)  # the bad file was replaced by a good recording
    again = CliRunner().invoke(app, args, env={"COLUMNS": "250"})
    assert again.exit_code == 1 and "1 of 4 nights failed" in again.output
    assert again.output.count("already staged") == 2
    assert sorted(p.name for p in out.glob("*.json")) == ["a.json", "bad.json", "c.json"]
