"""Nothing loaded runs code or is used unchecked (issue 29, items 11-12): a planted
training state is refused without being executed; export metadata is validated field by
field against stated bounds, whatever its hash says."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from edgesleep.cli import app


class _Planted:
    """Unpickling it runs a shell command (what an attacker puts in ``OUT.state``)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def test_a_planted_training_state_is_refused_unexecuted(tiny_dataset: Path, tmp_path: Path) -> None:
    out, marker = tmp_path / "m.pt", tmp_path / "pwned"
    with (tmp_path / "m.pt.state").open("wb") as fh:
        pickle.dump({"fingerprint": _Planted(marker)}, fh)
    torch.save({"fingerprint": _Planted(marker)}, tmp_path / "t.state")
    for planted in ("m.pt.state", "t.state"):
        os.replace(tmp_path / planted, tmp_path / "m.pt.state")
        args = ["train", "--data", str(tiny_dataset), "--channel", "EOG horizontal", "--model",
                "student", "--subjects", "0,1", "--max-steps", "2", "--out", str(out),
                "--resume", "--device", "cpu"]  # fmt: skip
        result = CliRunner().invoke(app, args)
        assert not marker.exists(), "the planted state ran a command"
        assert result.exit_code == 2 and "not a training state edgesleep can load" in result.output


def _edited(tmp_path: Path, edit: object) -> Path:
    """The shipped heart model's step graph with its metadata edited and re-hashed."""
    import json

    import onnx

    from edgesleep.export.graphs import save
    from edgesleep.metadata import META_KEY
    from edgesleep.shipped import default_model

    source = default_model(4).folder / "step.onnx"
    proto = onnx.load(str(source))
    meta = json.loads({p.key: p.value for p in proto.metadata_props}[META_KEY])
    edit(meta)  # type: ignore[operator]
    folder = tmp_path / "edited"
    save(proto, meta, folder / "step.onnx")
    return folder


def _set(path: str, value: object) -> object:
    def edit(meta: dict) -> None:
        *parents, last = path.split(".")
        for key in parents:
            meta = meta[key]
        if value is _Missing:
            del meta[last]
        else:
            meta[last] = value

    return edit


class _Missing:
    pass


@pytest.mark.parametrize(
    ("path", "value", "said"),
    [
        ("seq_len", 10**9, "seq_len = 1000000000 is not an integer in 1..256"),
        ("epoch_dim", 10**9, "epoch_dim = 1000000000 is not an integer in 1..4096"),
        ("readout.stream_context", _Missing, "readout.stream_context is missing"),
        ("readout.stream_context", -5, "readout.stream_context = -5"),
        ("readout.lookahead", 25, "readout.lookahead = 25 is not an integer in 0..19"),
        ("session_options", {"session.load_model_format": "ORT"}, "session option"),
        ("precision", "fp64", "precision 'fp64' is not one of"),
    ],
)
def test_edited_and_rehashed_metadata_is_refused_by_field(
    tmp_path: Path, path: str, value: object, said: str
) -> None:
    from edgesleep.errors import InputError
    from edgesleep.ort import ExportedModel

    folder = _edited(tmp_path, _set(path, value))
    with pytest.raises(InputError, match=said.replace("(", r"\(")):
        ExportedModel(folder)
    (tmp_path / "hr.csv").write_text("time_s,bpm\n" + "".join(f"{5 * i},60\n" for i in range(99)))
    result = CliRunner().invoke(app, ["stage", str(tmp_path / "hr.csv"), "--model", str(folder),
                                      "--out", str(tmp_path / "out")])  # fmt: skip
    assert result.exit_code == 1 and "internal error" not in result.output
