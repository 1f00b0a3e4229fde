"""The stager: streaming equals offline, offline equals the torch evaluation, quality flags,
revisions, refusals. Tiny exported models (conftest ``exported``), SYNTHETIC short nights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import SHORT_NIGHT

from edgesleep.errors import InputError
from edgesleep.ort import ExportedModel
from edgesleep.readout import default_delay, probabilities
from edgesleep.stager import EpochResult, Stager, score_signal
from edgesleep.synth.psg import generate_night


def _night(sfreq: float, channel: str = "EEG Fpz-Cz", index: int = 0) -> np.ndarray:
    night = generate_night(21, index, sfreq=sfreq, stages=SHORT_NIGHT)
    return night.signals[channel]


def _stream(stager: Stager, signal: np.ndarray, seed: int) -> list[EpochResult]:
    rng = np.random.default_rng(seed)
    out, pos = [], 0
    while pos < signal.shape[0]:
        size = int(rng.choice([1, 7, 100, 333, 3000, 9001]))
        out += stager.push(signal[pos : pos + size])
        pos += size
    return out + stager.flush()


@pytest.mark.parametrize(
    ("sfreq", "precision"), [(100.0, "fp32"), (256.0, "fp32"), (100.0, "int8")]
)
def test_streaming_equals_offline(exported: dict, sfreq: float, precision: str) -> None:
    model = ExportedModel(exported["root"] / "out", precision)
    signal = _night(sfreq)
    delays = (0, 3, 19) if model.fixed_delay is None else (model.fixed_delay,)  # causal: one
    for delay in delays:
        offline = score_signal(model, signal, sfreq, delay)
        streamed = _stream(Stager(model, sfreq, delay), signal, seed=delay)
        assert (
            [r.index for r in streamed] == list(range(len(offline))) == [r.index for r in offline]
        )
        assert len(offline) == signal.shape[0] // int(30 * sfreq)
        np.testing.assert_allclose(
            np.stack([r.probabilities for r in streamed]),
            np.stack([r.probabilities for r in offline]),
            atol=1e-5,
        )
        assert [r.stage for r in streamed] == [r.stage for r in offline]


def _pushes(stager: Stager, signal: np.ndarray, sizes: list[int], t0: bool) -> list[tuple]:
    """Each push's results as comparable tuples (the push's number first)."""
    out, pos, sfreq = [], 0, stager.front.sfreq
    for i, size in enumerate(map(int, sizes)):
        results = stager.push(signal[pos : pos + size], t0=pos / sfreq if t0 else None)
        out += [(i, r.index, r.stage, r.model_stage, r.flags, r.probabilities.tobytes())
                for r in results]  # fmt: skip
        pos += size
    return out + [(-1, r.index, r.stage, r.model_stage, r.flags, r.probabilities.tobytes())
                  for r in stager.flush()]  # fmt: skip


@pytest.mark.parametrize("sfreq", [100.0, 256.0])
def test_any_chunking_gives_bit_identical_results_at_the_same_push(
    exported: dict, sfreq: float
) -> None:
    """A read's samples go through repair, resampler and STFT once the next image can be
    complete: the results are bit-identical to processing every packet at once, for any
    chunking, and come at the same push; quality flags included (NaN, a spike, a rail, a
    near-rail of 1.9 s, values at full scale)."""
    model = ExportedModel(exported["root"] / "out", "fp32")
    delay = 3 if model.fixed_delay is None else model.fixed_delay
    signal = _night(sfreq)[: int(12 * 30 * sfreq)].copy()
    n = int(30 * sfreq)
    signal[n + 50 : n + 60] = np.nan
    signal[2 * n + 7] = 5e6
    signal[3 * n - int(3 * sfreq) : 4 * n + int(3 * sfreq)] = 40.0  # a rail, epochs 2-4
    signal[6 * n + 3 : 6 * n + 3 + int(1.9 * sfreq)] = -12.0  # one value, not for 2 s
    signal[8 * n : 8 * n + 100] = 150.0  # full scale 150 µV
    rng = np.random.default_rng(int(sfreq))
    chunkings = [[int(0.25 * sfreq)] * -(-signal.shape[0] // int(0.25 * sfreq))]
    for _ in range(3):
        sizes = rng.choice([1, 13, 250, 3001, 9000], 4000)
        chunkings.append(sizes[: np.searchsorted(np.cumsum(sizes), signal.shape[0]) + 1])
    reference = None
    for sizes in chunkings:
        for t0 in (False, True):
            eager = Stager(model, sfreq, delay=delay, full_scale_uv=150.0)
            eager.front._samples_due = lambda: 0  # type: ignore[method-assign]
            deferred = Stager(model, sfreq, delay=delay, full_scale_uv=150.0)
            got = _pushes(deferred, signal, sizes, t0)
            assert got == _pushes(eager, signal, sizes, t0)
            assert len(got) == 12
            flags = {r[1]: set(r[4]) for r in got}
            assert {"nonfinite", "implausible"} <= flags[1] | flags[2]
            assert "stuck" in flags[2] and "stuck" in flags[3] and "stuck" in flags[4]
            assert "stuck" not in flags[6] and "clipped" in flags[8]
            unchunked = [r[1:] for r in got]
            reference = reference or unchunked
            assert unchunked == reference


def test_offline_equals_torch_evaluation(exported: dict) -> None:
    """The device path (streaming resampler, incremental STFT, ONNX) gives the training
    side's probabilities (batch resampler, batch STFT, torch) for the same night."""
    from edgesleep.dsp import resample, stft_signal

    ckpt = exported["ckpt"]
    signal = _night(256.0)
    images = stft_signal(resample(signal, 256.0))
    k = default_delay(ckpt.scorer())
    reference = probabilities(ckpt.scorer(), images, [k])[k]
    got = score_signal(ExportedModel(exported["root"] / "out", "fp32"), signal, 256.0)
    np.testing.assert_allclose(np.stack([r.probabilities for r in got]), reference, atol=1e-4)


