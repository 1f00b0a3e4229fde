"""Heart time series as inputs: beat times and heart-rate samples map onto the beat-interval
image of the ECG path; streaming equals offline; CSV files; staging from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import emulated_wearable
from typer.testing import CliRunner

from edgesleep.api import score_beats, score_heart_rate
from edgesleep.cli import app
from edgesleep.dsp.beats import (
    BeatSeriesStream,
    HeartRateStream,
    beat_images,
    beat_series_images,
    heart_rate_images,
)
from edgesleep.errors import InputError
from edgesleep.io.heart import Series, read_series, write_series
from edgesleep.ort import ExportedModel
from edgesleep.stager import SeriesStager

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "walch"


def night_beats(seconds: float = 3600.0, seed: int = 0) -> np.ndarray:
    """Beat times of a heart rate that drifts between 50 and 80 beats/min."""
    rng = np.random.default_rng(seed)
    t, beats = 0.3, []
    while t < seconds:
        beats.append(t)
        t += 60.0 / (65 + 15 * np.sin(t / 600.0)) + rng.normal(0, 0.02)
    return np.array(beats)


def rates_of(beats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (time, beats/min) samples the beat path derives: 60 / median of 3 intervals."""
    rr = np.diff(beats)
    med = np.array([np.median(rr[max(0, i - 2) : i + 1]) for i in range(rr.size)])
    return beats[1:], 60.0 / med


def test_a_heart_rate_series_gives_the_beat_path_image() -> None:
    beats = night_beats()
    n_epochs = 100
    time_s, bpm = rates_of(beats)
    np.testing.assert_allclose(heart_rate_images(time_s, bpm, n_epochs),
                               beat_images(beats, n_epochs), atol=1e-4)  # fmt: skip
    np.testing.assert_array_equal(beat_series_images(beats[::-1], None, n_epochs),
                                  beat_images(beats, n_epochs))  # fmt: skip


@pytest.mark.parametrize("chunk", [1, 7, 500])
def test_streaming_equals_offline(chunk: int) -> None:
    beats = night_beats(1800.0, seed=chunk)
    time_s, bpm = rates_of(beats)
    bpm[::50] = 250.0  # implausible samples: dropped by both
    for stream, times, values, offline in (
        (HeartRateStream(), time_s, bpm, heart_rate_images(time_s, bpm, 60)),
        (BeatSeriesStream(), beats, None, beat_series_images(beats, None, 60)),
    ):
        images = []
        for i in range(0, times.size, chunk):
            part = slice(i, i + chunk)
            horizon = times[i + chunk] if i + chunk < times.size else 1800.0
            images += stream.push(times[part], None if values is None else values[part], horizon)
        assert [e for e, _ in images] == list(range(60))
        np.testing.assert_allclose(np.stack([im for _, im in images]), offline, atol=1e-5)


def test_samples_before_the_start_are_context() -> None:
    time_s = np.arange(-600.0, 900.0, 5.0)
    bpm = np.where(time_s < 0, 90.0, 60.0)
    with_context = heart_rate_images(time_s, bpm, 30)
    without = heart_rate_images(time_s[time_s >= 0], bpm[time_s >= 0], 30)
    assert with_context.shape == without.shape == (30, 27, 20)
    # epoch 0's 270-s context window holds the 90-beats/min minutes before the start
    assert (with_context[0][:24] != 0).all() and (without[0][:24] == 0).all()
    # unsorted input is sorted first
    order = np.random.default_rng(0).permutation(time_s.size)
    np.testing.assert_array_equal(heart_rate_images(time_s[order], bpm[order], 30), with_context)


