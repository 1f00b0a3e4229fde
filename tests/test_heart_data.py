"""Real heart datasets into the dataset layout (walch, slpdb), training on them from the
CLI, CSV hypnograms and `compare`."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import http_mirror
from typer.testing import CliRunner

from edgesleep.api import compare
from edgesleep.cli import app
from edgesleep.dsp.beats import beat_series_images
from edgesleep.errors import InputError
from edgesleep.io.dataset import read_dataset
from edgesleep.io.heart import read_series
from edgesleep.io.hypnogram import read_hypnogram, read_labels_csv
from edgesleep.io.imports import import_slpdb, import_walch
from edgesleep.io.slpdb import read_record
from edgesleep.train.data import load_features


def test_walch_import_then_train_from_the_cli(walch_src: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    result = CliRunner().invoke(app, ["data", "import", "walch", str(walch_src), "--out", str(out)])
    assert result.exit_code == 0, result.output
    ds = read_dataset(out)
    assert len(ds.entries) == 4 and ds.info["synthetic"] is False
    series = read_series(out / ds.entries[0].psg)
    assert series.source == "heart-rate" and (np.diff(series.time_s) >= 0).all()
    assert series.time_s[0] >= -3600  # an hour of context kept, the days before dropped
    raw = np.loadtxt(walch_src / "labels" / "101_labeled_sleep.txt")
    stages = read_hypnogram(out / ds.entries[0].hypnogram)
    expected = {-1: -2, 0: 0, 1: 1, 2: 2, 3: 3, 4: 3, 5: 4}  # N4 -> N3, 5 -> REM
    assert stages.tolist() == [expected[int(c)] for c in raw[:, 1]]
    nights = load_features(ds, "heart-rate", 4, kind="beats")
    assert nights[0].images.shape == (960, 27, 20)
    with pytest.raises(InputError, match="use --channel heart-rate"):
        load_features(ds, "ECG", 4, kind="beats")
    with pytest.raises(InputError, match="'stft' input cannot be made from it"):
        load_features(ds, "heart-rate", 4, kind="stft")
    args = ["train", "--data", str(out), "--channel", "heart-rate", "--input", "beats",
            "--model", "student", "--classes", "4", "--max-steps", "3", "--eval-every", "3",
            "--out", str(tmp_path / "m.pt")]  # fmt: skip
    trained = CliRunner().invoke(app, args)
    assert trained.exit_code == 0, trained.output
    assert "(real data)" in trained.output


def test_a_changed_file_is_refused(walch_src: Path, tmp_path: Path) -> None:
    path = walch_src / "labels" / "102_labeled_sleep.txt"
    path.write_text(path.read_text().replace(" 2\n", " 3\n", 1))
    with pytest.raises(InputError, match="checksum differs"):
        import_walch(walch_src, tmp_path / "ds")
    with pytest.raises(InputError, match="not Walch et al.'s layout"):
        import_walch(tmp_path, tmp_path / "ds")


def test_slpdb_import_gives_the_beat_images(data_dir: Path, tmp_path: Path) -> None:
    ds = import_slpdb(data_dir / "slpdb", tmp_path / "ds")
    (entry,) = ds.entries
    assert (entry.record, entry.subject) == ("slp01a", "slp01")
    (night,) = load_features(ds, "beats", 5, kind="beats", crop="none")
    rec = read_record(data_dir / "slpdb", "slp01a")
    np.testing.assert_array_equal(night.images, beat_series_images(rec.beat_times_s, None, 240))
    np.testing.assert_array_equal(night.labels, np.where(rec.stages == -1, -2, rec.stages))


def test_csv_hypnograms_and_compare(tmp_path: Path) -> None:
    expert = tmp_path / "expert.csv"
    expert.write_text("onset_s,duration_s,stage\n0,60,W\n60,30,2\n90,30,4\n120,30,R\n150,30,?\n")
    values, n = read_labels_csv(expert)
    assert n == 5 and values.tolist() == [0, 0, 2, 3, 4, -2]  # R&K 4 -> N3, ? unscored
    staged = tmp_path / "staged.csv"
    rows = ["0,30,0,W,1", "30,30,1,Light,1", "60,30,1,Light,1", "90,30,1,Light,1",
            "120,30,3,REM,1", "150,30,0,W,1"]  # fmt: skip
    staged.write_text("onset,duration,stage,label,p_W\n" + "\n".join(rows) + "\n")
    values, n = read_labels_csv(staged)
    assert n == 4 and values.tolist() == [0, 1, 1, 1, 3, 0]
    r = compare(staged, expert)
    assert r["classes"] == ["W", "Light", "Deep", "REM"] and r["n_epochs"] == 5
    assert r["confusion"] == [[1, 1, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]]
    assert r["per_class"]["sensitivity"][0] == 0.5
    result = CliRunner().invoke(app, ["compare", str(staged), str(expert)])
    assert result.exit_code == 0 and "accuracy 0.600" in result.output
    with pytest.raises(InputError, match="needs the five stages"):
        read_hypnogram(staged)
    (tmp_path / "bad.csv").write_text("start,stage\n0,W\n")
    with pytest.raises(InputError, match="onset"):
        read_labels_csv(tmp_path / "bad.csv")


def test_fetch_walch_from_a_local_mirror(walch_src: Path, tmp_path: Path) -> None:
    """`data fetch walch` against a local HTTP server laid out as PhysioNet's sleep-accel."""
    sums = (walch_src / "SHA256SUMS").read_text()
    (walch_src / "SHA256SUMS.txt").write_text(sums)
    with http_mirror(walch_src) as url:
        out = tmp_path / "walch"
        args = ["data", "fetch", "walch", "--out", str(out), "--base-url", url]
        result = CliRunner().invoke(app, [*args, "--subjects", "101,103"])
        assert result.exit_code == 0, result.output
        assert "2 nights of 2 subjects, verified" in result.output
        assert sorted(e.record for e in read_dataset(out).entries) == ["101", "103"]
        again = CliRunner().invoke(app, [*args, "--subjects", "101,103"])  # present: kept
        assert again.exit_code == 0, again.output
        bad = CliRunner().invoke(app, [*args, "--subjects", "999"])
        assert bad.exit_code == 1 and "there are ['101', '102', '103', '104']" in bad.output