def test_quality_flags_repair_and_artefact(exported: dict) -> None:
    model = ExportedModel(exported["root"] / "out", "fp32")
    sfreq = 100.0
    signal = _night(sfreq).copy()
    n = int(30 * sfreq)
    signal[5 * n + 100 : 5 * n + 200] = np.nan  # 100 samples of epoch 5: flagged, usable
    signal[9 * n : 10 * n] = np.inf  # all of epoch 9: unusable
    signal[20 * n : 21 * n] = 3.0  # epoch 20: flat
    signal[30 * n + 10 : 30 * n + 400] = 500.0  # epoch 30: clipped (full scale 500 µV)
    stager = Stager(model, sfreq, delay=0)
    results = stager.push(signal[: 40 * n])
    # a gap of 2.25 epochs, then the rest
    results += stager.push(signal[int(42.25 * n) :], t0=42.25 * 30) + stager.flush()
    by_index = {r.index: r for r in results}
    assert sorted(by_index) == list(range(len(by_index)))
    assert all(np.isfinite(r.probabilities).all() for r in results)
    assert "nonfinite" in by_index[5].flags and by_index[5].stage == by_index[5].model_stage
    assert "nonfinite" in by_index[9].flags and by_index[9].stage == -1
    assert "flat" in by_index[20].flags and by_index[20].stage == -1
    assert "clipped" not in by_index[30].flags  # full scale unknown
    assert "stuck" in by_index[30].flags  # but 3.9 s at one value is a rail
    assert by_index[30].stage == by_index[30].model_stage  # 13 % of the epoch: usable
    for epoch in (40, 41, 42):
        assert "gap" in by_index[epoch].flags
    assert by_index[40].stage == by_index[41].stage == -1  # wholly filled
    assert by_index[42].stage == by_index[42].model_stage  # a quarter filled: usable
    own = {i for i, r in by_index.items() if set(r.flags) - {"context"}}
    assert own == {5, 9, 20, 30, 40, 41, 42}
    # K = 0: the readout windows of epoch i cover i - 19 .. i
    for i, r in by_index.items():
        expected = any(j in own for j in range(i - 19, i + 1) if j != i)
        assert ("context" in r.flags) == expected, i
    clipped = score_signal(model, signal, sfreq, 0, full_scale_uv=500.0)
    assert "clipped" in clipped[30].flags and clipped[30].stage != -1


