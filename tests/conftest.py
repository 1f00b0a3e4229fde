"""Shared fixtures: real-format files from tests/data (sha256-pinned), tiny EDFs in tmp_path."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parent.parent
# `python -m pytest` in a checkout puts the checkout first on sys.path, where edgesleep/ is
# only the runtime (train/, export/ and bench/ install beside it as edgesleep.*): test the
# installed package, editable or not, instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT]

# Lab Streaming Layer stays on this machine: liblsl reads LSLAPICFG once, at its first use,
# so it is set here, before any test can import pylsl (tests/test_lsl.py checks it is in
# force); subprocesses inherit it. The session id hides other runs' streams.
from edgesleep.lsl import machine_config  # noqa: E402

os.environ["LSLAPICFG"] = str(machine_config(
    Path(tempfile.mkdtemp(prefix="edgesleep-lsl-")) / "lsl_api.cfg", f"edgesleep-test-{os.getpid()}"
))  # fmt: skip


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """tests/data, after checking every file against tests/data/SHA256SUMS."""
    for line in (DATA / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        assert hashlib.sha256((DATA / name).read_bytes()).hexdigest() == digest, name
    return DATA


def write_edf(
    path: Path,
    signals: dict[str, tuple[np.ndarray, float, str]],
    start: dt.datetime = dt.datetime(1989, 4, 24, 16, 13, 0),
    annotations: list[tuple[float, float, str]] = (),  # type: ignore[assignment]
) -> Path:
    """Write an EDF+ file: label -> (data in the given unit, sfreq, unit); no signals and
    only annotations for a hypnogram."""
    import pyedflib

    writer = pyedflib.EdfWriter(str(path), len(signals), file_type=pyedflib.FILETYPE_EDFPLUS)
    headers = []
    for label, (data, sfreq, unit) in signals.items():
        peak = float(f"{float(np.abs(data).max()) * 1.1 + 1e-9:.3g}")  # 8 chars in EDF
        headers.append(
            {
                "label": label,
                "dimension": unit,
                "sample_frequency": sfreq,
                "physical_max": peak,
                "physical_min": -peak,
                "digital_max": 32767,
                "digital_min": -32768,
                "transducer": "",
                "prefilter": "",
            }
        )
    writer.setSignalHeaders(headers)
    writer.setStartdatetime(start)
    if signals:  # an annotation-only EDF+ (a hypnogram) has none
        writer.writeSamples([data for data, _, _ in signals.values()])
    for onset, duration, text in annotations:
        writer.writeAnnotation(onset, duration, text)
    writer.close()
    return path


SHORT_NIGHT = np.array(
    [0] * 6 + [1] * 4 + [2] * 10 + [3] * 8 + [2] * 6 + [4] * 8 + [2] * 6 + [0] * 4, dtype=np.int8
)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SYNTHETIC dataset of 6 short nights (52 epochs each), 3 subjects, EDF+ on disk."""
    from edgesleep.io.dataset import Entry, write_dataset
    from edgesleep.synth.psg import generate_night, write_night_edf

    root = tmp_path_factory.mktemp("tiny")
    (root / "psg").mkdir()
    entries = []
    for index in range(6):
        stages = np.roll(SHORT_NIGHT, 3 * index)
        night = generate_night(11, index, stages=stages)
        write_night_edf(root / "psg" / f"{night.record}.edf", night)
        rel = f"psg/{night.record}.edf"
        entries.append(Entry(night.record, str(night.subject), night.night, rel, rel))
    write_dataset(root, entries, {"name": "tiny", "synthetic": True, "generator_version": "test"})
    return root


TINY_MODELS = {
    "seqsleepnet": {"n_filters": 8, "epoch_hidden": 8, "attention_size": 8, "seq_hidden": 8},
    "student": {"n_bands": 8, "channels": (8, 8, 8), "epoch_dim": 8},
}


@pytest.fixture(scope="session")
def tiny_models() -> dict[str, dict[str, object]]:
    """Per built-in model, config fields that make it tiny."""
    return TINY_MODELS


