"""No lost or mixed nights (issue 29, items 4-7): frames before a header are dropped, not
fatal; an index jump makes no filler rows and loses no frame; a resume never drops a new
recording, never interleaves two streams, repairs a cut row and starts a new night (saying
why) from anything it cannot trust; `stage --overwrite` replaces a result only once the new
one is complete."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner
from wearable import WATCH, device, rate_frames, rows

from edgesleep import protocol
from edgesleep.cli import app
from edgesleep.errors import InputError
from edgesleep.io.heart import Series, write_series
from edgesleep.night_file import NightSink, sidecar
from edgesleep.ort import ExportedModel
from edgesleep.shipped import default_model
from edgesleep.stager import EpochResult
from edgesleep.stream import StreamOptions, stream_to_csv

HEART = StreamOptions(delay=0, source="heart-rate")


def _rates(start_s: float, stop_s: float) -> tuple[np.ndarray, np.ndarray]:
    ticks = np.arange(start_s * 1000, stop_s * 1000, 5000).astype(np.int64)
    return ticks, 60 + 5 * np.sin(ticks / 9e5)


def test_frames_before_the_first_header_are_counted_and_dropped(tmp_path: Path) -> None:
    early = (
        protocol.encode_rates(*_rates(0, 50))
        + protocol.encode_beats(np.array([100, 900]))
        + protocol.encode_end(5)  # an end before any header does not end the stream
    )
    ticks, bpm = _rates(60, 1265)  # 60-1260 s: epochs 2-41
    data = early + rate_frames(ticks, bpm) + protocol.encode_end(int(ticks[-1]) + 1)
    with device(tmp_path, data) as source:
        report = stream_to_csv(default_model(4), source, tmp_path / "n.csv", HEART)
    assert report.source["no_header"] == 3 and report.epochs == 40
    assert len(rows(tmp_path / "n.csv")) == 40


def test_a_parser_drops_every_kind_of_frame_before_a_header() -> None:
    parser = protocol.Parser()
    frames = [
        protocol.encode_data(0, np.zeros((4, 1))),
        protocol.encode_rates(np.array([1]), np.array([60.0])),
        protocol.encode_beats(np.array([1])),
        protocol.encode_end(1),
    ]
    assert parser.feed(b"".join(frames)) == [] and parser.stats["no_header"] == 4
    got = parser.feed(protocol.encode_header(WATCH) + frames[1])
    assert [type(f).__name__ for f in got] == ["Header", "Rates"]


@pytest.mark.parametrize("jump_s", [86_400.0, (2**31 - 10_000) / 1000])
def test_an_index_jump_makes_no_filler_rows_and_loses_no_frame(
    tmp_path: Path, jump_s: float
) -> None:
    first, second = _rates(0, 1205), _rates(jump_s, jump_s + 1205)
    ticks, bpm = np.concatenate([first[0], second[0]]), np.concatenate([first[1], second[1]])
    data = rate_frames(ticks, bpm) + protocol.encode_end(int(ticks[-1]) + 1)
    with device(tmp_path, data) as source:
        report = stream_to_csv(default_model(4), source, tmp_path / "n.csv", HEART)
    got = rows(tmp_path / "n.csv")
    assert len(got) == 80 and report.source["queue_drops"] == 0  # 2 x 20 min, nothing else
    after = got[40]
    assert float(after["onset"]) == jump_s // 30 * 30 and "segment" in after["flags"]


def _result(i: int, n_classes: int = 4) -> EpochResult:
    probs = np.full(n_classes, 1 / n_classes)
    return EpochResult(i, i * 30.0, 1, 1, probs)


META = {"device_id": "dev", "stream_id": 7, "channel": "ECG", "sfreq": 256.0, "export_id": "x"}


def _night(out: Path, indices: range, meta: dict = META, n_classes: int = 4) -> None:
    sink = NightSink(out, n_classes, resume=True, overwrite=False)
    sink.start(meta)
    for i in indices:
        sink.write(_result(i, n_classes))
    sink.close()


def test_a_counter_that_went_back_is_a_new_night(tmp_path: Path) -> None:
    out = tmp_path / "night.csv"
    _night(out, range(120))
    _night(out, range(0, 50))  # the device's counter restarted, same stream id
    assert [float(r["onset"]) for r in rows(out)] == [30.0 * i for i in range(50)]
    archived = [p for p in tmp_path.glob("night-*.csv")]
    assert len(archived) == 1 and len(rows(archived[0])) == 120


def test_two_streams_on_one_night_refuse_naming_the_holder(tmp_path: Path) -> None:
    out = tmp_path / "night.csv"
    first = NightSink(out, 4, resume=True, overwrite=False)
    with pytest.raises(InputError, match=f"another stream .pid {os.getpid()} on "):
        NightSink(out, 4, resume=True, overwrite=False)
    first.close()
    NightSink(out, 4, resume=True, overwrite=False).close()  # released: taken again
    assert not out.with_name("night.csv.lock").exists()


def test_a_resume_after_a_cut_row_repairs_it(tmp_path: Path) -> None:
    out = tmp_path / "night.csv"
    _night(out, range(10))
    with out.open("a") as fh:
        fh.write("300,30,1,Light,0.25,0.2")  # the row of epoch 10, cut by a power loss
    _night(out, range(10, 20))
    got = rows(out)
    assert [float(r["onset"]) for r in got] == [30.0 * i for i in range(20)]
    assert all(len(r) == 11 and None not in r.values() for r in got)  # 19 fields nowhere


@pytest.mark.parametrize(
    ("what", "meta", "last_row", "n_classes", "why"),
    [
        ("[]", None, None, 4, "not a night's description"),
        ('{"device_id": 3', None, None, 4, "no readable night.csv.json"),
        (None, {**META, "stream_id": "7"}, None, 4, "another device stream"),
        (None, None, "1e400,30,1,Light,0.25,0.25,0.25,0.25,1,,0", 4, "unreadable last row"),
        (None, None, "abc,30,1,Light,0.25,0.25,0.25,0.25,1,,0", 4, None),  # not a row: skipped
        (None, None, None, 3, "other columns"),
        (None, {**META, "export_id": "y"}, None, 4, "another model"),
    ],
)
def test_what_cannot_be_trusted_starts_a_new_night_and_says_why(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    what: str | None,
    meta: dict | None,
    last_row: str | None,
    n_classes: int,
    why: str | None,
) -> None:
    out = tmp_path / "night.csv"
    _night(out, range(10), meta or META)
    if what is not None:
        sidecar(out).write_text(what)
    if last_row is not None:
        with out.open("a") as fh:
            fh.write(last_row + "\n")
    _night(out, range(10, 15), META, n_classes)  # never an internal error
    archived = list(tmp_path.glob("night-*.csv"))
    if why is None:
        assert not archived
        return
    assert len(archived) == 1 and len(rows(out)) == 5
    assert json.loads(sidecar(out).read_text())["stream_id"] == 7
    said = [r.getMessage() for r in caplog.records if "a new night begins" in r.getMessage()]
    assert len(said) == 1 and why in said[0] and archived[0].name in said[0]


class FullDisk:
    """``os.write`` that refuses once ``budget`` bytes went to files named ``.new-*``."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.real = os.write

    def __call__(self, fd: int, data: bytes) -> int:
        if os.readlink(f"/proc/self/fd/{fd}").rsplit("/", 1)[-1].startswith(".new-"):
            if self.budget <= 0:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.budget -= len(data)
        return self.real(fd, data)