def test_revisions_end_on_the_delayed_stage(exported: dict) -> None:
    model = ExportedModel(exported["root"] / "out", "fp32")
    signal = _night(100.0)
    delay = 5 if model.fixed_delay is None else model.fixed_delay
    final = {r.index: r.stage for r in score_signal(model, signal, 100.0, delay)}
    emitted = _stream(Stager(model, 100.0, delay, revisions=True), signal, seed=1)
    last: dict[int, int] = {}
    seen: set[int] = set()
    for r in emitted:
        assert r.revision == (r.index in seen)
        seen.add(r.index)
        last[r.index] = r.stage
    assert last == final


def test_refusals(exported: dict) -> None:
    model = ExportedModel(exported["root"] / "out", "fp32")
    with pytest.raises(InputError, match="EEG.*ECG"):
        Stager(model, 100.0, channel="ECG")
    with pytest.raises(InputError):
        Stager(model, 99.5)
    with pytest.raises(InputError, match="delay"):
        Stager(model, 100.0, delay=20)
    Stager(model, 100.0, channel="Fpz-Cz")


def test_stage_verb_api_and_resume(exported: dict, tiny_dataset: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from edgesleep.api import score_file
    from edgesleep.cli import app

    night = sorted((tiny_dataset / "psg").glob("*.edf"))[0]
    folder = str(exported["root"] / "out")
    runner = CliRunner()
    args = ["stage", str(night), "--model", folder, "--out", str(tmp_path), "--plot"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    stem = tmp_path / night.stem
    for suffix in (".csv", ".json", ".png"):
        assert stem.with_suffix(suffix).is_file()
    assert (tmp_path / f"{night.stem}-hypnogram.edf").is_file()
    rows = stem.with_suffix(".csv").read_text().splitlines()
    hyp = score_file(night, folder)
    assert len(rows) == 1 + hyp.n_epochs == 1 + len(SHORT_NIGHT)
    assert [int(r.split(",")[2]) for r in rows[1:]] == hyp.stages.tolist()
    assert hyp.summary()["TIB"] == len(SHORT_NIGHT) / 2
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "already staged" in again.output
    wrong = runner.invoke(app, [*args[:-1], "--channel", "ECG", "--overwrite"])
    assert wrong.exit_code == 1 and "EEG" in wrong.output
    missing = runner.invoke(app, ["stage", str(night), "--model", str(tmp_path / "none")])
    assert missing.exit_code == 1 and "no such model" in missing.output


def test_csv_sink_appends_and_resumes(tmp_path: Path) -> None:
    from edgesleep.io.writers import CsvSink

    path = tmp_path / "s.csv"
    with CsvSink(path, 3) as sink:
        sink.write(0, 1, np.array([0.2, 0.7, 0.1]), 1, ("gap",))
    with CsvSink(path, 3) as sink:
        assert sink.n_rows == 1
        sink.write(1, -1, np.array([0.5, 0.3, 0.2]), 0, ("flat", "context"), revision=True)
    lines = path.read_text().splitlines()
    assert lines[0].startswith("onset,duration,stage,label,p_W,p_NREM,p_REM,model_stage")
    assert lines[2].split(",")[2:4] == ["-1", "ART"] and lines[2].endswith("flat;context,1")
    with pytest.raises(ValueError, match="other columns"):
        CsvSink(path, 5)
