"""Serial protocol, sources, emulated wearable and the stream loop (pseudo-terminals)."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import SHORT_NIGHT, emulated_wearable
from hypothesis import given, settings
from hypothesis import strategies as st

from edgesleep import protocol
from edgesleep.emulate import Faults, PtyPort, play, to_counts
from edgesleep.ort import ExportedModel
from edgesleep.sources import ArraySource, CsvSource, Packet, SerialSource, StreamInfo
from edgesleep.stager import EpochResult, Stager, score_signal
from edgesleep.stream import run_stream
from edgesleep.synth.psg import generate_night

HEADER = protocol.Header(128.0, ("EEG Fpz-Cz", "ECG"), "int16", 0.25, "dev", 7)


def _frames() -> list[protocol.Frame]:
    rng = np.random.default_rng(0)
    return [
        HEADER,
        protocol.Data(2**32 - 10, rng.integers(-500, 500, (40, 2)).astype(np.int16)),
        protocol.Beats(np.array([5, 2**32 - 1], dtype=np.int64)),
        protocol.Data(30, rng.integers(-500, 500, (1, 2)).astype(np.int16)),
        protocol.End(31),
    ]


def _encode(f: protocol.Frame) -> bytes:
    if isinstance(f, protocol.Header):
        return protocol.encode_header(f)
    if isinstance(f, protocol.Data):
        return protocol.encode_data(f.first_index, f.samples)
    if isinstance(f, protocol.Beats):
        return protocol.encode_beats(f.indices)
    assert isinstance(f, protocol.End)
    return protocol.encode_end(f.next_index)


def _same(a: protocol.Frame, b: protocol.Frame) -> bool:
    if isinstance(a, protocol.Data) and isinstance(b, protocol.Data):
        return a.first_index == b.first_index and np.array_equal(a.samples, b.samples)
    if isinstance(a, protocol.Beats) and isinstance(b, protocol.Beats):
        return np.array_equal(a.indices, b.indices)
    return a == b


def test_crc_and_round_trip() -> None:
    assert protocol.crc16(b"123456789") == 0x29B1  # the CRC-16/CCITT-FALSE check value
    frames = _frames()
    parsed = protocol.Parser().feed(b"".join(_encode(f) for f in frames))
    assert len(parsed) == len(frames) and all(map(_same, parsed, frames))
    floats = protocol.Header(100.0, ("EOG",), "float32")
    x = np.array([[1.5], [-2.25]], dtype=np.float32)
    raw = protocol.encode_header(floats) + protocol.encode_data(3, x, "float32")
    data = protocol.Parser().feed(raw)[1]
    assert isinstance(data, protocol.Data) and np.array_equal(data.samples, x)
    with pytest.raises(ValueError, match="maximum"):
        protocol.encode_data(0, np.zeros((600, 1)))


def test_parser_needs_a_header_and_a_valid_crc() -> None:
    parser = protocol.Parser()
    data = protocol.encode_data(0, np.zeros((4, 2)))
    assert parser.feed(data) == [] and parser.stats["no_header"] == 1
    broken = bytearray(protocol.encode_header(HEADER))
    broken[8] ^= 0xFF
    assert parser.feed(bytes(broken)) == [] and parser.stats["crc_errors"] == 1
    assert parser.header is None


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4096), st.integers(1, 64))
def test_random_bytes_never_crash_or_hold_memory(junk: bytes, chunk: int) -> None:
    parser = protocol.Parser()
    for pos in range(0, len(junk), chunk):
        parser.feed(junk[pos : pos + chunk])
        assert len(parser.buffer) <= protocol.MAX_PAYLOAD + protocol.OVERHEAD
    parser.finish()
    assert not parser.buffer


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=80), min_size=6, max_size=6), st.integers(1, 97))
def test_frames_survive_garbage_and_any_chunking(junk: list[bytes], chunk: int) -> None:
    frames = _frames()
    stream = b"".join(j + _encode(f) for j, f in zip(junk, frames, strict=False)) + junk[-1]
    parser = protocol.Parser()
    parsed = []
    for pos in range(0, len(stream), chunk):
        parsed += parser.feed(stream[pos : pos + chunk])
    parsed += parser.finish()
    assert len(parsed) == len(frames) and all(map(_same, parsed, frames))


def _unmerged(frames: list[protocol.Frame]) -> list[tuple[str, object]]:
    """Frames as comparable items, each data frame's samples one item per sample (so
    runs merged or not compare equal); a repeat of the current header is dropped (a merged
    run goes where its first frame was, before the repeats it spans)."""
    items: list[tuple[str, object]] = []
    header = None
    for f in frames:
        if isinstance(f, protocol.Header):
            if f != header:
                items.append(("frame", f))
            header = f
        elif isinstance(f, protocol.Data):
            items += [("sample", ((f.first_index + k) % 2**32, tuple(row)))
                      for k, row in enumerate(f.samples.tolist())]  # fmt: skip
        elif isinstance(f, protocol.Beats):
            items.append(("beats", tuple(f.indices.tolist())))
        else:
            items.append(("frame", f))
    return items


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(["data", "skip", "header", "other header", "beats", "junk",
                                 "empty", "wrap"]), max_size=30),
       st.integers(1, 300))  # fmt: skip
def test_merged_reads_hold_the_same_frames(steps: list[str], chunk: int) -> None:
    """merge=True joins the data frames of a read that continue each other (across a
    repeated header, not across anything else) and gives what merge=False gives."""
    one, two = protocol.Header(100.0, ("a", "b")), protocol.Header(100.0, ("a", "b"), stream_id=7)
    stream, index, rng = [protocol.encode_header(one)], 0, np.random.default_rng(len(steps))
    for step in steps:
        n = 0 if step == "empty" else int(rng.integers(1, 30))
        if step in ("data", "empty", "skip", "wrap"):
            index += 5 if step == "skip" else 0
            index = 2**32 - 3 if step == "wrap" else index
            stream.append(protocol.encode_data(index, rng.integers(-99, 99, (n, 2))))
            index = (index + n) % 2**32
        elif step == "header":
            stream.append(protocol.encode_header(one))
        elif step == "other header":
            stream.append(protocol.encode_header(two))
            one, two = two, one
        elif step == "beats":
            stream.append(protocol.encode_beats(np.arange(3) + index))
        else:
            stream.append(b"\xa5\x5a\x02junk")
    data = b"".join(stream)
    got = {}
    for merge in (False, True):
        parser, frames = protocol.Parser(merge=merge), []
        for pos in range(0, len(data), chunk):
            read = parser.feed(data[pos : pos + chunk])
            if merge:  # within a read, consecutive data frames never continue each other
                runs = [f for f in read if isinstance(f, protocol.Data)]
                for a, b in zip(read, read[1:], strict=False):
                    if isinstance(a, protocol.Data) and isinstance(b, protocol.Data):
                        assert b.first_index != (a.first_index + a.samples.shape[0]) % 2**32
                assert all(r.samples.dtype == np.dtype("<i2") for r in runs)
            frames += read
        got[merge] = (_unmerged(frames + parser.finish()), parser.stats)
    assert got[True] == got[False]


def test_serial_source_unwraps_indices_and_places_beats() -> None:
    source = SerialSource.detached()  # frames are handed over directly, one read
    source.receive(_frames())
    items = [source.queue.get() for _ in range(source.queue.qsize())]
    # time is the device's: the first packet starts at its index, 2**32 - 10; the next
    # indices wrap and are unwrapped past 2**32
    first = 2**32 - 10
    assert [(i.start, len(i.samples)) for i in items if isinstance(i, Packet)] == [
        (first, 40), (first + 40, 1), (first + 41, 0)]  # fmt: skip
    beats = [i for i in items if not isinstance(i, Packet)][0]
    assert beats.indices.tolist() == [first + 15, first + 9]


def test_one_read_is_one_batch_per_run_of_samples() -> None:
    """The frames of one read: contiguous samples joined into one packet, a gap or an event
    between them splits the run, order kept; a full queue drops whole packets, counted."""
    source = SerialSource.detached()
    x = np.arange(60, dtype=np.int16).reshape(30, 2)
    source.receive([HEADER, protocol.Data(0, x[:10]), protocol.Data(10, x[10:20]),
                    protocol.Data(25, x[20:25]), protocol.Beats(np.array([26])),
                    protocol.Data(30, x[25:])])  # fmt: skip
    items = [source.queue.get() for _ in range(source.queue.qsize())]
    kinds = [(i.start, len(i.samples)) if isinstance(i, Packet) else "beats" for i in items]
    assert kinds == [(0, 20), (25, 5), "beats", (30, 5)]
    np.testing.assert_array_equal(items[0].samples, x[:20] * np.float64(HEADER.uv_per_lsb))


def _expected_flags(missing: np.ndarray, n_epochs: int, sfreq: float, seq_len: int,
                    delay: int) -> dict[int, set[str]]:  # fmt: skip
    """Epochs that overlap missing samples get "gap"; those whose readout windows
    (epochs i - L + 1 .. i + K) hold one get "context"."""
    per_epoch = int(30 * sfreq)
    gap = set(np.unique(np.flatnonzero(missing) // per_epoch).tolist())
    flags: dict[int, set[str]] = {}
    for i in range(n_epochs):
        own = {"gap"} if i in gap else set()
        if any(j in gap and j != i for j in range(i - seq_len + 1, i + delay + 1)):
            own.add("context")
        if own:
            flags[i] = own
    return flags


class _Recorder:
    """Wrap a source; remember which samples arrived."""

    def __init__(self, source: SerialSource, n_times: int) -> None:
        self.source = source
        self.arrived = np.zeros(n_times, dtype=bool)

    @property
    def stats(self) -> dict[str, float]:
        return self.source.stats

    def packets(self):  # type: ignore[no-untyped-def]
        for p in self.source.packets():
            if isinstance(p, Packet):
                self.arrived[p.start : p.start + p.samples.shape[0]] = True
            yield p

    def close(self) -> None:
        self.source.close()


def test_night_over_a_pty_with_garbage_drops_and_a_disconnect(
    exported: dict, tmp_path: Path
) -> None:
    """Every epoch comes out; stages and probabilities equal offline scoring of the same
    (int16) samples except exactly the epochs flagged for a gap or a gap in their windows."""
    sfreq, channel = 128.0, exported["channel"]
    stages = np.concatenate([SHORT_NIGHT, SHORT_NIGHT])
    night = generate_night(21, 0, sfreq=sfreq, stages=stages).signals[channel]
    counts, uv_per_lsb = to_counts(night[:, None])
    signal = counts[:, 0] * np.float64(np.float32(uv_per_lsb))
    model = ExportedModel(exported["root"] / "out", "fp32")
    delay = 0
    offline = score_signal(model, signal, sfreq, delay)

    port = PtyPort(tmp_path / "wearable")
    source = SerialSource(str(port.link), reconnect_s=0.05)
    assert source.connected.wait(10)
    faults = Faults(True, True, True, disconnect_s=2.0, drop_every_s=600.0, seed=3)
    sent: dict[str, int] = {}
    player = threading.Thread(
        target=lambda: sent.update(play(port, night[:, None], sfreq, (channel,), None, faults))
    )
    player.start()
    info = source.info()
    assert info.sfreq == sfreq and info.channels == (channel,)
    recorder = _Recorder(source, night.shape[0])
    results: list[EpochResult] = []
    stager = Stager(model, sfreq, delay)
    report = run_stream(recorder, stager, results.append)  # type: ignore[arg-type]
    player.join()
    port.close()

    assert sent["dropped"] > 0 and sent["garbage_bytes"] > 0 and sent["disconnects"] == 1
    assert report.source["reconnects"] == 1 and report.gaps > 0
    assert [r.index for r in results] == list(range(len(stages)))
    expected = _expected_flags(~recorder.arrived, len(stages), sfreq, model.info.seq_len, delay)
    assert {r.index: set(r.flags) - {"flat"} for r in results if r.flags} == expected
    missing = (~recorder.arrived).reshape(len(stages), -1).mean(axis=1)
    assert all(missing[r.index] > 0.9 for r in results if "flat" in r.flags)
    clean = [i for i in range(len(results)) if i not in expected]
    assert len(clean) > 0
    np.testing.assert_allclose(
        np.stack([results[i].probabilities for i in clean]),
        np.stack([offline[i].probabilities for i in clean]),
        atol=1e-5,
    )


def test_csv_source_and_array_source_match_offline(exported: dict) -> None:
    model = ExportedModel(exported["root"] / "out", "fp32")
    signal = generate_night(21, 1, stages=SHORT_NIGHT[:24]).signals[exported["channel"]]
    values = [f"{v:.6f}" for v in signal]
    values[500] = "oops"  # a bad line -> NaN, repaired and flagged
    csv = CsvSource(io.StringIO("\n".join(["# a comment", "Fpz", *values])), 100.0)
    assert csv.info().channels == ("Fpz",)
    results: list[EpochResult] = []
    run_stream(csv, Stager(model, 100.0), results.append)
    assert csv.stats["bad_lines"] == 1
    assert [r.index for r in results if r.flags] == list(range(0, 20))  # epoch 0 + context
    offline = score_signal(model, np.round(signal, 6), 100.0)
    assert [r.stage for r in results[20:]] == [r.stage for r in offline[20:]]
    replay: list[EpochResult] = []
    info = StreamInfo(100.0, ("Fpz",))
    run_stream(ArraySource(signal[:, None], info, None, 0.37), Stager(model, 100.0),
               replay.append)  # fmt: skip
    exact = score_signal(model, signal, 100.0)
    np.testing.assert_allclose(
        np.stack([r.probabilities for r in replay]),
        np.stack([r.probabilities for r in exact]),
        atol=1e-5,
    )


def test_emulate_and_stream_verbs(exported: dict, tiny_dataset: Path, tmp_path: Path) -> None:
    """`edgesleep emulate` (a subprocess on a pty) -> `edgesleep stream --port` -> CSV."""
    from typer.testing import CliRunner

    from edgesleep.api import score_file
    from edgesleep.cli import app

    night = sorted((tiny_dataset / "psg").glob("*.edf"))[0]
    link = tmp_path / "wearable"
    # 300x real time: at full speed the reader's bounded queue may drop packets by design
    with emulated_wearable(tmp_path, link, "--from", str(night), "--speed", "300",
                           "--faults", "garbage", "--linger", "5") as emulator:  # fmt: skip
        out = tmp_path / "stages.csv"
        folder = str(exported["root"] / "out")
        args = ["stream", "--model", folder, "--port", str(link), "--out", str(out), "--quiet"]
        result = CliRunner().invoke(app, [*args, "--channel", exported["channel"]])
        assert result.exit_code == 0, result.output
        assert "skipped bytes" in result.output
        rows = [r.split(",") for r in out.read_text().splitlines()[1:]]
        hyp = score_file(night, folder)
        assert [float(r[0]) for r in rows] == [30.0 * i for i in range(hyp.n_epochs)]
        same = [int(r[2]) == s for r, s in zip(rows, hyp.stages, strict=True) if not r[-2]]
        assert len(same) > 0 and all(same), [r[-2] for r in rows]
        again = CliRunner().invoke(app, args)
        assert again.exit_code == 1 and "--overwrite" in again.output
    assert "garbage_bytes=" in emulator["printed"]
    none = CliRunner().invoke(app, ["stream", "--model", folder])
    assert none.exit_code == 2 and "name one source" in none.output


def test_bench_quick_reports_every_variant(exported: dict, tmp_path: Path) -> None:
    from edgesleep.bench.runtime import goals, run, write

    folder = exported["root"] / "out"
    result = run([folder], quick=True, realtime_s=1.0, thread_counts=(1,))
    write(result, tmp_path, "bench-quick")
    rows = result["rows"]
    assert {(r["precision"], r["threads"]) for r in rows} == {("fp32", 1), ("int8", 1)}
    for r in rows:
        ms = r["model_ms"]
        assert {"step_delay_0", "two_call", "naive"} <= set(ms)
        for path in ms.values():
            assert 0 < path["p50"] <= path["p99"] and path["spread"][0] <= path["spread"][1]
        for stager in ("step", "two-call", "naive"):
            assert r["stream"][stager]["cpu_s_per_hour"] > 0
        assert r["offline_s"] > 0 and 0 < r["step_bytes"]
    one = [r for r in rows if r["threads"] == 1]
    fp32 = next(r for r in one if r["precision"] == "fp32")
    assert fp32["parity_vs_fp32"]["argmax_agreement"] == 1.0
    for p in result["processes"].values():
        assert p["peak_rss_mb"] > p["floor_rss_mb"] > 0
        assert not p["scipy_imported"] and not p["torch_imported"]
    assert result["matmul_gflops_1_thread"] > 0
    assert goals(result) and "| goal" in (tmp_path / "bench-quick.md").read_text()
