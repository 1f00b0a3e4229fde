"""Bad annotation files are refused with the reason, never read without bound (issue 29,
item 8): NSRR XML with times out of a night, NaN/inf, a non-numeric EpochLength, a
DOCTYPE, or too large; parsed incrementally; a WFDB header with no sampling rate."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from edgesleep.errors import InputError
from edgesleep.io import hypnogram
from edgesleep.io.hypnogram import read_nsrr_xml

STAGE = "Stages|Stages"


def _xml(events: list[tuple[str, str]], epoch: str = "30", prolog: str = "") -> str:
    rows = "".join(
        f"<ScoredEvent><EventType>{STAGE}</EventType><EventConcept>Wake|0</EventConcept>"
        f"<Start>{s}</Start><Duration>{d}</Duration></ScoredEvent>"
        for s, d in events
    )
    return (f'<?xml version="1.0" encoding="UTF-8"?>{prolog}<PSGAnnotation>'
            f"<EpochLength>{epoch}</EpochLength><ScoredEvents>{rows}</ScoredEvents>"
            "</PSGAnnotation>")  # fmt: skip


@pytest.mark.parametrize(
    ("events", "epoch", "match"),
    [
        ([("3e11", "30")], "30", "Start 3e.11 s lasting 30 s lies outside a night of 24 h"),
        ([("nan", "30")], "30", "not finite"),
        ([("0", "inf")], "30", "not finite"),
        ([("-30", "30")], "30", "outside a night"),
        ([("0", "1e9")], "30", "outside a night"),
        ([("0", "30")], "abc", "EpochLength 'abc' is not a number"),
    ],
)
def test_nsrr_values_are_bounded(
    tmp_path: Path, events: list[tuple[str, str]], epoch: str, match: str
) -> None:
    path = tmp_path / "a-nsrr.xml"
    path.write_text(_xml(events, epoch))
    with pytest.raises(InputError, match=match):
        read_nsrr_xml(path)


def test_a_doctype_is_refused(tmp_path: Path) -> None:
    laughs = '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
    path = tmp_path / "a-nsrr.xml"
    path.write_text(_xml([("0", "30")], prolog=laughs))
    with pytest.raises(InputError, match="DOCTYPE"):
        read_nsrr_xml(path)


def test_a_large_file_is_read_in_pieces_and_a_huge_one_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a-nsrr.xml"
    other = (
        "<ScoredEvent><EventType>Arousals|Arousals</EventType>"
        + "x" * 2000
        + ("<Start>0</Start><Duration>3</Duration></ScoredEvent>")
    )
    text = _xml([(str(30 * i), "30") for i in range(960)])
    path.write_text(text.replace("<ScoredEvents>", "<ScoredEvents>" + other * 10_000))
    size = path.stat().st_size  # ~20 MB of events
    tracemalloc.start()
    stages = read_nsrr_xml(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert stages.shape == (960,) and peak < 0.2 * size, (peak, size)  # was ~5x the file
    monkeypatch.setattr(hypnogram, "MAX_XML_BYTES", size - 1)
    with pytest.raises(InputError, match="an NSRR annotation file is at most"):
        read_nsrr_xml(path)


def test_a_wfdb_header_without_a_rate_is_refused(tmp_path: Path) -> None:
    wfdb = pytest.importorskip("wfdb")
    import warnings

    import numpy as np

    from edgesleep.io.slpdb import read_wfdb_record

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # wfdb's use of pandas
        wfdb.wrsamp("slp01a", fs=250, units=["mV"], sig_name=["ECG"], fmt=["212"],
                    d_signal=np.zeros((7500, 1), dtype=np.int32), adc_gain=[200.0],
                    baseline=[0], write_dir=str(tmp_path))  # fmt: skip
        wfdb.wrann("slp01a", "ecg", np.array([100, 300]), symbol=["N", "N"],
                   write_dir=str(tmp_path))  # fmt: skip
        wfdb.wrann("slp01a", "st", np.array([0]), symbol=['"'], aux_note=["W"],
                   write_dir=str(tmp_path))  # fmt: skip
    header = tmp_path / "slp01a.hea"
    header.write_text(header.read_text().replace(" 250 ", " 0 ", 1))
    with pytest.raises(InputError, match="sampling rate 0 Hz"):
        read_wfdb_record(tmp_path, "slp01a")


@pytest.mark.parametrize("bad", ["../../escape/x", "..", "a/b", "/etc/x", "x\\..\\y"])
def test_an_importer_refuses_ids_that_are_not_plain_names(
    walch_src: Path, tmp_path: Path, bad: str
) -> None:
    from typer.testing import CliRunner

    from edgesleep.cli import app

    (walch_src / "SUBJECTS").write_text(f"{bad}\n")
    out = tmp_path / "deep" / "er" / "out"
    result = CliRunner().invoke(app, ["data", "import", "walch", str(walch_src), "--out",
                                      str(out)])  # fmt: skip
    assert result.exit_code == 1 and "is not a plain name" in result.output
    assert not (tmp_path / "escape").exists() and not (tmp_path / "deep" / "escape").exists()
    for listing, line in (("RECORDS", bad), ("SHA256SUMS", f"{'0' * 64} ../../outside")):
        root = tmp_path / f"wfdb-{listing}"
        root.mkdir()
        (root / "RECORDS").write_text("slp01a\n")
        (root / "slp01a.hea").write_text("slp01a 1 250 7500\n")
        (root / listing).write_text(line + "\n")
        result = CliRunner().invoke(app, ["data", "import", "slpdb", str(root), "--out",
                                          str(tmp_path / "o")])  # fmt: skip
        assert result.exit_code == 1, result.output
        assert "not a plain name" in result.output or "outside" in result.output