def test_stage_overwrite_replaces_only_a_complete_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_export: Callable[[str], dict]
) -> None:
    ticks, bpm = _rates(0, 3 * 3600 + 5)
    night = tmp_path / "hr.csv"
    write_series(night, Series("heart-rate", ticks / 1000, bpm))
    args = ["stage", str(night), "--out", str(tmp_path / "out"), "--delay", "0"]
    assert CliRunner().invoke(app, args).exit_code == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    from edgesleep.io import writers

    monkeypatch.setattr(writers.os, "write", FullDisk(budget=8000))  # the new CSV is cut
    model = str(tiny_export("student-beats")["root"] / "out")
    failed = CliRunner().invoke(app, [*args, "--overwrite", "--model", model])
    assert failed.exit_code == 1 and "No space left" in failed.output
    after = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    assert after == before  # the old result, whole, and nothing half-written beside it
    monkeypatch.undo()
    again = CliRunner().invoke(app, [*args, "--overwrite", "--model", model])
    assert again.exit_code == 0 and "already staged" not in again.output
    got = rows(tmp_path / "out" / "hr.csv")
    assert len(got) == 360 and len([k for k in got[0] if k.startswith("p_")]) == 3
    assert ExportedModel(model).info.n_classes == 3  # the new model's result, whole


def test_a_signal_index_jump_of_two_to_the_31_loses_no_frame(
    tmp_path: Path, tiny_export: Callable[[str], dict]
) -> None:
    """The red team's case: data frames whose index jumps by ~2**31 samples."""
    from edgesleep.synth.psg import generate_night

    exported = tiny_export("student")
    signal = generate_night(4, 0, stages=np.array([0, 2, 2, 4] * 10)).signals["EEG Fpz-Cz"]
    samples = np.round(signal / 0.5).astype(np.int16)[:, None]  # 0.5 µV per count, 100 Hz
    header = protocol.encode_header(protocol.Header(100.0, ("EEG Fpz-Cz",), "int16", 0.5, "d", 1))
    jump = 2**31 - 3_000_000  # forward, just short of the unwrap's half range
    data = b""
    for part, first in ((samples[:60_000], 0), (samples[60_000:120_000], jump)):
        for i in range(0, part.shape[0], 25):
            data += (header if i % 500 == 0 else b"") + protocol.encode_data(
                first + i, part[i : i + 25]
            )
    data += protocol.encode_end(jump + 60_000)
    out = tmp_path / "n.csv"
    with device(tmp_path, data, bytes_per_s=len(data) / 3) as source:  # 400x real time
        model = ExportedModel(exported["root"] / "out")
        report = stream_to_csv(model, source, out, StreamOptions(delay=0))
    got = rows(out)
    assert len(got) == 40 and report.source["queue_drops"] == 0  # 2 x 10 min, no filler
    assert float(got[20]["onset"]) == jump // 3000 * 30 and "segment" in got[20]["flags"]
