"""CinC 2018 and HMC: import from their original layouts (fixtures written with wfdb and
pyedflib, SYNTHETIC signals), per-record refusals, fetch from a local mirror."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    CINC_LABELS,
    HMC_LABELS,
    SHORT_NIGHT,
    http_mirror,
    write_cinc_record,
    write_hmc_record,
)
from typer.testing import CliRunner

from edgesleep.cli import app
from edgesleep.dsp.resampling import resample
from edgesleep.errors import InputError
from edgesleep.io.cinc2018 import import_cinc2018, read_stages
from edgesleep.io.dataset import load_night, read_dataset
from edgesleep.io.fetch import fetch_cohort, plan_cohort
from edgesleep.io.hmc import import_hmc

LICENCE = "Open Data Commons Attribution License v1.0 (a stand-in line for the test)\n"


@pytest.fixture(scope="module")
def cinc_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two CinC training records (scoring starts 2.5 s in, off the file's 30-s grid), a
    test-set record (no annotations, not matched), LICENSE.txt and SHA256SUMS.txt as
    PhysioNet publishes them."""
    root = tmp_path_factory.mktemp("challenge-2018")
    write_cinc_record(root, "tr03-0005", SHORT_NIGHT, index=0)
    write_cinc_record(root, "tr04-0012", np.roll(SHORT_NIGHT, 7), lead_s=40.0, index=1)
    (root / "test" / "te03-0001").mkdir(parents=True)
    (root / "LICENSE.txt").write_text(LICENCE)
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()} {p.relative_to(root)}"
             for p in sorted(root.rglob("*")) if p.is_file()]  # fmt: skip
    (root / "SHA256SUMS.txt").write_text("\n".join(lines) + "\n")
    return root


def test_cinc_import_reads_stage_notes_at_their_onsets(cinc_src: Path, tmp_path: Path) -> None:
    with warnings.catch_warnings():  # wfdb's own pandas deprecations
        warnings.simplefilter("ignore", DeprecationWarning)
        import wfdb

        record = wfdb.rdrecord(str(cinc_src / "training/tr03-0005/tr03-0005"),
                               channel_names=["F4-M1"])  # fmt: skip
    ds = import_cinc2018(cinc_src, tmp_path / "cinc")
    assert [e.record for e in ds.entries] == ["tr03-0005", "tr04-0012"]
    entry = ds.entries[0]
    assert entry.epochs == "annotated" and entry.psg.endswith("tr03-0005/tr03-0005.hea")
    assert (tmp_path / "cinc" / entry.hypnogram).read_text().splitlines()[1] == "2.5,30,W"
    info = json.loads((tmp_path / "cinc" / "dataset.json").read_text())
    assert info["licence"].startswith("Open Data Commons Attribution License v1.0")
    assert info["records"]["tr03-0005"]["channels"] == list(CINC_LABELS)
    assert info["records"]["tr03-0005"]["scoring_starts_s"] == 2.5
    assert info["records"]["tr04-0012"]["scored_epochs"] == SHORT_NIGHT.size
    assert "not wearable users" in info["population"] and info["failures"] == {}
    # Fpz-Cz is the dataset's alias of F4-M1; the stages are the notes expanded, the
    # signal the scored epochs' windows of the channel in µV at 100 Hz
    night = load_night(ds, entry, "Fpz-Cz", crop="none")
    assert night.channel == "F4-M1" and night.contiguous
    np.testing.assert_array_equal(night.stages, SHORT_NIGHT)
    full = resample(record.p_signal[:, 0], 200.0)
    np.testing.assert_allclose(night.signal, full[250 : 250 + SHORT_NIGHT.size * 3000])
    info_out = CliRunner().invoke(
        app, ["data", "info", str(cinc_src / "training/tr03-0005/tr03-0005.hea")]
    )
    assert "tr03-0005.hea: WFDB record, 1582 s" in info_out.output, info_out.output
    assert "SaO2" in info_out.output and "ECG" in info_out.output
    second = load_night(ds, ds.entries[1], "ECG", crop="none")
    np.testing.assert_array_equal(second.stages, np.roll(SHORT_NIGHT, 7))