def write_wfdb(csv_export: Path, root: Path) -> Path:
    """slpdb's WFDB files (``wfdb`` itself writes them) from the CSV export's real beats
    and stages, with a rhythm and a noise annotation between the beats (not beats: they
    must be dropped)."""
    wfdb = pytest.importorskip("wfdb")
    warnings.simplefilter("ignore", DeprecationWarning)  # wfdb's use of pandas
    root.mkdir(parents=True, exist_ok=True)
    names = []
    for rec in (read_record(csv_export, r) for r in ("slp01a",)):
        beats = np.round(rec.beat_times_s * 250).astype(int)
        extra = np.array([beats[5] + 10, beats[9] + 10])
        sample = np.concatenate([beats, extra])
        symbol = np.concatenate([rec.beat_labels, ["+", "~"]])
        order = np.argsort(sample, kind="stable")
        wfdb.wrsamp(rec.record, fs=250, units=["mV"], sig_name=["ECG"], fmt=["212"],
                    p_signal=np.zeros((2500, 1)), write_dir=str(root))  # fmt: skip
        aux = [""] * len(beats) + ["(N", ""]
        wfdb.wrann(rec.record, "ecg", sample[order], symbol=symbol[order].tolist(),
                   aux_note=[aux[i] for i in order], write_dir=str(root))  # fmt: skip
        scored = np.arange(np.flatnonzero(rec.stages != -2)[0], rec.stages.size)
        rk = {0: "W", 1: "1", 2: "2", 3: "3", 4: "R", -2: "MT"}  # R&K; MT -> unscored
        notes = [f"{rk[int(rec.stages[i])]} {rec.events[i]}".strip() for i in scored]
        notes[1] = notes[1].replace("3", "4", 1) if notes[1].startswith("3") else notes[1]
        wfdb.wrann(rec.record, "st", scored * 7500, symbol=['"'] * len(scored),
                   aux_note=notes, write_dir=str(root))  # fmt: skip
        names.append(rec.record)
    (root / "RECORDS").write_text("\n".join(names) + "\n")
    return root