# The tiny exports: model name, input kind, channel, classes, training steps
TINY_EXPORTS = {
    "seqsleepnet": ("seqsleepnet", "stft", "EEG Fpz-Cz", 5, 60),
    "student": ("student", "stft", "EEG Fpz-Cz", 5, 60),
    "student-beats": ("student", "beats", "ECG", 3, 40),
}


@pytest.fixture(scope="session")
def tiny_export(
    tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], dict]:
    """``tiny_export(key)``: the model of ``TINY_EXPORTS[key]`` in its tiny configuration,
    trained briefly on the tiny dataset (subjects 0 and 1), exported in fp32 and int8
    (calibrated on it); each key is trained once per session, on first use."""
    from edgesleep.export.pipeline import ExportOptions, export_model
    from edgesleep.train import checkpoint as ckpt_io
    from edgesleep.train.specs import TrainSpec
    from edgesleep.train.training import TrainOptions
    from edgesleep.train.transfer import train_model

    cache: dict[str, dict] = {}

    def get(key: str) -> dict:
        if key not in cache:
            name, kind, channel, n_classes, steps = TINY_EXPORTS[key]
            root = tmp_path_factory.mktemp(f"export-{key}")
            opts = TrainOptions(max_steps=steps, eval_every=steps // 2, stride=2, lr=3e-3, seed=1)
            train_model(TrainSpec(tiny_dataset, channel, root / "m.pt", name, n_classes, kind,
                                  subjects=("0", "1"), train=opts,
                                  model_config=TINY_MODELS[name]))  # fmt: skip
            options = ExportOptions(quantize=True, calibration=tiny_dataset, latency_repeats=5)
            report = export_model(root / "m.pt", root / "out", options)
            ckpt = ckpt_io.load(root / "m.pt")
            cache[key] = {"name": name, "root": root, "report": report, "ckpt": ckpt,
                          "channel": channel}  # fmt: skip
        return cache[key]

    return get


@pytest.fixture(scope="session", params=sorted(TINY_MODELS))
def exported(request: pytest.FixtureRequest, tiny_export: Callable[[str], dict]) -> dict:
    """Each registered model, tiny, on "EEG Fpz-Cz" (5 classes), exported (``tiny_export``)."""
    from edgesleep.train.models import BUILTIN

    assert set(TINY_MODELS) == set(BUILTIN), "give every built-in model a tiny config"
    return tiny_export(request.param)


@contextmanager
def emulated_wearable(cwd: Path, link: Path, *args: str) -> Iterator[dict[str, str]]:
    """``edgesleep emulate --link LINK ARGS`` in a subprocess (a wearable on a pty), once its
    link exists. When the block ends, the emulator's output is in the yielded dict under
    "printed" and its exit status is checked."""
    command = [sys.executable, "-m", "edgesleep.cli", "emulate", "--link", str(link), *args]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd=cwd)  # fmt: skip
    ended: dict[str, str] = {}
    try:
        for _ in range(100):
            if link.exists():
                break
            time.sleep(0.1)
        yield ended
    finally:
        ended["printed"], _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, ended["printed"]


CODES = [-1, 0, 1, 2, 3, 4, 5]


@pytest.fixture
def walch_src(tmp_path: Path) -> Path:
    """Walch et al.'s layout, SYNTHETIC content (:func:`write_walch`)."""
    return write_walch(tmp_path / "walch")


