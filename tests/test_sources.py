"""Sources addressed by one spec string (issue 32, slice 1): each scheme's parameters typed
and bounded, misuse named with the fix, the old `stream` options mapped onto the same
sources and hidden from --help. SYNTHETIC nights."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgesleep.cli import app
from edgesleep.errors import UsageError
from edgesleep.sources import SOURCES, SourceSpec, open_source, parse_spec, source_module


@pytest.mark.parametrize(
    ("text", "scheme", "target", "params"),
    [
        ("serial:/dev/ttyUSB0", "serial", "/dev/ttyUSB0", {"baud": 115200}),
        ("serial:/dev/ttyACM1?baud=9600", "serial", "/dev/ttyACM1", {"baud": 9600}),
        ("stdin:?sfreq=256&channels=ECG", "stdin", "", {"sfreq": 256.0, "channels": "ECG"}),
        ("stdin:sfreq=100", "stdin", "", {"sfreq": 100.0, "channels": ""}),
        ("edf:night.edf?speed=10", "edf", "night.edf", {"speed": 10.0, "channel": ""}),
        ("synthetic:", "synthetic", "", {"seed": 0, "epochs": 0, "speed": 0.0, "channel": ""}),
        ("synthetic:seed=3&epochs=40", "synthetic", "", {"seed": 3, "epochs": 40}),
    ],
)
def test_specs_parse_with_typed_defaults(
    text: str, scheme: str, target: str, params: dict[str, object]
) -> None:
    spec = parse_spec(text)
    assert (spec.scheme, spec.target) == (scheme, target)
    assert params.items() <= spec.params.items()
    assert set(spec.params) == set(source_module(scheme).PARAMS)
    assert parse_spec(str(spec)) == spec  # printed as given, defaults left out


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("/dev/ttyUSB0", ["say what it is", "serial:/dev/ttyUSB0"]),
        ("usb:/dev/ttyUSB0", ["unknown source 'usb'", "serial:", "edf:"]),
        ("serial:/dev/ttyUSB0?baut=9600", ["unknown key 'baut'", "'baud'"]),
        ("serial:/dev/ttyUSB0?baud=fast", ["baud='fast' is not a int"]),
        ("serial:/dev/ttyUSB0?baud=1", ["baud=1 is outside 300..1.2e+07"]),
        ("serial:?baud=9600", ["needs the port"]),
        ("stdin:?channels=ECG", ["needs sfreq="]),
        ("stdin:somewhere?sfreq=100", ["takes no target"]),
        ("edf:n.edf?speed=2&speed=3", ["['speed'] given more than once"]),
        ("edf:n.edf?speed", ["is not key=value"]),
        ("synthetic:?epochs=-1", ["epochs=-1 is outside"]),
    ],
)
def test_bad_specs_are_named_with_the_fix(text: str, words: list[str]) -> None:
    with pytest.raises(UsageError) as err:
        parse_spec(text)
    assert all(w in str(err.value) for w in words), str(err.value)


def test_every_source_declares_itself() -> None:
    for scheme in SOURCES:
        module = source_module(scheme)
        assert module.DOC and callable(module.open_spec)
        assert all(p.help for p in module.PARAMS.values())


def test_a_spec_opens_the_source_the_old_options_opened(tmp_path: Path) -> None:
    source = open_source("synthetic:?seed=2&epochs=4", "EOG horizontal")
    info = source.info()
    assert info.synthetic and info.channels == ("EOG horizontal",)
    samples = np.concatenate([p.samples for p in source.packets()])
    assert samples.shape == (4 * 30 * int(info.sfreq), 1)
    old = open_source(SourceSpec("synthetic", "", {"seed": 2, "epochs": 4, "speed": 0.0,
                                                   "channel": ""}), "EOG horizontal")  # fmt: skip
    np.testing.assert_array_equal(np.concatenate([p.samples for p in old.packets()]), samples)


def _options(help_text: str) -> set[str]:
    return set(re.findall(r"--[a-z][a-z-]+", help_text))


def test_stream_help_is_shorter_and_hides_the_old_forms() -> None:
    result = CliRunner().invoke(app, ["stream", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    shown = _options(result.output) - {"--help", "--no-revisions", "--no-overwrite",
                                       "--no-resume", "--no-quiet"}  # fmt: skip
    for old in ("--port", "--replay", "--synthetic", "--sfreq", "--baud", "--speed", "--input"):
        assert old not in shown
    assert "--series" in shown and "serial:" in result.output
    assert len(shown) < 19  # edgesleep 0.1 listed 19 options


def test_stream_refuses_two_sources_and_none(tmp_path: Path) -> None:
    both = CliRunner().invoke(app, ["stream", "synthetic:", "--synthetic"])
    assert both.exit_code == 2 and "not both" in both.output
    bad = CliRunner().invoke(app, ["stream", "serial:/dev/x?baut=1"])
    assert bad.exit_code == 2 and "'baud'" in bad.output


def test_the_old_options_name_the_same_sources_and_say_what_replaces_them() -> None:
    from edgesleep.cli.stage import legacy_spec

    cases = [
        (("/dev/ttyUSB0", None, False, None, 9600, 0.0, 0, None), "serial:/dev/ttyUSB0?baud=9600"),
        (("-", None, False, 256.0, 115200, 0.0, 0, None), "stdin:?sfreq=256.0"),
        ((None, Path("n.edf"), False, None, 115200, 2.0, 0, None), "edf:n.edf?speed=2.0"),
        ((None, None, True, None, 115200, 0.0, 4, 30), "synthetic:?seed=4&epochs=30"),
    ]
    for args, spec in cases:
        with pytest.warns(DeprecationWarning, match="stream '"):
            old = legacy_spec(*args)
        assert old == parse_spec(spec)
    assert legacy_spec(None, None, False, None, 115200, 0.0, 0, None) is None
    with pytest.raises(UsageError, match="pass --sfreq"):
        legacy_spec("-", None, False, None, 115200, 0.0, 0, None)
