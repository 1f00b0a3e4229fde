"""MASS and NSRR as distributed, read from files written here in their formats (pyedflib
EDF/EDF+ with stage annotations; NSRR XML): names, 20-s expansion, aliases, unscored
epochs, annotations past the signal, and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import write_edf
from typer.testing import CliRunner

from edgesleep.cli import app
from edgesleep.errors import InputError
from edgesleep.io.dataset import load_night, read_dataset
from edgesleep.io.edf import read_signal
from edgesleep.io.mass import import_mass
from edgesleep.io.nsrr import import_nsrr
from edgesleep.stages import N1, N2, N3, REM, UNSCORED, W
from edgesleep.train.data import load_features

SFREQ = 256


def cohort_edf(
    path: Path, labels: list[str], seconds: float, annotations=(), seed: int = 0
) -> None:  # type: ignore[no-untyped-def]
    """An EDF+ at 256 Hz, µV, noise on every channel (no channels: annotations only)."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = int(seconds * SFREQ)
    write_edf(path, {label: (rng.normal(0, 40, n), SFREQ, "uV") for label in labels},
              annotations=list(annotations))  # fmt: skip


RK = ["W", "1", "2", "3", "4", "R", "?"]


@pytest.fixture
def mass_src(tmp_path: Path) -> Path:
    """SS2 (20-s R&K epochs; the Base file in another folder) and SS3 (30-s AASM epochs in
    an Annotations file, referenced to LER), SYNTHETIC signals in MASS's names and
    layout."""
    root = tmp_path / "MASS"
    # SS2: 20-s epochs from 2 s (the first window would start at -3 s) to past the end
    onsets = 2.0 + 20.0 * np.arange(40)  # the signal lasts 780 s: the last epochs overrun
    base = [(float(t), 20.0, f"Sleep stage {RK[i % 7]}") for i, t in enumerate(onsets)]
    labels = ["EEG C4-CLE", "EEG C3-CLE", "ECG I", "EOG Left Horiz", "EOG Right Horiz"]
    cohort_edf(root / "SS2" / "bio" / "01-02-0001 PSG.edf", labels, 780.0)
    cohort_edf(root / "SS2" / "annotations" / "01-02-0001 Base.edf", [], 0, base)
    # SS3: 30-s epochs from 12.3 s, consecutive, in an Annotations file with other events
    base3 = [(12.3 + 30.0 * i, 30.0, f"Sleep stage {s}") for i, s in enumerate("W12R3?W")]
    base3.insert(2, (50.0, 3.0, "<Event channel=EEG C3-LER groupName=MicroArousal />"))
    cohort_edf(root / "SS3" / "01-03-0001 PSG.edf", ["EEG C3-LER", "EEG C4-LER", "ECG I"],
              240.0, seed=1)  # fmt: skip
    cohort_edf(root / "SS3" / "01-03-0001 Annotations.edf", [], 0, base3)
    return root