def write_walch(root: Path) -> Path:
    """Walch et al.'s layout, SYNTHETIC content: 4 subjects, unsorted watch samples from
    two days before the PSG start, stage codes 0-5 and -1, SUBJECTS and SHA256SUMS."""
    (root / "heart_rate").mkdir(parents=True)
    (root / "labels").mkdir()
    rng = np.random.default_rng(0)
    ids = ["101", "102", "103", "104"]
    for i, sid in enumerate(ids):
        t = np.concatenate([[-172800.0, -90000.0], np.arange(-4000.0, 8 * 3600, 5.0)])
        t = t + rng.uniform(0, 1, t.size)
        bpm = 60 + 8 * np.sin(t / 900) + rng.normal(0, 1, t.size)
        order = rng.permutation(t.size) if i == 0 else np.arange(t.size)
        (root / "heart_rate" / f"{sid}_heartrate.txt").write_text(
            "".join(f"{a:.5f},{b:.0f}\n" for a, b in zip(t[order], bpm[order], strict=True))
        )
        codes = rng.choice(CODES, 960, p=[0.05, 0.15, 0.1, 0.4, 0.05, 0.05, 0.2])
        (root / "labels" / f"{sid}_labeled_sleep.txt").write_text(
            "".join(f"{30 * k} {c}\n" for k, c in enumerate(codes))
        )
    (root / "SUBJECTS").write_text("\n".join(ids) + "\n")
    files = sorted(p for p in root.rglob("*.txt"))
    (root / "SHA256SUMS").write_text(
        "".join(
            f"{hashlib.sha256(p.read_bytes()).hexdigest()} {p.relative_to(root)}\n" for p in files
        )
    )
    return root


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def http_server(handler: Callable[..., Any], host: str = "127.0.0.1") -> Iterator[str]:
    """An HTTP server with ``handler`` on ``host`` (a loopback address), on a thread;
    yields its base URL, ending in "/"."""
    server = ThreadingHTTPServer((host, 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://{host}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def http_mirror(directory: Path) -> Iterator[str]:
    """``directory`` served over HTTP on localhost (a PhysioNet stand-in, with Range
    support); yields the base URL, ending in "/"."""
    with http_server(partial(_QuietHandler, directory=str(directory))) as url:
        yield url


# --- CinC 2018 and HMC in their original layouts (SYNTHETIC signals, written with the
# readers' own libraries: wfdb for CinC's WFDB records, pyedflib for HMC's EDFs) ---

CINC_LABELS = ("F3-M2", "F4-M1", "C3-M2", "C4-M1", "O1-M2", "O2-M1", "E1-M2", "Chin1-Chin2",
               "ABD", "CHEST", "AIRFLOW", "SaO2", "ECG")  # fmt: skip
HMC_LABELS = ("EEG F4-M1", "EEG C4-M1", "EEG O2-M1", "EEG C3-M2", "EOG E1-M2", "EOG E2-M2",
              "EMG chin", "ECG")  # fmt: skip
# which synthetic channel each cohort channel carries (the rest: small noise)
FROM_SYNTH = {"F4-M1": "EEG Fpz-Cz", "C4-M1": "EEG C4-A1", "E1-M2": "EOG horizontal",
              "ECG": "ECG"}  # fmt: skip


def cohort_signals(
    labels: tuple[str, ...], stages: np.ndarray, sfreq: float, lead_s: float, tail_s: float,
    index: int,
) -> dict[str, np.ndarray]:  # fmt: skip
    """A SYNTHETIC night scored as ``stages`` that starts ``lead_s`` after the recording
    and leaves ``tail_s`` unscored after it, in a cohort's channel labels (µV)."""
    from edgesleep.synth.psg import generate_night

    night = generate_night(21, index, sfreq=sfreq, stages=stages)
    rng = np.random.default_rng(index)
    lead, tail = round(lead_s * sfreq), round(tail_s * sfreq)
    out = {}
    for label in labels:
        source = FROM_SYNTH.get(label.removeprefix("EEG ").removeprefix("EOG "))
        body = (
            night.signals[source] if source else rng.standard_normal(stages.size * 30 * int(sfreq))
        )
        out[label] = np.concatenate([rng.standard_normal(lead) * 10, body,
                                     rng.standard_normal(tail) * 10])  # fmt: skip
    if "SaO2" in out:
        out["SaO2"] = 95 + out["SaO2"] / 20
    return out


def stage_changes(stages: np.ndarray) -> list[tuple[int, str]]:
    """(epoch, CinC note text) at each change of ``stages``."""
    text = {0: "W", 1: "N1", 2: "N2", 3: "N3", 4: "R"}
    return [(k, text[int(s)]) for k, s in enumerate(stages) if k == 0 or s != stages[k - 1]]


def write_cinc_record(
    root: Path, name: str, stages: np.ndarray, lead_s: float = 2.5, tail_s: float = 20.0,
    labels: tuple[str, ...] = CINC_LABELS, index: int = 0,
    extra_notes: tuple[tuple[int, str], ...] = (), stage_symbol: str = '"',
) -> Path:  # fmt: skip
    """``root/training/<name>/<name>.hea`` + ``.mat`` (MATLAB, "16+24" as CinC's) +
    ``.arousal`` (an annotation with symbol ``stage_symbol``, a NOTE by default, at each
    stage change, 200 Hz samples, with arousal and respiratory event NOTE pairs among
    them); returns the header."""
    with warnings.catch_warnings():  # wfdb's own pandas deprecations
        warnings.simplefilter("ignore", DeprecationWarning)
        return _write_cinc_record(root, name, stages, lead_s, tail_s, labels, index, extra_notes,
                                  stage_symbol)  # fmt: skip


def _write_cinc_record(
    root: Path, name: str, stages: np.ndarray, lead_s: float, tail_s: float,
    labels: tuple[str, ...], index: int, extra_notes: tuple[tuple[int, str], ...],
    stage_symbol: str,
) -> Path:  # fmt: skip
    import shutil

    import wfdb
    from wfdb.io.convert.matlab import wfdb_to_mat

    sfreq = 200
    signals = cohort_signals(labels, stages, sfreq, lead_s, tail_s, index)
    folder = root / "training" / name
    folder.mkdir(parents=True, exist_ok=True)
    units = ["%" if label == "SaO2" else "uV" for label in labels]
    with tempfile.TemporaryDirectory() as tmp:
        here = os.getcwd()
        os.chdir(tmp)
        try:
            wfdb.wrsamp("rec", fs=sfreq, units=units, sig_name=list(labels),
                        p_signal=np.column_stack([signals[lb] for lb in labels]),
                        fmt=["16"] * len(labels))  # fmt: skip
            wfdb_to_mat("rec")
        finally:
            os.chdir(here)
        (folder / f"{name}.hea").write_text(
            (Path(tmp) / "recm.hea").read_text().replace("recm", name)
        )
        shutil.copy(Path(tmp) / "recm.mat", folder / f"{name}.mat")
    first = round(lead_s * sfreq)
    notes = [(first + k * 30 * sfreq, text) for k, text in stage_changes(stages)]
    notes += [(first + 95 * sfreq, "(arousal_rera"), (first + 104 * sfreq, "arousal_rera)"),
              (0, "(resp_hypopnea"), (first + 7 * sfreq, "resp_hypopnea)")]  # fmt: skip
    notes += list(extra_notes)
    notes.sort(key=lambda note: note[0])
    symbols = ['"' if t.startswith("(") or t.endswith(")") else stage_symbol for _, t in notes]
    wfdb.wrann(name, "arousal", np.array([s for s, _ in notes]), symbol=symbols,
               aux_note=[t for _, t in notes], write_dir=str(folder))  # fmt: skip
    return folder / f"{name}.hea"


def write_hmc_record(
    root: Path, name: str, stages: np.ndarray, lead_s: int = 13, tail_s: int = 17,
    labels: tuple[str, ...] = HMC_LABELS, index: int = 0, scoring: bool = True,
) -> Path:  # fmt: skip
    """``root/recordings/<name>.edf`` (256 Hz) and ``<name>_sleepscoring.edf`` (EDF+:
    "Sleep stage W/N1/N2/N3/R" per 30-s epoch from ``lead_s``, lights off and on)."""
    sfreq = 256
    signals = cohort_signals(labels, stages, sfreq, lead_s, tail_s, index)
    folder = root / "recordings"
    folder.mkdir(parents=True, exist_ok=True)
    path = write_edf(folder / f"{name}.edf", {lb: (x, sfreq, "uV") for lb, x in signals.items()})
    text = {0: "W", 1: "N1", 2: "N2", 3: "N3", 4: "R"}
    notes = [(lead_s + 30.0 * k, 30.0, f"Sleep stage {text[int(s)]}") for k, s in enumerate(stages)]
    notes += [(lead_s + 60.0, 0.0, "Lights off@@EEG F4-A1"),
              (lead_s + 30.0 * (stages.size - 2), 0.0, "Lights on@@EEG F4-A1")]  # fmt: skip
    if scoring:
        write_edf(folder / f"{name}_sleepscoring.edf", {}, annotations=notes)
    return path
