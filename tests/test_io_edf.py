import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from conftest import write_edf
from typer.testing import CliRunner

from edgesleep.cli import app
from edgesleep.errors import InputError
from edgesleep.io import edf


@pytest.fixture()
def psg(tmp_path: Path) -> Path:
    t = np.arange(100 * 90) / 100
    eeg = 40 * np.sin(2 * np.pi * 2 * t)  # µV
    t200 = np.arange(200 * 90) / 200
    eog_mv = 0.1 * np.sin(2 * np.pi * 1 * t200)  # mV
    t256 = np.arange(256 * 90) / 256
    ecg_v = 1e-3 * np.sin(2 * np.pi * 1.2 * t256)  # V
    return write_edf(
        tmp_path / "night.edf",
        {
            "EEG Fpz-Cz": (eeg, 100, "uV"),
            "EOG horizontal": (eog_mv, 200, "mV"),
            "ECG": (ecg_v, 256, "V"),
            "Temp rectal": (np.full(90, 37.0), 1, "DegC"),
        },
        annotations=[(0, 30, "Sleep stage W"), (30, 60, "Sleep stage 2")],
    )


@pytest.mark.parametrize(
    ("name", "label", "peak_uv"),
    [
        ("EEG Fpz-Cz", "EEG Fpz-Cz", 40),
        ("fpz-cz", "EEG Fpz-Cz", 40),
        ("EOG horizontal", "EOG horizontal", 100),
        ("heog", "EOG horizontal", 100),
        ("ECG", "ECG", 1000),
        ("EKG", "ECG", 1000),
    ],
)
def test_channel_by_alias_in_uv_at_100hz(psg: Path, name: str, label: str, peak_uv: float) -> None:
    sig = edf.read_signal(psg, name)
    assert sig.channel == label
    assert sig.sfreq == 100 and sig.data.shape == (9000,)
    assert np.abs(sig.data[500:-500]).max() == pytest.approx(peak_uv, rel=0.01)
    assert sig.start == dt.datetime(1989, 4, 24, 16, 13, 0)


def test_native_rate_is_kept_when_asked(psg: Path) -> None:
    sig = edf.read_signal(psg, "ECG", sfreq=None)
    assert sig.sfreq == 256 and sig.data.shape == (256 * 90,)


def test_missing_channel_lists_the_channels(psg: Path) -> None:
    with pytest.raises(InputError, match=r"'EMG chin' not found; channels present: \['EEG Fpz-Cz'"):
        edf.read_signal(psg, "EMG chin")


def test_unknown_unit(psg: Path) -> None:
    with pytest.raises(InputError, match="unknown physical dimension 'DegC'"):
        edf.read_signal(psg, "Temp rectal")


def test_rate_that_cannot_be_resampled(tmp_path: Path) -> None:
    import pyedflib

    path = tmp_path / "odd.edf"
    writer = pyedflib.EdfWriter(str(path), 1, file_type=pyedflib.FILETYPE_EDFPLUS)
    with pytest.warns(UserWarning, match="record_duration"):
        writer.setDatarecordDuration(2)  # 199 samples per 2-s record: 99.5 Hz
    writer.setSignalHeaders(
        [
            {
                "label": "ECG",
                "dimension": "uV",
                "sample_frequency": 99.5,
                "physical_max": 100,
                "physical_min": -100,
                "digital_max": 32767,
                "digital_min": -32768,
                "transducer": "",
                "prefilter": "",
            }
        ]
    )
    writer.writeSamples([np.zeros(199 * 10)])
    writer.close()
    with pytest.raises(InputError, match="99.5 Hz cannot be resampled"):
        edf.read_signal(path, "ECG")


def test_annotations(psg: Path) -> None:
    notes = edf.read_annotations(psg)
    assert [(a.onset_s, a.duration_s, a.description) for a in notes] == [
        (0.0, 30.0, "Sleep stage W"),
        (30.0, 60.0, "Sleep stage 2"),
    ]


def _broken_files(psg: Path, tmp_path: Path) -> dict[str, tuple[Path, str]]:
    raw = psg.read_bytes()
    truncated = tmp_path / "truncated.edf"
    truncated.write_bytes(raw[:-700])
    not_edf = tmp_path / "notes.edf"
    not_edf.write_text("this is not an EDF file\n" * 20)
    # A non-compliant header as in Sleep-EDF's telemetry hypnograms: a start date
    # pyedflib refuses.
    bad_header = bytearray(raw)
    bad_header[168:176] = b"24:04:89"
    noncompliant = tmp_path / "ST7011JP-Hypnogram.edf"
    noncompliant.write_bytes(bytes(bad_header))
    return {
        "missing": (tmp_path / "nope.edf", "no such file"),
        "not EDF": (not_edf, "not an EDF/EDF+ file"),
        "truncated": (truncated, "truncated or padded EDF"),
        "non-compliant": (noncompliant, "EDF header is not compliant"),
    }


def test_bad_files_give_one_line_errors_from_the_cli(psg: Path, tmp_path: Path) -> None:
    for path, message in _broken_files(psg, tmp_path).values():
        result = CliRunner().invoke(app, ["data", "info", str(path)])
        assert result.exit_code == 1, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.output
        assert str(path) in lines[0] and message in lines[0]


def test_data_info_lists_channels_and_annotations(psg: Path) -> None:
    result = CliRunner().invoke(app, ["data", "info", str(psg)])
    assert result.exit_code == 0, result.output
    for text in ("EEG Fpz-Cz", "EOG horizontal", "256", "mV", "Sleep stage 2", "2 annotations"):
        assert text in result.output