def test_mass_import_expands_20s_epochs_and_points_at_the_files(
    mass_src: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ds"
    result = CliRunner().invoke(app, ["data", "import", "mass", str(mass_src), "--out", str(out)])
    assert result.exit_code == 0, result.output
    ds = read_dataset(out)
    assert [(e.record, e.subject, e.epochs) for e in ds.entries] == [
        ("01-02-0001", "01-02-0001", "annotated"),
        ("01-03-0001", "01-03-0001", "annotated"),
    ]
    assert (out / ds.entries[0].psg).resolve() == (mass_src / "SS2/bio/01-02-0001 PSG.edf")
    assert sorted(p.name for p in out.iterdir()) == ["dataset.json", "manifest.csv"]  # no copy
    subsets = ds.info["subsets"]
    assert subsets["SS2"]["scored_epoch_s"] == [20] and subsets["SS3"]["scored_epoch_s"] == [30]  # type: ignore[index]
    assert subsets["SS2"]["c3_c4_references"] == ["CLE"]  # type: ignore[index]
    assert subsets["SS3"]["c3_c4_references"] == ["LER"]  # type: ignore[index]

    night = load_night(ds, ds.entries[0], "C4-A1", crop="none")  # EEG C4-CLE by alias
    assert night.channel == "EEG C4-CLE" and not night.contiguous
    data = read_signal(mass_src / "SS2/bio/01-02-0001 PSG.edf", "EEG C4-CLE").data
    # epoch k (onset 2 + 20 k) -> window [onset - 5, onset + 25); the first (-3 s) and the
    # ones past 780 s are dropped: onsets 22 ... 742 remain (k = 1 .. 37)
    kept = [k for k in range(40) if 2 + 20 * k - 5 >= 0 and 2 + 20 * k + 25 <= 780]
    assert kept == list(range(1, 38)) and night.n_epochs == len(kept)
    for i, k in enumerate(kept):
        start = int(round((2 + 20 * k - 5) * 100))
        np.testing.assert_array_equal(night.signal[i * 3000 : (i + 1) * 3000],
                                      data[start : start + 3000])  # fmt: skip
    codes = {"W": W, "1": N1, "2": N2, "3": N3, "4": N3, "R": REM, "?": UNSCORED}
    assert night.stages.tolist() == [codes[RK[k % 7]] for k in kept]

    ss3 = load_night(ds, ds.entries[1], "C3-A2", crop="none")
    assert ss3.channel == "EEG C3-LER" and ss3.contiguous and ss3.n_epochs == 7
    assert ss3.stages.tolist() == [W, N1, N2, REM, N3, UNSCORED, W]
    features = load_features(ds, "C4-A1", 5, crop="none", kind="stft")
    assert [f.images.shape for f in features] == [(37, 29, 129), (7, 29, 129)]
    with pytest.raises(InputError, match="20-s epochs, expanded to 30 s"):
        load_features(ds, "ECG", 5, crop="none", kind="beats", entries=ds.entries[:1])
    assert load_features(ds, "ECG", 5, crop="none", kind="beats", entries=ds.entries[1:])
    with pytest.raises(InputError, match=r"channels present: \['EEG C3-LER'"):
        load_night(ds, ds.entries[1], "Fpz-Cz")
    info = CliRunner().invoke(app, ["data", "info", str(out)])
    assert info.exit_code == 0 and "'c3_c4_references': ['CLE']" in info.output


def test_mass_errors_name_what_is_missing(mass_src: Path, tmp_path: Path) -> None:
    (mass_src / "SS3" / "01-03-0001 Annotations.edf").unlink()
    with pytest.raises(InputError, match=r"no stage annotation file for \['01-03-0001'\]"):
        import_mass(mass_src, tmp_path / "a")
    with pytest.raises(InputError, match="no MASS night here"):
        import_mass(tmp_path / "a", tmp_path / "b")
    cohort_edf(mass_src / "SS3" / "01-03-0001 Base.edf", [], 0, [(0.0, 1.0, "Lights off")])
    with pytest.raises(InputError, match="no sleep-stage annotations"):
        import_mass(mass_src, tmp_path / "c")
    cohort_edf(mass_src / "SS3" / "01-03-0001 Base.edf", [], 0, [(0.0, 25.0, "Sleep stage W")])
    with pytest.raises(InputError, match="must last 20 s"):
        import_mass(mass_src, tmp_path / "c")


def nsrr_xml(events: list[tuple[str, str, float, float]], epoch_s: int = 30) -> str:
    rows = "".join(
        f"<ScoredEvent><EventType>{t}</EventType><EventConcept>{c}</EventConcept>"
        f"<Start>{s}</Start><Duration>{d}</Duration></ScoredEvent>"
        for t, c, s, d in events
    )
    return (f'<?xml version="1.0" encoding="UTF-8"?><PSGAnnotation><SoftwareVersion>'
            f"Compumedics</SoftwareVersion><EpochLength>{epoch_s}</EpochLength>"
            f"<ScoredEvents>{rows}</ScoredEvents></PSGAnnotation>")  # fmt: skip


STAGE = "Stages|Stages"


@pytest.fixture
def nsrr_src(tmp_path: Path) -> Path:
    """SHHS-like (two visits of one subject, XML under annotations-events-nsrr) and
    MESA-like (EKG, XML beside the EDF) nights, SYNTHETIC signals."""
    root = tmp_path / "shhs" / "polysomnography"
    events = [(STAGE, "Wake|0", 0.0, 60.0), (STAGE, "Stage 1 sleep|1", 60.0, 30.0),
              ("Arousals|Arousals", "Arousal|Arousal ()", 75.0, 5.0),
              (STAGE, "Stage 2 sleep|2", 90.0, 60.0), (STAGE, "Stage 4 sleep|4", 150.0, 30.0),
              (STAGE, "REM sleep|5", 180.0, 30.0), (STAGE, "Unscored|9", 210.0, 30.0),
              (STAGE, "Stage 3 sleep|3", 240.0, 30.0)]  # fmt: skip
    for visit in ("shhs1", "shhs2"):
        # 255 s of signal: the last scored epoch (240-270 s) is partial and trimmed
        cohort_edf(root / "edfs" / visit / f"{visit}-200001.edf", ["EEG", "ECG"], 255.0)
        xml = root / "annotations-events-nsrr" / visit / f"{visit}-200001-nsrr.xml"
        xml.parent.mkdir(parents=True, exist_ok=True)
        xml.write_text(nsrr_xml(events))
    mesa = tmp_path / "shhs" / "mesa"
    cohort_edf(mesa / "mesa-sleep-0002.edf", ["EKG", "EEG1"], 300.0)
    (mesa / "mesa-sleep-0002-nsrr.xml").write_text(nsrr_xml(events[:2]))
    return tmp_path / "shhs"


def test_nsrr_import_reads_stage_events_and_ecg_aliases(nsrr_src: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    result = CliRunner().invoke(app, ["data", "import", "nsrr", str(nsrr_src), "--out", str(out)])
    assert result.exit_code == 0, result.output
    ds = read_dataset(out)
    assert [(e.record, e.subject, e.night) for e in ds.entries] == [
        ("mesa-sleep-0002", "0002", 1), ("shhs1-200001", "200001", 1),
        ("shhs2-200001", "200001", 2)]  # fmt: skip
    night = load_night(ds, ds.entries[1], "ECG", crop="none")
    assert night.stages.tolist() == [W, W, N1, N2, N2, N3, REM, UNSCORED]  # 8 whole epochs
    mesa = load_night(ds, ds.entries[0], "ECG", crop="none")
    assert mesa.channel == "EKG" and mesa.stages.tolist()[:3] == [W, W, N1]
    info = CliRunner().invoke(app, ["data", "info", str(out / ds.entries[1].hypnogram)])
    assert info.exit_code == 0 and "NSRR stages, 9 epochs of 30 s" in info.output


def test_nsrr_errors(nsrr_src: Path, tmp_path: Path) -> None:
    xml = nsrr_src / "mesa" / "mesa-sleep-0002-nsrr.xml"
    xml.write_text(nsrr_xml([(STAGE, "Wake|0", 0.0, 30.0)], epoch_s=20))
    with pytest.raises(InputError, match="EpochLength 20 s"):
        import_nsrr(nsrr_src, tmp_path / "a")
    xml.write_text(nsrr_xml([(STAGE, "Wake|0", 0.0, 30.0), (STAGE, "REM sleep|5", 270, 120)]))
    ds = import_nsrr(nsrr_src, tmp_path / "b")
    with pytest.raises(InputError, match="3 scored epochs lie beyond the end"):
        load_night(ds, ds.entries[0], "ECG")
    xml.write_text(nsrr_xml([(STAGE, "Wake|0", 0.0, 30.0)]).replace("<Start>0.0", "<Start>x"))
    with pytest.raises(InputError, match="without a numeric Start"):
        import_nsrr(nsrr_src, tmp_path / "d")
    xml.unlink()
    with pytest.raises(InputError, match=r"no NSRR XML for \['mesa-sleep-0002.edf'\]"):
        import_nsrr(nsrr_src, tmp_path / "c")
