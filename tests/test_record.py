"""`stream --record` (issue 32, slice 1): what the stream received, kept so that the night
can be re-scored. A signal's samples in EDF+ (exact for int16 device samples; gaps held and
annotated), heart events in the heart CSV that `stage` reads (re-scored exactly); a record
path that does not fit is refused before the stream starts. SYNTHETIC data."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyedflib
import pytest
from test_sinks import WatchRates

from edgesleep.api import score_series_file
from edgesleep.errors import InputError, UsageError
from edgesleep.record import Recorder, check_record
from edgesleep.shipped import default_model
from edgesleep.sources import Packet
from edgesleep.stream import StreamOptions, stream_to_csv


def test_a_signal_is_recorded_exactly_with_its_gaps(tmp_path: Path) -> None:
    lsb = 0.5  # µV per count, as a serial header states
    rng = np.random.default_rng(0)
    counts = rng.integers(-2000, 2000, size=(1000, 2))
    path = tmp_path / "raw.edf"
    rec = Recorder(path)
    rec.start({"sfreq": 100.0, "channels": ["EEG Fpz-Cz", "EOG"], "full_scale_uv": 32767 * lsb,
               "device_id": "band"})  # fmt: skip
    rec.packet(Packet(0, counts[:300] * lsb))
    rec.packet(Packet(250, counts[250:450] * lsb))  # overlaps 50 samples
    rec.packet(Packet(650, counts[650:1000] * lsb))  # a 2-s gap from 450
    rec.close()
    with pyedflib.EdfReader(str(path)) as reader:
        got = np.stack([reader.readSignal(i, digital=True) for i in range(2)], axis=1)
        onsets, durations, texts = reader.readAnnotations()
        assert reader.getSignalLabels() == ["EEG Fpz-Cz", "EOG"]
    want = counts.copy()
    want[450:650] = counts[449]  # the gap: held at the last value
    np.testing.assert_array_equal(got[:1000], want)
    assert list(texts) == ["gap", "end"]
    np.testing.assert_allclose(onsets, [4.5, 10.0]) and np.testing.assert_allclose(
        durations[0], 2.0
    )


def test_heart_events_are_recorded_as_the_csv_stage_rescores_alike(tmp_path: Path) -> None:
    out, kept = tmp_path / "night.csv", tmp_path / "rates.csv"
    opts = StreamOptions(delay=0, source="heart-rate")
    report = stream_to_csv(default_model(4), WatchRates(), out, opts,
                           sinks=[Recorder(kept, "heart-rate")])  # fmt: skip
    with out.open() as fh:
        streamed = [int(r["stage"]) for r in csv.DictReader(fh)]
    assert report.epochs == len(streamed) == 120
    again = score_series_file(kept, default_model(4), delay=0)
    # every epoch, the last too: the stream's end frame completed it, and the CSV says so
    assert kept.read_text().splitlines()[-1].startswith("# end_s=")
    assert again.stages.tolist() == streamed


def test_a_record_path_must_fit_the_stream(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"recorded as \.edf"):
        check_record(tmp_path / "raw.csv", None, False)
    with pytest.raises(UsageError, match=r"heart events \(beats\) is recorded as \.csv"):
        check_record(tmp_path / "raw.edf", "beats", False)
    (tmp_path / "raw.edf").write_text("old")
    with pytest.raises(InputError, match="--overwrite"):
        check_record(tmp_path / "raw.edf", None, False)
    check_record(tmp_path / "raw.edf", None, True)


def test_stream_record_from_the_command_line(
    tiny_export: object, tiny_dataset: Path, tmp_path: Path
) -> None:
    """`stream edf:… --record raw.edf`: the recorded night scores as the stream did."""
    from typer.testing import CliRunner

    from edgesleep.api import score_file
    from edgesleep.cli import app

    exported = tiny_export("student")  # type: ignore[operator]
    night = sorted((tiny_dataset / "psg").glob("*.edf"))[0]
    out, raw = tmp_path / "night.csv", tmp_path / "raw.edf"
    model = str(exported["root"] / "out")
    args = ["stream", f"edf:{night}", "--model", model, "--out", str(out), "--record",
            str(raw), "--channel", exported["channel"], "--quiet"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "sink record" in result.output and "drops 0, failed 0" in result.output
    with out.open() as fh:
        streamed = np.array([int(r["stage"]) for r in csv.DictReader(fh)])
    again = score_file(raw, exported["root"] / "out", channel=exported["channel"]).stages
    # the same samples within half a count of 16 bits: the same stages
    assert again.tolist() == streamed.tolist()
    refused = CliRunner().invoke(app, args)  # both files exist now
    assert refused.exit_code == 1 and "--overwrite" in refused.output
