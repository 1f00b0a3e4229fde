"""What a stream writes survives stops and mistakes (issue 19, items 6, 8, 10, 11): SIGTERM
flushes like Ctrl-C, --overwrite replaces the old file only once a new row exists, blank
stdin lines keep the time base, bad metadata is refused clearly, onsets stay fixed-point."""

from __future__ import annotations

import io
import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from edgesleep.cli import app
from edgesleep.errors import InputError
from edgesleep.io.writers import csv_row
from edgesleep.ort import ExportedModel
from edgesleep.sources import CsvSource, Packet


def _rows(path: Path) -> list[list[str]]:
    return [line.split(",") for line in path.read_text().splitlines()[1:]]


def test_sigterm_flushes_the_epochs_waiting_for_their_readout(
    tiny_export: Callable[[str], dict], tiny_dataset: Path, tmp_path: Path
) -> None:
    exported = tiny_export("seqsleepnet")  # fused, K = 19: epochs wait for their readout
    night = sorted((tiny_dataset / "psg").glob("*.edf"))[0]
    out = tmp_path / "night.csv"
    args = [sys.executable, "-m", "edgesleep.cli", "stream", "--model",
            str(exported["root"] / "out"), f"edf:{night}?speed=100", "--out",
            str(out), "--quiet", "--channel", exported["channel"]]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=tmp_path)  # fmt: skip
    for _ in range(600):  # the first row comes once 20 epochs (L, K = 19) have streamed
        if out.is_file() and len(out.read_text().splitlines()) > 1:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    printed, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, printed
    assert "interrupted" in printed
    rows = _rows(out)
    # the K = 19 epochs that waited for later windows are written too
    assert 20 <= len(rows) < 52, len(rows)
    assert [float(r[0]) for r in rows] == [30.0 * i for i in range(len(rows))]


def test_overwrite_keeps_the_old_file_until_a_new_row_exists(
    exported: dict, tiny_dataset: Path, tmp_path: Path
) -> None:
    night = sorted((tiny_dataset / "psg").glob("*.edf"))[0]
    out = tmp_path / "night.csv"
    out.write_text("last night\n")
    model = str(exported["root"] / "out")
    base = ["stream", f"edf:{night}", "--out", str(out), "--quiet", "--overwrite"]
    typo = CliRunner().invoke(app, [*base, "--model", model + "x"])
    assert typo.exit_code == 1 and out.read_text() == "last night\n"
    no_channel = CliRunner().invoke(app, [*base, "--model", model, "--channel", "EEG Cz"])
    assert no_channel.exit_code == 1 and out.read_text() == "last night\n"
    ok = CliRunner().invoke(app, [*base, "--model", model, "--channel", exported["channel"]])
    assert ok.exit_code == 0, ok.output
    assert out.read_text().startswith("onset,") and len(_rows(out)) == 52
    assert sorted(p.name for p in tmp_path.iterdir()) == ["night.csv", "night.csv.json"]


def test_blank_stdin_lines_are_missing_samples_not_skipped() -> None:
    text = "EOG\n1.0\n\n3.0\n# a comment\nx\n5.0\n"
    source = CsvSource(io.StringIO(text), 100.0, packet_s=1.0)
    packets = list(source.packets())
    assert isinstance(packets[0], Packet) and packets[0].start == 0
    samples = np.concatenate([p.samples[:, 0] for p in packets])
    np.testing.assert_array_equal(np.isnan(samples), [False, True, False, True, False])
    assert samples[[0, 2, 4]].tolist() == [1.0, 3.0, 5.0] and source.stats["bad_lines"] == 2


def _rewrite(folder: Path, edit: dict) -> None:
    from edgesleep.export.graphs import save
    from edgesleep.metadata import META_KEY

    for name in ("encoder", "sequence"):
        proto = onnx.load(folder / f"{name}.onnx")
        meta = json.loads(next(p.value for p in proto.metadata_props if p.key == META_KEY))
        save(proto, {**meta, **edit}, folder / f"{name}.onnx")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"labels": ["W", "N1", "N2", "N3", "R"]}, "not a known class set"),
        ({"labels": ["W"] * 6}, "not a known class set"),
        ({"seq_len": "20"}, "re-export"),
        ({"session_options": []}, "re-export"),
    ],
)
def test_edited_metadata_is_refused_clearly(
    exported: dict, tmp_path: Path, edit: dict, message: str
) -> None:
    folder = tmp_path / "fp32"
    shutil.copytree(exported["root"] / "out" / "fp32", folder)
    _rewrite(folder, edit)
    with pytest.raises(InputError, match=message):
        ExportedModel(folder)


def test_an_incomplete_int8_export_is_said_not_silently_replaced(
    exported: dict, tmp_path: Path
) -> None:
    shutil.copytree(exported["root"] / "out", tmp_path / "out")
    (tmp_path / "out" / "int8" / "encoder.onnx").unlink()
    with pytest.raises(InputError, match="incomplete export.*--precision fp32"):
        ExportedModel(tmp_path / "out")
    assert ExportedModel(tmp_path / "out", "fp32").info.precision == "fp32"


def test_onsets_are_fixed_point_seconds() -> None:
    day_40 = 40 * 86_400 // 30  # epochs
    assert csv_row(day_40, 2, 5, None)[:2] == ["3456000", "30"]
    assert csv_row(3, 2, 5, None, onset0_s=0.25)[0] == "90.25"
