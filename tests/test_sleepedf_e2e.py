"""End to end on Sleep-EDF's real file layout, no network: `data fetch sleep-edf` from a
local HTTP mirror of Sleep-EDF-shaped SYNTHETIC PSG files (the real names, start times and
lengths, with the shipped expert hypnograms), then `cv --recipe sleepedf_eeg_to_eog --quick`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import http_mirror, write_edf
from typer.testing import CliRunner

from edgesleep.cli import app
from edgesleep.dsp import EPOCH_S, SFREQ
from edgesleep.io import edf
from edgesleep.io.hypnogram import read_hypnogram
from edgesleep.io.sleepedf import records

SUBJECTS = (0, 1, 2, 3)


def stand_in_psg(path: Path, hypnogram: Path, seed: int) -> None:
    """A SYNTHETIC PSG shaped like Sleep-EDF's: EEG Fpz-Cz and EOG horizontal at 100 Hz
    from the hypnogram's start to an hour past its last scored epoch; noise whose level
    and rhythm follow the stages (cheap: this test checks plumbing, not accuracy)."""
    stages = read_hypnogram(hypnogram)
    n_epochs = int(np.flatnonzero(stages >= 0)[-1]) + 1 + 120
    stages = np.concatenate([stages, np.full(120, -2)])[:n_epochs]
    rng = np.random.default_rng(seed)
    n = int(EPOCH_S * SFREQ)
    t = np.arange(n_epochs * n) / SFREQ
    hz = np.repeat(np.choose(np.clip(stages, 0, 4), [10.0, 6.0, 13.0, 1.5, 7.0]), n)
    amp = np.repeat(np.choose(np.clip(stages, 0, 4), [15.0, 25.0, 30.0, 60.0, 20.0]), n)
    eeg = amp * np.sin(2 * np.pi * hz * t) + 10 * rng.standard_normal(t.size)
    eog = (np.repeat(stages == 4, n) * 80 * np.sin(2 * np.pi * 0.5 * t)
           + 10 * rng.standard_normal(t.size))  # fmt: skip
    write_edf(path, {"EEG Fpz-Cz": (eeg, SFREQ, "uV"), "EOG horizontal": (eog, SFREQ, "uV")},
              start=edf.header(hypnogram)["start"])  # fmt: skip


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[str]:
    """sleep-edfx/1.0.0 for subjects 0-3 on a local HTTP server."""
    root = tmp_path / "mirror"
    sc = root / "sleep-cassette"
    sc.mkdir(parents=True)
    for rec in records().values():
        if rec.subject in SUBJECTS:
            hyp = sc / rec.hypnogram_file
            hyp.write_bytes(rec.hypnogram_path.read_bytes())
            stand_in_psg(sc / rec.psg_file, hyp, seed=rec.subject * 2 + rec.night)
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()} sleep-cassette/{p.name}"
             for p in sorted(sc.iterdir())]  # fmt: skip
    (root / "SHA256SUMS.txt").write_text("\n".join(lines) + "\n")
    with http_mirror(root) as url:
        yield url


def test_fetch_then_quick_cv_of_the_paper_recipe(
    mirror: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the recipe reads data/sleep-edf from here
    runner = CliRunner()
    fetched = runner.invoke(app, ["data", "fetch", "sleep-edf", "--out", "data/sleep-edf",
                                  "--subjects", "0-3", "--base-url", mirror])  # fmt: skip
    assert fetched.exit_code == 0, fetched.output
    assert "8 nights of 4 subjects" in fetched.output
    result = runner.invoke(app, ["cv", "--recipe", "sleepedf_eeg_to_eog", "--quick"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "runs" / "cv" / "sleepedf_eeg_to_eog-quick"
    report = json.loads((out / "cv.json").read_text())
    assert report["folds"] == 2 and report["seeds"] == [0]
    assert report["train"]["stride"] == 1 and report["train"]["shared_windows"] == 16
    assert set(report["results"]) == {"scratch", "none", "softmax", "softmax+epoch",
                                      "softmax+sequence", "all"}  # fmt: skip
    assert len(list((out / "cells").glob("seed0-fold*.json"))) == 12
    assert len(list((out / "pretrain").glob("seed0-fold*.pt"))) == 2  # one per fold
    assert "quick smoke run" in (out / "cv.md").read_text()
    # the features were cached next to the dataset, keyed by channel and crop
    assert len(list(Path("data/sleep-edf/cache").glob("stft-*/*.npy"))) == 16


def stand_in_mass(root: Path, night_id: str, epoch_s: float, seed: int) -> None:
    """A SYNTHETIC MASS night in MASS's names and format: ``<id> PSG.edf`` (EEG C4-CLE,
    C3-CLE and ECG I at 256 Hz) and ``<id> Base.edf`` (stage annotations from 17 s on, ``epoch_s``
    long, R&K strings), stages from a shipped Sleep-EDF hypnogram (plumbing, not accuracy)."""
    rec = sorted(records().values(), key=lambda r: r.record)[seed]
    stages = read_hypnogram(rec.hypnogram_path)
    scored = stages[np.flatnonzero(stages >= 0)[0] :][:120]
    rng = np.random.default_rng(seed)
    sfreq, seconds = 256.0, 17.0 + epoch_s * scored.size + 60.0
    t = np.arange(int(seconds * sfreq)) / sfreq
    which = np.clip(((t - 17.0) // epoch_s).astype(int), 0, scored.size - 1)
    hz = np.choose(np.clip(scored[which], 0, 4), [10.0, 6.0, 13.0, 1.5, 7.0])
    eeg = 30 * np.sin(2 * np.pi * hz * t) + 10 * rng.standard_normal(t.size)
    ecg = 200 * np.sin(2 * np.pi * 1.1 * t) ** 15 + 5 * rng.standard_normal(t.size)
    subset = root / f"SS{int(night_id.split('-')[1])}"
    subset.mkdir(parents=True, exist_ok=True)
    channels = {"EEG C4-CLE": eeg, "EEG C3-CLE": eeg[::-1].copy(), "ECG I": ecg}
    write_edf(subset / f"{night_id} PSG.edf", {k: (v, sfreq, "uV") for k, v in channels.items()})
    rk = {0: "W", 1: "1", 2: "2", 3: "4", 4: "R"}
    base = [(17.0 + epoch_s * i, epoch_s, f"Sleep stage {rk[int(s)]}")
            for i, s in enumerate(scored)]  # fmt: skip
    write_edf(subset / f"{night_id} Base.edf", {}, annotations=base)


def test_import_mass_then_quick_cv_of_both_papers(
    mirror: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both papers' recipes end to end: MASS (SS2 20-s and SS3 30-s nights) imported;
    seed 1 pretrained on C4-A1 (the CLE derivation by alias) and transferred to Sleep-EDF's
    EOG; seed 2's C3-A2 teacher distilled into an ECG student (4 and 3 classes)."""
    monkeypatch.chdir(tmp_path)
    for i, night_id in enumerate(["01-02-0001", "01-02-0002", "01-03-0001", "01-03-0002"]):
        stand_in_mass(tmp_path / "MASS", night_id, 20.0 if "-02-" in night_id else 30.0, i)
    runner = CliRunner()
    imported = runner.invoke(app, ["data", "import", "mass", "MASS", "--out", "data/mass"])
    assert imported.exit_code == 0, imported.output
    assert "4 nights of 4 subjects" in imported.output
    fetched = runner.invoke(app, ["data", "fetch", "sleep-edf", "--out", "data/sleep-edf",
                                  "--subjects", "0-3", "--base-url", mirror])  # fmt: skip
    assert fetched.exit_code == 0, fetched.output
    result = runner.invoke(app, ["cv", "--recipe", "mass_to_sleepedf_eeg_to_eog", "--quick"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "runs" / "cv" / "mass_to_sleepedf_eeg_to_eog-quick"
    report = json.loads((out / "cv.json").read_text())
    assert report["source_channel"] == "C4-A1" and report["target_channel"] == "EOG horizontal"
    assert set(report["results"]) == {"scratch", "none", "softmax", "softmax+epoch",
                                      "softmax+sequence", "all"}  # fmt: skip
    assert len(list((out / "pretrain").glob("*.pt"))) == 1  # one source for every fold
    # one 30-s window per scored epoch, also for the 20-s nights (the first window starts
    # 12 s into the file, the last ends 35 s before its end: none is dropped)
    cached = sorted(Path("data/mass/cache").glob("stft-*/*.json"))
    assert [json.loads(p.read_text())["n_epochs"] for p in cached] == [120] * 4
    for name, classes in (("mass_eeg_to_ecg_distill", 4), ("mass_eeg_to_ecg_distill_3class", 3)):
        result = runner.invoke(app, ["cv", "--recipe", name, "--quick"])
        assert result.exit_code == 0, result.output
        report = json.loads((tmp_path / "runs" / "cv" / f"{name}-quick" / "cv.json").read_text())
        assert set(report["results"]) == {"teacher", "scratch", "distill"}
        assert len(report["classes"]) == classes and report["source_channel"] == "C3-A2"
        assert "weighted F1" in (tmp_path / "runs" / "cv" / f"{name}-quick" / "cv.md").read_text()
