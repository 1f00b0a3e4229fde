"""BrainFlow boards: the synthetic board (no hardware) into `stream brainflow:`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgesleep.errors import UsageError
from edgesleep.sources import open_source, parse_spec
from edgesleep.sources.brainflow import _labels, board_id, import_brainflow


def test_board_ids_and_labels() -> None:
    shim = pytest.importorskip("brainflow.board_shim")
    assert board_id(shim, "synthetic") == board_id(shim, "SYNTHETIC_BOARD") == -1
    assert board_id(shim, "0") == board_id(shim, "cyton") == 0
    with pytest.raises(UsageError, match="did you mean cyton"):
        board_id(shim, "cyten")
    descr = {"eeg_channels": [1, 2], "eeg_names": "Fp1,Fp2", "ecg_channels": [3],
             "eog_channels": [4, 5]}  # fmt: skip
    assert _labels(descr, [1, 2, 3, 4, 5, 7]) == ["Fp1", "Fp2", "ECG1", "EOG1", "EOG2", "EXG7"]
    assert parse_spec("brainflow:board=cyton&serial_port=/dev/ttyUSB0").params["board"] == "cyton"


def test_missing_brainflow_is_one_line_before_any_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgesleep.cli import app

    monkeypatch.setitem(sys.modules, "brainflow", None)
    with pytest.raises(Exception, match=r"edgesleep\[brainflow\]"):
        import_brainflow()
    out = tmp_path / "night.csv"
    result = CliRunner().invoke(app, ["stream", "brainflow:board=synthetic", "--out", str(out)])
    assert result.exit_code == 1 and "pip install 'edgesleep[brainflow]'" in result.output
    assert not out.exists()


def test_synthetic_board_streams_every_epoch_once_in_order(
    tiny_export: Callable[[str], dict], tmp_path: Path
) -> None:
    """BrainFlow's synthetic board (250 Hz, real time) for 61 s into `stream`, its Fz
    staged: epochs 0 and 1, each once, in order, no gap, and the board's 16 ExG channels
    with their names."""
    pytest.importorskip("brainflow.board_shim")
    from edgesleep.cli import app

    exported = tiny_export("student")
    source = open_source("brainflow:board=synthetic&seconds=1")
    info = source.info()
    assert info.sfreq == 250 and info.channels[:3] == ("Fz", "C3", "Cz")
    assert len(info.channels) == 16 and info.synthetic
    source.close()
    out = tmp_path / "night.csv"
    model = str(exported["root"] / "out")
    result = CliRunner().invoke(app, ["stream", "brainflow:board=synthetic&seconds=61", "--model",
                                      model, "--channel", "Fz", "--delay", "0", "--out", str(out),
                                      "--quiet"])  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = np.loadtxt(out, delimiter=",", skiprows=1, usecols=(0, 2), ndmin=2)
    assert rows[:, 0].tolist() == [0.0, 30.0]
    assert "gaps" in result.output and "0 (0.0 s)" in result.output