def test_cinc_refusals_are_per_record(cinc_src: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_cinc_record(src, "tr03-0005", SHORT_NIGHT)
    write_cinc_record(src, "tr05-0001", SHORT_NIGHT, labels=CINC_LABELS[:-1])  # no ECG
    write_cinc_record(src, "tr06-0002", SHORT_NIGHT, extra_notes=((10**6, "N2"),))
    write_cinc_record(src, "tr07-0003", SHORT_NIGHT, extra_notes=((2500 + 2000, "N3"),))
    write_cinc_record(src, "tr08-0004", SHORT_NIGHT)
    (src / "training/tr08-0004/tr08-0004.arousal").unlink()
    ds = import_cinc2018(src, tmp_path / "out", require=["ECG"])
    assert [e.record for e in ds.entries] == ["tr03-0005"]
    failures = ds.info["failures"]
    assert isinstance(failures, dict)
    assert "no 'ECG' channel (required); channels present: ['F3-M2'" in failures["tr05-0001"]
    assert "past the signal's end" in failures["tr06-0002"]
    assert "not on the 30-s grid" in failures["tr07-0003"]
    assert "tr08-0004.arousal: missing" in failures["tr08-0004"]
    printed = CliRunner().invoke(app, ["data", "import", "cinc2018", str(src), "--out",
                                       str(tmp_path / "cli"), "--require", "ECG"])  # fmt: skip
    assert printed.exit_code == 0, printed.output
    assert "4 records left out" in printed.output and "tr06-0002: " in printed.output
    described = CliRunner().invoke(app, ["data", "info", str(tmp_path / "cli")])
    assert "1 nights, 1 subjects, real (cinc2018)" in described.output, described.output
    assert "4 records left out at import" in described.output
    assert "not wearable users" in described.output
    with pytest.raises(InputError, match="no CinC 2018 training record here"):
        import_cinc2018(tmp_path / "out", tmp_path / "none")
    only = tmp_path / "only"
    write_cinc_record(only, "tr09-0005", SHORT_NIGHT, labels=CINC_LABELS[:-1])
    with pytest.raises(InputError, match="no record could be imported"):
        import_cinc2018(only, tmp_path / "none", require=["ECG"])


def test_hmc_import_keeps_lights_and_refuses_per_record(tmp_path: Path) -> None:
    src = tmp_path / "hmc"
    write_hmc_record(src, "SN001", SHORT_NIGHT, index=2)
    write_hmc_record(src, "SN002", SHORT_NIGHT, scoring=False)
    write_hmc_record(src, "SN003", SHORT_NIGHT, labels=HMC_LABELS[:-1])
    write_hmc_record(src, "SN004", SHORT_NIGHT, tail_s=17)
    late = src / "recordings/SN004_sleepscoring.edf"  # the scoring of a longer night
    write_hmc_record(tmp_path / "long", "SN004", np.concatenate([SHORT_NIGHT, SHORT_NIGHT]))
    late.write_bytes((tmp_path / "long/recordings/SN004_sleepscoring.edf").read_bytes())
    ds = import_hmc(src, tmp_path / "out", require=["ECG"])
    assert [e.record for e in ds.entries] == ["SN001"]
    entry = ds.entries[0]
    assert (entry.lights_off_s, entry.lights_on_s) == (73.0, 13.0 + 30 * 50)
    failures = ds.info["failures"]
    assert isinstance(failures, dict) and set(failures) == {"SN002", "SN003", "SN004"}
    assert "no scoring file beside it (expected SN002_sleepscoring.edf" in failures["SN002"]
    assert "no 'ECG' channel" in failures["SN003"] and "past the end" in failures["SN004"]
    whole = load_night(ds, entry, "Fpz-Cz", crop="none")
    assert whole.channel == "EEG F4-M1" and whole.n_epochs == SHORT_NIGHT.size
    np.testing.assert_array_equal(whole.stages, SHORT_NIGHT)
    in_bed = load_night(ds, entry, "EOG horizontal")  # lights off 60 s in, on 2 epochs early
    assert in_bed.channel == "EOG E1-M2" and in_bed.first_epoch == 2
    np.testing.assert_array_equal(in_bed.stages, SHORT_NIGHT[2:50])
    eog = load_night(ds, entry, "EOG E1-M2", crop="none").signal
    np.testing.assert_array_equal(in_bed.signal, eog[2 * 3000 : 50 * 3000])


def test_fetch_says_the_plan_then_fetches_a_subset(cinc_src: Path, tmp_path: Path) -> None:
    with http_mirror(cinc_src) as url:
        plan = plan_cohort("cinc2018", url, count=1)
        assert plan.records == ["tr03-0005"]
        keys = [k for k, _, _ in plan.files]
        files = [f"training/tr03-0005/tr03-0005.{e}" for e in ("hea", "mat", "arousal")]
        assert keys == [*files, "LICENSE.txt"]
        expected = sum((cinc_src / k).stat().st_size for k in keys)
        assert plan.n_bytes == expected
        out = str(tmp_path / "d")
        printed = CliRunner().invoke(app, ["data", "fetch", "cinc2018", "--out", out, "--base-url",
                                           url, "--count", "1", "--dry-run"])  # fmt: skip
        assert printed.exit_code == 0, printed.output
        assert f"1 records, 4 files, {expected / 1e9:.2f} GB" in printed.output
        assert not (tmp_path / "d").exists()
        ds = fetch_cohort(plan, tmp_path / "d")
        assert [e.record for e in ds.entries] == ["tr03-0005"]
        assert (tmp_path / "d/raw/training/tr03-0005/tr03-0005.mat").is_file()
        assert read_dataset(tmp_path / "d").info["licence"].startswith("Open Data Commons")
        with pytest.raises(InputError, match=r"no records \['tr99-0001'\]; there are"):
            plan_cohort("cinc2018", url, ["tr99-0001"])


def test_hmc_fetch_from_a_mirror(tmp_path: Path) -> None:
    mirror = tmp_path / "hmc-sleep-staging"
    write_hmc_record(mirror, "SN001", SHORT_NIGHT[:20])
    write_hmc_record(mirror, "SN002", SHORT_NIGHT[:20], index=1)
    (mirror / "recordings/SN001_sleepscoring.txt").write_text("not needed\n")
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()} {p.relative_to(mirror)}"
             for p in sorted(mirror.rglob("*")) if p.is_file()]  # fmt: skip
    (mirror / "SHA256SUMS.txt").write_text("\n".join(lines) + "\n")
    with http_mirror(mirror) as url:
        printed = CliRunner().invoke(app, ["data", "fetch", "hmc", "--out", str(tmp_path / "d"),
                                           "--base-url", url, "--subjects", "SN002"])  # fmt: skip
    assert printed.exit_code == 0, printed.output
    assert "hmc: 1 records, 2 files" in printed.output
    assert "1 nights of 1 subjects (hmc, real data" in printed.output
    assert not (tmp_path / "d/raw/recordings/SN001.edf").exists()


def test_an_undocumented_note_leaves_what_follows_unscored(tmp_path: Path) -> None:
    src = tmp_path / "src"
    stages = np.full(20, 2, dtype=np.int8)
    # stage texts on annotations of another code than NOTE are read too (the readers use
    # aux_note whatever the symbol)
    write_cinc_record(src, "tr03-0005", stages, lead_s=0.0, extra_notes=((8 * 6000, "U"),),
                      stage_symbol="+")  # fmt: skip
    onsets, scored, facts = read_stages(src / "training/tr03-0005/tr03-0005.hea")
    assert facts["unknown_notes"] == ["U"] and facts["scored_epochs"] == 8
    np.testing.assert_array_equal(scored[:8], 2)
    np.testing.assert_array_equal(scored[8:], -2)  # never N2 carried on past the note
    assert onsets[0] == 0.0  # a stage note at sample 0, which wfdb.rdann would drop
