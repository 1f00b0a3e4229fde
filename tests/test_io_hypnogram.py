import csv
import datetime as dt
import logging
from pathlib import Path

import numpy as np
import pytest
from conftest import write_edf

from edgesleep.errors import InputError
from edgesleep.io import hypnogram, sleepedf, slpdb, stats, writers
from edgesleep.io.dataset import Entry, load_night, read_dataset, write_dataset


def test_real_sleep_edf_hypnogram(data_dir: Path) -> None:
    stages = hypnogram.read_hypnogram(data_dir / "sleep-edf" / "SC4001EC-Hypnogram.edf")
    assert stages.shape == (86400 // 30,)  # annotated to 24 h
    assert (stages[: 30630 // 30] == 0).all()  # first annotation: W for 30630 s
    assert stages[30630 // 30] == 1  # then "Sleep stage 1"
    assert set(np.unique(stages)) <= {-2, 0, 1, 2, 3, 4}
    assert (stages[79500 // 30 :] == -2).all()  # trailing "Sleep stage ?"


def test_overrun_is_trimmed_with_an_info_log(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stages = hypnogram.read_hypnogram(data_dir / "sleep-edf" / "SC4001EC-Hypnogram.edf")
    with caplog.at_level(logging.INFO, logger="edgesleep"):
        fitted = hypnogram.fit_to_signal(stages, 79500 // 30, "SC4001")
    assert fitted.shape == (2650,)
    assert "trimmed 230 epochs past the end of the signal (0 scored)" in caplog.text


def test_scored_epochs_beyond_the_signal_are_an_error(data_dir: Path) -> None:
    stages = hypnogram.read_hypnogram(data_dir / "sleep-edf" / "SC4001EC-Hypnogram.edf")
    scored_end = int(np.flatnonzero(stages != -2)[-1]) + 1
    with pytest.raises(InputError, match="7 scored epochs lie beyond the end"):
        hypnogram.fit_to_signal(stages, scored_end - 7)
    partial = hypnogram.fit_to_signal(stages, scored_end - 1)  # the signal's last, partial epoch
    assert partial.shape == (scored_end - 1,)


def test_in_bed_crop_from_the_shipped_table() -> None:
    rec = sleepedf.records()["SC4001E0"]
    off_s, on_s = rec.in_bed_s(dt.datetime(1989, 4, 24, 16, 13, 0))
    assert off_s == 8 * 3600 + 25 * 60  # 00:38:00 next day
    assert on_s == off_s + 6 * 3600 + 18 * 60 + 30  # 06:56:30
    keep = hypnogram.in_bed_epochs(2650, off_s, on_s)
    assert (keep.start, keep.stop) == (1010, 1767)


def test_shipped_table_and_pins() -> None:
    recs = sleepedf.records()
    assert len(recs) == 39 and {r.subject for r in recs.values()} == set(range(20))
    pins = sleepedf.pinned_sha256()
    for rec in recs.values():
        assert rec.hypnogram_path.is_file() and rec.hypnogram_file in pins
    assert "SC4132E0" not in recs  # subject 13 has one night only


def test_sleep_window_crop() -> None:
    stages = np.array([0] * 100 + [2] * 10 + [0] * 5 + [4] * 3 + [0] * 100, dtype=np.int8)
    keep = hypnogram.sleep_window_epochs(stages, margin_s=1800)
    assert (keep.start, keep.stop) == (40, 118 + 60)


def test_pairing(tmp_path: Path, data_dir: Path) -> None:
    (tmp_path / "SC4001E0-PSG.edf").write_bytes(b"")
    (tmp_path / "SC4001EC-Hypnogram.edf").write_bytes(
        (data_dir / "sleep-edf" / "SC4001EC-Hypnogram.edf").read_bytes()
    )
    assert sleepedf.pair_hypnogram(tmp_path / "SC4001E0-PSG.edf").name == "SC4001EC-Hypnogram.edf"
    (tmp_path / "SC4002E0-PSG.edf").write_bytes(b"")
    with pytest.raises(InputError, match="expected one SC4002E"):
        sleepedf.pair_hypnogram(tmp_path / "SC4002E0-PSG.edf")


def test_slpdb_record(data_dir: Path) -> None:
    rec = slpdb.read_record(data_dir / "slpdb", "slp01a")
    assert slpdb.record_names(data_dir / "slpdb") == ["slp01a"]
    assert rec.stages.shape == (240,) and rec.beat_times_s.shape == (7806,)
    assert np.all(np.diff(rec.beat_times_s) > 0)
    assert rec.stages[0] == 3  # R&K "4" -> N3
    assert rec.events[0] == "LA LA"


@pytest.mark.parametrize("n_classes", [3, 4, 5])
def test_edf_hypnogram_round_trip(tmp_path: Path, n_classes: int) -> None:
    rng = np.random.default_rng(n_classes)
    stages = np.repeat(rng.integers(0, n_classes, 40), 3).astype(np.int8)
    stages[5] = -2
    path = tmp_path / "hyp.edf"
    writers.write_hypnogram_edf(path, stages, n_classes, start=dt.datetime(2020, 1, 1, 23))
    if n_classes == 5:
        np.testing.assert_array_equal(hypnogram.read_hypnogram(path), stages)
    else:
        from edgesleep.io.edf import read_annotations

        assert read_annotations(path)[0].description.startswith("Sleep stage ")


def test_csv_is_bids_events_with_probabilities(tmp_path: Path) -> None:
    stages = np.array([0, 1, 2, -1], dtype=np.int8)
    probs = np.full((4, 3), 1 / 3)
    with writers.CsvSink(tmp_path / "h.csv", 3) as sink:
        for i, stage in enumerate(stages):
            sink.write(i, int(stage), probs[i], max(int(stage), 0), onset0_s=60)
    rows = list(csv.reader((tmp_path / "h.csv").read_text().splitlines()))
    assert rows[0] == ["onset", "duration", "stage", "label", "p_W", "p_NREM", "p_REM",
                       "model_stage", "flags", "revision"]  # fmt: skip
    assert rows[1][:4] == ["60", "30", "0", "W"]
    assert rows[4][:4] == ["150", "30", "-1", "ART"]


def test_png(tmp_path: Path) -> None:
    stages = np.array([0, 1, 2, 3, 2, 4, 4, 0] * 10, dtype=np.int8)
    probs = np.eye(5)[stages]
    writers.plot_hypnogram(tmp_path / "h.png", stages, 5, probs, truth=stages, title="t")
    assert (tmp_path / "h.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sleep_statistics_by_hand() -> None:
    # 4 W, then N1 N2 N2 W N3 REM REM, then 2 W, one unscored: 16 epochs = 8 min
    stages = np.array([0, 0, 0, 0, 1, 2, 2, 0, 3, 4, 4, 0, 0, -2, 2, 0])
    s = stats.sleep_statistics(stages, 5)
    assert s["TIB"] == 8.0
    assert s["TST"] == 3.5  # 7 sleep epochs
    assert s["SOL"] == 2.0
    assert s["SPT"] == 5.5  # epochs 4..14
    assert s["WASO"] == 1.5  # epochs 7, 11, 12
    assert s["Lat_REM"] == 2.5  # epoch 9 - epoch 4
    assert s["SE"] == pytest.approx(100 * 7 / 16)
    assert s["N2"] == 1.5 and s["%N2"] == pytest.approx(100 * 3 / 7)
    s3 = stats.sleep_statistics(np.array([0, 1, 1, 2]), 3)
    assert s3["NREM"] == 1.0 and s3["Lat_REM"] == 1.0


def test_dataset_layout_round_trip(tmp_path: Path, data_dir: Path) -> None:
    n_epochs = 2700  # 22.5 h of signal at 1 Hz stand-in, resampled to 100 Hz
    (tmp_path / "psg").mkdir()
    x = np.sin(np.arange(n_epochs * 30) / 3.0) * 50
    write_edf(tmp_path / "psg" / "SC4001E0-PSG.edf", {"EOG horizontal": (x, 1, "uV")})
    entry = Entry("SC4001E0", "0", 1, "psg/SC4001E0-PSG.edf", "hyp.edf", 30300.0, 53010.0)
    real = data_dir / "sleep-edf" / "SC4001EC-Hypnogram.edf"
    (tmp_path / "hyp.edf").write_bytes(real.read_bytes())
    write_dataset(tmp_path, [entry], {"name": "test", "synthetic": True})
    ds = read_dataset(tmp_path)
    assert ds.synthetic and ds.subjects == ["0"] and ds.entries[0] == entry
    night = load_night(ds, ds.entries[0], "EOG horizontal", crop="in-bed")
    assert night.first_epoch == 1010 and night.n_epochs == 757
    assert night.signal.shape == (757 * 3000,)


def test_not_a_dataset(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not an edgesleep dataset"):
        read_dataset(tmp_path)
