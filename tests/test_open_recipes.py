"""The open-data recipes end to end with --quick, from local mirrors (no network): CinC 2018
and HMC fetched (SYNTHETIC signals in their original layouts), Sleep-EDF fetched (stand-in
PSGs with the shipped hypnograms); seed 1 on CinC and on HMC, seed 2 on CinC, heart_open on
CinC + HMC tested on slpdb (the real slp01a export) and Walch (SYNTHETIC), its bundle
installed by `models add`. Plumbing, not accuracy."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    SHORT_NIGHT,
    http_mirror,
    write_cinc_record,
    write_hmc_record,
    write_walch,
)
from test_sleepedf_e2e import stand_in_psg
from typer.testing import CliRunner

from edgesleep.cli import app
from edgesleep.io.sleepedf import records


def _sums(root: Path) -> None:
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()} {p.relative_to(root).as_posix()}"
             for p in sorted(root.rglob("*")) if p.is_file()]  # fmt: skip
    (root / "SHA256SUMS.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def open_data(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A working folder whose data/ holds every open dataset the recipes read, fetched
    from local mirrors as a user would."""
    base = tmp_path_factory.mktemp("open")
    cinc, hmc, sedf = base / "m-cinc", base / "m-hmc", base / "m-sleep-edf"
    for i, name in enumerate(["tr03-0005", "tr03-0029", "tr04-0012", "tr05-0033"]):
        write_cinc_record(cinc, name, np.roll(SHORT_NIGHT, 9 * i), lead_s=1.5 + i, index=i)
    for i in range(3):
        write_hmc_record(hmc, f"SN00{i + 1}", np.roll(SHORT_NIGHT, 11 * i), index=10 + i)
    (cinc / "LICENSE.txt").write_text("Open Data Commons Attribution License v1.0 (stand-in)\n")
    (hmc / "LICENSE.txt").write_text("Creative Commons Attribution 4.0 (stand-in)\n")
    sc = sedf / "sleep-cassette"
    sc.mkdir(parents=True)
    for rec in records().values():
        if rec.subject in (0, 1, 2, 3):
            hyp = sc / rec.hypnogram_file
            hyp.write_bytes(rec.hypnogram_path.read_bytes())
            stand_in_psg(sc / rec.psg_file, hyp, seed=rec.subject * 2 + rec.night)
    for root in (cinc, hmc, sedf):
        _sums(root)
    work = base / "work"
    runner = CliRunner()
    for dataset, mirror, extra in (("cinc2018", cinc, ["--require", "ECG"]),
                                   ("hmc", hmc, ["--require", "ECG"]),
                                   ("sleep-edf", sedf, ["--subjects", "0-3"])):  # fmt: skip
        with http_mirror(mirror) as url:
            out = str(work / "data" / dataset)
            done = runner.invoke(app, ["data", "fetch", dataset, "--out", out, "--base-url", url,
                                       *extra])  # fmt: skip
        assert done.exit_code == 0, done.output
    shutil.copytree(data_dir / "slpdb", work / "data" / "slpdb" / "raw")
    write_walch(work / "data" / "walch" / "raw")
    return work


@pytest.mark.parametrize(
    "recipe", ["cinc2018_to_sleepedf_eeg_to_eog", "hmc_to_sleepedf_eeg_to_eog"]
)
def test_seed1_on_open_data(open_data: Path, recipe: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(open_data)
    result = CliRunner().invoke(app, ["cv", "--recipe", recipe, "--quick"])
    assert result.exit_code == 0, result.output
    report = json.loads((open_data / "runs" / "cv" / f"{recipe}-quick" / "cv.json").read_text())
    assert report["source_channel"] == "C4-M1" and report["target_channel"] == "EOG horizontal"
    assert set(report["results"]) == {"scratch", "none", "softmax", "softmax+epoch",
                                      "softmax+sequence", "all"}  # fmt: skip


def test_seed2_on_cinc2018(open_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(open_data)
    name = "cinc2018_eeg_to_ecg_distill"
    result = CliRunner().invoke(app, ["cv", "--recipe", name, "--quick"])
    assert result.exit_code == 0, result.output
    report = json.loads((open_data / "runs" / "cv" / f"{name}-quick" / "cv.json").read_text())
    assert set(report["results"]) == {"teacher", "scratch", "distill"}
    assert report["source_channel"] == "C3-M2" and report["target_channel"] == "ECG"


def test_heart_open_quick_writes_an_installable_bundle(
    open_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(open_data)
    done = CliRunner().invoke(app, ["cv", "--recipe", "heart_open", "--quick"])
    assert done.exit_code == 0, done.output
    out = open_data / "runs" / "heart_open-quick"
    report = json.loads((out / "heart_open.json").read_text())
    model = report["models"]["heart-open-4class"]
    assert report["recipe"]["folds"] == 2 and set(report["models"]) == {"heart-open-4class"}
    assert set(model["cross_cohort"]) == {"slpdb", "walch", "both"}
    assert model["cross_cohort"]["slpdb"]["nights"] == 1
    assert model["kept"] == "weighted · fraction offsets"
    bundle = out / "heart-open-4class"
    assert sorted(p.name for p in bundle.iterdir()) == ["SHA256SUMS", "step.onnx"]
    added = CliRunner().invoke(app, ["models", "add", str(bundle), "--dir",
                                     str(open_data / "models")])  # fmt: skip
    assert added.exit_code == 0, added.output
    from edgesleep.ort import ExportedModel

    card = ExportedModel(open_data / "models" / "heart-open-4class").info.card
    assert card is not None and set(card["data"]) == {"cinc2018", "hmc"}
    assert card["data"]["hmc"]["licence"].startswith("Creative Commons Attribution 4.0")
    assert "not on wearable users" in card["limits"]
    assert "Across cohorts" in done.output