def test_csv_formats(tmp_path: Path) -> None:
    beats = tmp_path / "beats.csv"
    beats.write_text("# R peaks\ntime_s\n0.81\n1.62\n\n2.40\n")
    series = read_series(beats)
    assert series.source == "beats" and series.values is None
    np.testing.assert_array_equal(series.time_s, [0.81, 1.62, 2.40])
    assert series.end_s is None
    beats.write_text("time_s\n0.81\n1.62\n# end_s=95.5\n")
    assert read_series(beats).end_s == 95.5  # where a recorded stream ended
    for bad in ("nan", "-1", "1e9", "soon"):
        beats.write_text(f"time_s\n0.81\n# end_s={bad}\n")
        with pytest.raises(InputError, match="line 3: .* not an end in s"):
            read_series(beats)
    rate = tmp_path / "hr.csv"
    write_series(rate, Series("heart-rate", np.array([-3.5, 0.0, 4.25]), np.array([61, 60, 58.5])))
    assert rate.read_text() == "time_s,bpm\n-3.500,61\n0.000,60\n4.250,58.5\n"
    back = read_series(rate, "heart-rate")
    assert back.source == "heart-rate" and back.values.tolist() == [61, 60, 58.5]
    bare = tmp_path / "bare.txt"
    bare.write_text("12.5 70\n-4,71\n")
    assert read_series(bare, "heart-rate").time_s.tolist() == [12.5, -4.0]
    assert read_series(bare).source == "heart-rate"  # no header: two columns
    (tmp_path / "bare1.txt").write_text("0.8\n1.6\n")
    assert read_series(tmp_path / "bare1.txt").source == "beats"  # one column
    (tmp_path / "bare3.txt").write_text("1 2 3\n")
    with pytest.raises(InputError, match="no header line and 3 columns"):
        read_series(tmp_path / "bare3.txt")
    with pytest.raises(InputError, match="a heart-rate file .* not beats"):
        read_series(rate, "beats")
    (tmp_path / "bad.csv").write_text("time_s,bpm\n1,60\n2,sixty\n")
    with pytest.raises(InputError, match="line 3"):
        read_series(tmp_path / "bad.csv")
    (tmp_path / "other.csv").write_text("t,hr\n1,60\n")
    with pytest.raises(InputError, match="has no time_s column"):
        read_series(tmp_path / "other.csv")
    # other columns are ignored: an annotated beat export, a rate with a quality column
    (tmp_path / "labelled.csv").write_text("time_s,label\n0.8,N\n1.6,V\n")
    labelled = read_series(tmp_path / "labelled.csv")
    assert labelled.source == "beats" and labelled.time_s.tolist() == [0.8, 1.6]
    (tmp_path / "q.csv").write_text("quality, bpm ,time_s\ngood,61,0\nbad,60,5\n")
    q = read_series(tmp_path / "q.csv")
    assert q.source == "heart-rate" and q.values.tolist() == [61, 60] and q.time_s[1] == 5
    (tmp_path / "short.csv").write_text("time_s,label\n0.8\n")
    with pytest.raises(InputError, match="line 2.*1 fields, expected 2"):
        read_series(tmp_path / "short.csv")


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/data/walch")
def test_reads_a_real_watch_file() -> None:
    path = SHARED / "heart_rate" / "1360686_heartrate.txt"
    series = read_series(path, "heart-rate")
    assert series.time_s.min() < -86400  # the watch ran days before the night
    images = heart_rate_images(series.time_s, series.values)
    assert images.shape[1:] == (27, 20) and np.isfinite(images).all()


def test_staging_from_beats_and_heart_rate(tiny_export: object, tmp_path: Path) -> None:
    folder = tiny_export("student-beats")["root"] / "out"  # type: ignore[operator]
    model = ExportedModel(folder, "fp32")
    beats = night_beats(1500.0)
    time_s, bpm = rates_of(beats)
    from_beats = score_beats(beats, model, delay=0)
    from_rate = score_heart_rate(time_s, bpm, model, delay=0)
    assert from_beats.n_epochs == from_rate.n_epochs == 49  # whole epochs by the last beat
    np.testing.assert_allclose(from_beats.probabilities, from_rate.probabilities, atol=1e-4)
    # the streaming stager gives what offline scoring gives
    stager, results = SeriesStager(model, "heart-rate", delay=0), []
    for i in range(0, time_s.size, 97):
        horizon = time_s[min(i + 97, time_s.size - 1)]
        results += stager.push_series(time_s[i : i + 97], bpm[i : i + 97], horizon)
    results += stager.end(time_s[-1])  # a stream that ends with its last sample
    np.testing.assert_allclose(np.stack([r.probabilities for r in results]),
                               from_rate.probabilities, atol=1e-5)  # fmt: skip
    # the CLI: a CSV with a header, one without (2 columns: heart rate), a model of another kind
    write_series(tmp_path / "night.csv", Series("heart-rate", time_s, bpm))
    rows = zip(time_s, bpm, strict=True)
    (tmp_path / "bare.txt").write_text("".join(f"{t},{b}\n" for t, b in rows))
    args = ["stage", str(tmp_path / "night.csv"), "--model", str(folder), "--out",
            str(tmp_path / "out"), "--delay", "0"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "night.csv").is_file() and (
        tmp_path / "out" / "night.json"
    ).is_file()
    bare_args = [*args[:1], str(tmp_path / "bare.txt"), *args[2:]]
    named = CliRunner().invoke(
        app, [*bare_args, "--input", "heart-rate", "--out", str(tmp_path / "n")]
    )
    assert named.exit_code == 0, named.output
    bare = CliRunner().invoke(app, bare_args)
    assert bare.exit_code == 0, bare.output  # two columns, no header: heart rate
    assert (tmp_path / "out" / "bare.csv").read_text() == (tmp_path / "n" / "bare.csv").read_text()
    (tmp_path / "three.txt").write_text("1,60,9\n")
    three = CliRunner().invoke(app, [*args[:1], str(tmp_path / "three.txt"), *args[2:]])
    assert three.exit_code == 1 and "--input" in three.output