def test_slpdb_wfdb_records_import_as_the_csv_export(data_dir: Path, tmp_path: Path) -> None:
    """The same night read from WFDB files and from the CSV export: same beats (the rhythm
    and noise annotations dropped), stages and events; both import to the same dataset."""
    root = write_wfdb(data_dir / "slpdb", tmp_path / "wfdb")
    csv_rec, wfdb_rec = read_record(data_dir / "slpdb", "slp01a"), read_record(root, "slp01a")
    np.testing.assert_allclose(wfdb_rec.beat_times_s, csv_rec.beat_times_s, atol=1e-9)
    assert wfdb_rec.beat_labels.tolist() == csv_rec.beat_labels.tolist()
    np.testing.assert_array_equal(wfdb_rec.stages, csv_rec.stages)
    assert wfdb_rec.events == csv_rec.events
    a, b = import_slpdb(root, tmp_path / "a"), import_slpdb(data_dir / "slpdb", tmp_path / "b")
    for rel in ("records/slp01a.csv", "hypnograms/slp01a.csv"):
        assert (a.root / rel).read_bytes() == (b.root / rel).read_bytes()
    st = (root / "slp01a.st").read_bytes()
    (root / "slp01a.st").write_bytes(st[:16])  # cut inside the second note's SKIP interval
    with pytest.raises(InputError, match="truncated WFDB annotation file"):
        import_slpdb(root, tmp_path / "d")
    (root / "slp01a.st").unlink()
    with pytest.raises(InputError, match=r"slp01a\.st: no such file"):
        import_slpdb(root, tmp_path / "c")


def test_fetch_slpdb_from_a_local_mirror(data_dir: Path, tmp_path: Path) -> None:
    """`data fetch slpdb` against a local HTTP server laid out as PhysioNet's slpdb 1.0.0:
    annotations and headers by default, the signals with --signals, a changed file
    refused."""
    mirror = write_wfdb(data_dir / "slpdb", tmp_path / "mirror")
    files = sorted(p for p in mirror.iterdir() if p.suffix in (".hea", ".dat", ".ecg", ".st"))
    (mirror / "SHA256SUMS.txt").write_text("".join(
        f"{hashlib.sha256(p.read_bytes()).hexdigest()} {p.name}\n" for p in files))  # fmt: skip
    with http_mirror(mirror) as url:
        out = tmp_path / "slpdb"
        args = ["data", "fetch", "slpdb", "--out", str(out), "--base-url", url]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        assert "1 nights of 1 subjects, verified" in result.output
        assert not (out / "raw" / "slp01a.dat").exists()
        expected = import_slpdb(data_dir / "slpdb", tmp_path / "csv")
        assert (out / "records/slp01a.csv").read_bytes() == (
            expected.root / "records/slp01a.csv"
        ).read_bytes()
        signals = CliRunner().invoke(app, [*args, "--signals"])
        assert signals.exit_code == 0 and (out / "raw" / "slp01a.dat").is_file()
        bad = CliRunner().invoke(app, [*args, "--subjects", "slp99"])
        assert bad.exit_code == 1 and "there are ['slp01a']" in bad.output
        (mirror / "slp01a.ecg").write_bytes((mirror / "slp01a.ecg").read_bytes()[:-2])
        (out / "raw" / "slp01a.ecg").unlink()
        changed = CliRunner().invoke(app, args)
        assert changed.exit_code == 1 and "checksum mismatch" in changed.output


def test_merged_heart_cohorts_train_on_channel_heart(
    walch_src: Path, data_dir: Path, tmp_path: Path
) -> None:
    """Two cohorts of different heart series (watch heart rate, ECG beats) as one dataset:
    prefixed ids, files not copied, `--channel heart` reads both; a wrong channel names
    the fix."""
    runner = CliRunner()
    assert runner.invoke(app, ["data", "import", "walch", str(walch_src), "--out",
                               str(tmp_path / "w")]).exit_code == 0  # fmt: skip
    import_slpdb(data_dir / "slpdb", tmp_path / "s")
    merged = tmp_path / "heart"
    result = runner.invoke(app, ["data", "merge", f"walch={tmp_path / 'w'}",
                                 f"slpdb={tmp_path / 's'}", "--out", str(merged)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "5 nights of 5 subjects from walch, slpdb" in result.output
    ds = read_dataset(merged)
    assert [e.record for e in ds.entries][-1] == "slpdb-slp01a"
    assert ds.subjects[-1] == "walch:104" and not (merged / "records").exists()
    nights = load_features(ds, "heart", 4, kind="beats", crop="none")
    assert {n.images.shape[1:] for n in nights} == {(27, 20)} and len(nights) == 5
    with pytest.raises(InputError, match="or --channel heart"):
        load_features(ds, "heart-rate", 4, kind="beats", crop="none")
    bad = runner.invoke(app, ["data", "merge", str(tmp_path / "w"), "--out", str(merged)])
    assert bad.exit_code == 2 and "NAME=DIR" in bad.output
