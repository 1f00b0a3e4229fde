"""Lab Streaming Layer in and out, on this machine only (conftest.py sets LSLAPICFG)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from edgesleep.errors import InputError, UsageError
from edgesleep.io.edf import read_signal
from edgesleep.lsl import FLAGS, MACHINE_CONFIG, flag_bits, machine_only
from edgesleep.ort import ExportedModel
from edgesleep.readout import default_delay
from edgesleep.sources import Placer, StreamInfo, open_source, parse_spec, pick_channel
from edgesleep.stager import EpochResult, Stager, score_signal
from edgesleep.stream import run_stream

READER = """
import json, sys, pylsl
found = pylsl.resolve_byprop("name", sys.argv[1], 1, 60)
inlet = pylsl.StreamInlet(found[0])
inlet.open_stream(30)
print("ready", flush=True)
rows = []
while True:
    x, t = inlet.pull_sample(timeout=float(sys.argv[2]))
    if x is None:
        break
    rows.append([t, *x])
print(json.dumps(rows), flush=True)
"""


@pytest.fixture(scope="module")
def pylsl() -> Any:
    """pylsl, once the machine-only configuration is shown to be in force: the file that
    LSLAPICFG names keeps discovery on 127.0.0.1, and liblsl loads that file (a copy that
    differs only in its log level says so) before any outlet or inlet exists."""
    assert machine_only(), os.environ.get("LSLAPICFG")
    cfg = Path(os.environ["LSLAPICFG"])
    loud = cfg.with_name("loud.cfg")
    loud.write_text(cfg.read_text().replace("level = -2", "level = 0"))
    probe = subprocess.run([sys.executable, "-c", "import pylsl; pylsl.protocol_version()"],
                           env={**os.environ, "LSLAPICFG": str(loud)}, capture_output=True,
                           text=True, timeout=60)  # fmt: skip
    assert f"Configuration loaded from {loud}" in probe.stderr, probe.stderr
    import pylsl as module

    return module


def test_machine_config_is_machine_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("ResolveScope = machine", "IPv6 = disable", "KnownPeers = {127.0.0.1}",
                "MachineAddresses = {127.0.0.1}"):  # fmt: skip
        assert key in MACHINE_CONFIG
    bad = tmp_path / "site.cfg"
    bad.write_text(MACHINE_CONFIG.replace("= machine", "= site"))
    monkeypatch.setenv("LSLAPICFG", str(bad))
    assert not machine_only()
    monkeypatch.setenv("LSLAPICFG", str(tmp_path / "missing.cfg"))
    assert not machine_only()


def test_placer_finds_gaps_through_jitter_and_drift() -> None:
    """A clock 200 ppm slow, reads 0-80 ms late, one second lost: one gap, every read placed
    where it was sent (after the gap, within the jitter: a gap is sized from a timestamp)."""
    rng = np.random.default_rng(0)
    sfreq, chunk, jitter_s = 250.0, 25, 0.08
    placer = Placer(sfreq, gap_s=0.5)
    errors = []
    n = 0
    for k in range(4000):  # 400 s of 0.1-s reads
        n += 250 if k == 2000 else 0
        stamp = 100.0 + n / sfreq * (1 + 2e-4) + rng.uniform(0, jitter_s)
        errors.append(placer.place(stamp, chunk) - n)
        n += chunk
    assert placer.gaps == 1
    assert errors[:2000] == [0] * 2000
    assert len(set(errors[2000:])) == 1 and abs(errors[2000]) <= jitter_s * sfreq


def test_pick_channel_derivations_and_units() -> None:
    info = StreamInfo(100.0, ("E1", "E2", "EEG Fpz-Cz", "AccX"), units=("uV", "uV", "uV", "g"))
    assert pick_channel(info, "EOG horizontal", "E1-E2") == ((0, 1), "E1-E2")
    assert pick_channel(info, "EEG Fpz-Cz", "Fpz-Cz") == (2, "EEG Fpz-Cz")  # a name first
    with pytest.raises(InputError, match="'AccX' is in 'g'"):
        pick_channel(info, "EEG Fpz-Cz", "AccX")
    with pytest.raises(InputError, match=r"not found; channels present"):
        pick_channel(info, "EEG Fpz-Cz", "E1-E9")
    with pytest.raises(InputError, match="derivation of two"):
        pick_channel(StreamInfo(100.0, ("a", "b")), "EEG Fpz-Cz", None)


def test_lsl_and_brainflow_specs() -> None:
    spec = parse_spec("lsl:type=EEG&idle=2")
    assert spec.params["type"] == "EEG" and spec.params["idle"] == 2.0
    with pytest.raises(UsageError, match="name the stream"):
        open_source("lsl:idle=2")
    with pytest.raises(UsageError, match="kind='x'"):
        open_source("lsl:type=EEG&kind=x")
    with pytest.raises(UsageError, match="needs board="):
        parse_spec("brainflow:serial_port=/dev/ttyUSB0")


def test_flag_bits() -> None:
    assert flag_bits(()) == 0
    assert flag_bits(("gap", "flat")) == 1 | 1 << FLAGS.index("flat")
    assert flag_bits(("new",)) == 1 << 31


def test_missing_pylsl_is_one_line_before_any_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgesleep.cli import app

    monkeypatch.setitem(sys.modules, "pylsl", None)  # import pylsl -> ImportError
    out = tmp_path / "night.csv"
    for args in (["lsl:type=EEG"], ["synthetic:?epochs=25", "--lsl-out", "x"]):
        result = CliRunner().invoke(app, ["stream", *args, "--out", str(out)])
        assert result.exit_code == 1, result.output
        assert "pip install 'edgesleep[lsl]'" in result.output
        assert not out.exists()


def _play(pylsl: Any, name: str, data: np.ndarray, sfreq: float, labels: list[str],
          units: list[str], speed: float, lost: tuple[int, int] | None = None
          ) -> threading.Thread:  # fmt: skip
    """An outlet playing ``data`` (n_times, n_channels) at ``speed`` x real time, stamped at
    its own rate (``lost``: samples start:stop never sent), kept open until its reader has
    gone."""
    info = pylsl.StreamInfo(name, "EEG", data.shape[1], sfreq, "double64", f"player-{name}")
    channels = info.desc().append_child("channels")
    for label, unit in zip(labels, units, strict=True):
        ch = channels.append_child("channel")
        ch.append_child_value("label", label)
        ch.append_child_value("unit", unit)
    outlet = pylsl.StreamOutlet(info)

    def run() -> None:
        assert outlet.wait_for_consumers(60)
        t0, step = pylsl.local_clock(), int(sfreq * 0.05 * speed)
        sent = np.ones(data.shape[0], bool)
        if lost is not None:
            sent[lost[0] : lost[1]] = False
        for start in range(0, data.shape[0], step):
            keep = start + np.flatnonzero(sent[start : start + step])
            if keep.size:
                outlet.push_chunk(data[keep].tolist(), (t0 + keep / sfreq).tolist())
            time.sleep(0.05)
        deadline = time.monotonic() + 60
        while outlet.have_consumers() and time.monotonic() < deadline:
            time.sleep(0.1)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_lsl_signal_equals_offline_scoring(pylsl: Any, exported: dict, tiny_dataset: Path) -> None:
    """An EDF night played by a pylsl outlet as a derivation of two channels in different
    units, staged from `lsl:`: every epoch once, in order, equal to offline scoring of the
    same samples."""
    night = sorted((tiny_dataset / "psg").glob("*.edf"))[0]
    signal = read_signal(night, exported["channel"], sfreq=None)
    x = signal.data[: 24 * 30 * int(signal.sfreq)]
    common = 40 * np.sin(np.arange(x.size) / 37.0)
    data = np.stack([x + common, common / 1000.0], axis=1)  # Fpz in µV, Cz in mV
    name = f"edf-{exported['name']}"
    player = _play(pylsl, name, data, signal.sfreq, ["Fpz", "Cz"], ["microvolts", "mV"], 100)
    source = open_source(f"lsl:name={name}&idle=2")
    info = source.info()
    assert info.sfreq == signal.sfreq and info.channels == ("Fpz", "Cz")
    column, label = pick_channel(info, exported["channel"], "Fpz-Cz")
    model = ExportedModel(exported["root"] / "out", "fp32")
    results: list[EpochResult] = []
    report = run_stream(source, Stager(model, info.sfreq, channel=label, column=column),
                        results.append)  # fmt: skip
    player.join(30)
    offline = score_signal(model, x, signal.sfreq)
    assert report.gaps == 0 and report.source["gaps"] == 0
    assert [r.index for r in results] == list(range(24))
    assert [r.stage for r in results] == [r.stage for r in offline]
    np.testing.assert_allclose(np.stack([r.probabilities for r in results]),
                               np.stack([r.probabilities for r in offline]), atol=1e-5)  # fmt: skip


def test_lsl_gap_is_found_from_the_timestamps(
    pylsl: Any, tiny_export: Callable[[str], dict]
) -> None:
    """7.3 s never sent, in the middle of a read: one gap of exactly those samples, placed
    where they were, and the epoch that held them flagged."""
    exported = tiny_export("student")
    x = 30 * np.sin(np.arange(6 * 3000) / 11.0)[:, None]
    lost = (7000, 7730)
    player = _play(pylsl, "gappy", x, 100.0, ["EEG Fpz-Cz"], ["uV"], 100, lost)
    source = open_source("lsl:name=gappy&idle=2")
    model = ExportedModel(exported["root"] / "out", "fp32")
    results: list[EpochResult] = []
    report = run_stream(source, Stager(model, 100.0), results.append)
    player.join(30)
    assert (report.gaps, report.gap_samples) == (1, 730)
    assert [r.index for r in results] == list(range(6))
    assert "gap" in results[2].flags and not {"gap"} & set(results[4].flags)


def test_lsl_rr_stream_equals_stage_on_the_beats(pylsl: Any, tmp_path: Path) -> None:
    """RR intervals on an irregular LSL stream (as a Polar H10 bridge sends them), staged by
    the shipped heart model, equal `edgesleep stage` on the same beats."""
    from edgesleep.cli import app

    rng = np.random.default_rng(4)
    rr = 0.95 + 0.08 * np.sin(np.arange(2400) / 40) + rng.normal(0, 0.03, 2400)
    beats = np.round(3.2 + np.cumsum(rr), 6)
    csv = tmp_path / "beats.csv"
    csv.write_text("time_s\n" + "".join(f"{t:.6f}\n" for t in beats))
    staged = tmp_path / "staged"
    assert CliRunner().invoke(app, ["stage", str(csv), "--out", str(staged)]).exit_code == 0

    info = pylsl.StreamInfo("polar-rr", "RR", 1, pylsl.IRREGULAR_RATE, "double64", "polar-1")
    info.desc().append_child("channels").append_child("channel").append_child_value("unit", "ms")
    outlet = pylsl.StreamOutlet(info)
    created = outlet.get_info().created_at()

    def play() -> None:
        assert outlet.wait_for_consumers(60)
        for k in range(1, beats.size, 100):  # fast, stamped at each beat
            part = slice(k, min(k + 100, beats.size))
            intervals = (beats[part] - beats[k - 1 : part.stop - 1]) * 1000
            outlet.push_chunk([[v] for v in intervals], (created + beats[part]).tolist())
            time.sleep(0.02)
        while outlet.have_consumers():
            time.sleep(0.1)

    player = threading.Thread(target=play, daemon=True)
    player.start()
    out = tmp_path / "stream.csv"
    result = CliRunner().invoke(app, ["stream", "lsl:name=polar-rr&idle=2", "--series", "beats",
                                      "--out", str(out), "--quiet"])  # fmt: skip
    player.join(30)
    assert result.exit_code == 0, result.output
    want = (staged / "beats.csv").read_text().splitlines()
    got = out.read_text().splitlines()
    assert len(got) == len(want) > 60
    assert [r.split(",")[:4] for r in got] == [r.split(",")[:4] for r in want]
    np.testing.assert_allclose(np.loadtxt(out, delimiter=",", skiprows=1, usecols=(4, 5, 6, 7)),
                               np.loadtxt(staged / "beats.csv", delimiter=",", skiprows=1,
                                          usecols=(4, 5, 6, 7)), atol=2e-5)  # fmt: skip


def test_lsl_out_read_by_a_plain_inlet_in_another_process(
    pylsl: Any, exported: dict, tmp_path: Path
) -> None:
    """`stream --lsl-out NAME`: a separate process with a plain pylsl inlet receives every
    epoch once, in order, as written to the night file, stamped 30 s apart."""
    from edgesleep.cli import app

    name = f"stages-{exported['name']}"
    reader = subprocess.Popen([sys.executable, "-c", READER, name, "8"], text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    out = tmp_path / "night.csv"
    result = CliRunner().invoke(app, ["stream", "synthetic:?epochs=40&speed=200", "--model",
                                      str(exported["root"] / "out"), "--lsl-out", name,
                                      "--out", str(out), "--quiet"])  # fmt: skip
    assert result.exit_code == 0, result.output
    printed, errors = reader.communicate(timeout=60)
    rows = json.loads(printed.splitlines()[-1])
    night = np.loadtxt(out, delimiter=",", skiprows=1, usecols=(0, 2, 4, 5, 6, 7, 8))
    assert [int(r[1]) for r in rows] == list(range(len(night))) and len(rows) == 40
    assert [int(r[4]) for r in rows] == night[:, 1].astype(int).tolist()  # stage
    assert [r[2] for r in rows] == night[:, 0].tolist()  # onset_s
    np.testing.assert_allclose([r[7:] for r in rows], night[:, 2:], atol=1e-5)
    np.testing.assert_allclose(np.diff([r[0] for r in rows]), 30.0, atol=1e-6)
    assert {r[3] for r in rows} == {default_delay(ExportedModel(exported["root"] / "out"))}