def test_a_signal_model_refuses_a_heart_series(tiny_export: object) -> None:
    folder = tiny_export("student")["root"] / "out"  # type: ignore[operator]
    with pytest.raises(InputError, match="cannot be made from 'heart-rate'"):
        score_heart_rate(np.arange(0.0, 600, 5), np.full(120, 60.0), ExportedModel(folder, "fp32"))


def test_rates_frames_round_trip_with_test_vectors() -> None:
    from edgesleep import protocol

    header = protocol.Header(1000.0, (), "int16", 1.0, "watch", 7)
    encoded = protocol.encode_header(header)
    # test vector: an events-only header (0 channels, ticks of 1 ms) ...
    assert encoded.hex() == "a55a011500010000007a440000803f0700000000057761746368025b"
    # ... and a rates frame of two samples (tick 1500 ms at 61.5 beats/min, 6500 ms at 60)
    rates = protocol.encode_rates(np.array([1500, 6500]), np.array([61.5, 60.0]))
    assert rates.hex() == "a55a0512000200dc05000000007642641900000000704295bd"
    parser = protocol.Parser()
    frames = parser.feed(encoded + rates + protocol.encode_end(7000))
    assert frames[0] == header
    assert frames[1].ticks.tolist() == [1500, 6500] and frames[1].bpm.tolist() == [61.5, 60.0]
    assert frames[2] == protocol.End(7000)


def test_an_events_only_wearable_streams_as_offline(tiny_export: object, tmp_path: Path) -> None:
    """`edgesleep emulate --from hr.csv` (an events-only wearable on a pty) -> `edgesleep
    stream --input heart-rate` -> the offline hypnogram."""
    folder = tiny_export("student-beats")["root"] / "out"  # type: ignore[operator]
    time_s, bpm = rates_of(night_beats(1500.0))
    time_s = np.round(time_s, 3)  # millisecond ticks
    write_series(tmp_path / "hr.csv", Series("heart-rate", time_s, bpm.astype(np.float32)))
    link = tmp_path / "watch"
    with emulated_wearable(tmp_path, link, "--from", str(tmp_path / "hr.csv"), "--speed", "0",
                           "--linger", "5"):  # fmt: skip
        out = tmp_path / "stages.csv"
        args = ["stream", "--model", str(folder), f"serial:{link}", "--out", str(out),
                "--quiet", "--series", "heart-rate", "--delay", "0",
                "--precision", "fp32"]  # fmt: skip
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
    series = read_series(tmp_path / "hr.csv")
    offline = score_heart_rate(series.time_s, series.values, ExportedModel(folder, "fp32"),
                               delay=0)  # fmt: skip
    rows = [r.split(",") for r in out.read_text().splitlines()[1:]]
    assert [int(r[2]) for r in rows] == offline.stages.tolist()
    refused = CliRunner().invoke(app, ["stream", "--model", str(folder), f"serial:{link}",
                                       "--out", str(tmp_path / "x.csv")])  # fmt: skip
    assert refused.exit_code != 0
