"""`edgesleep models add | remove` and `--model NAME`: bundles from a folder, an archive and
a local HTTP server; digests, cards and archive members checked."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import http_mirror
from typer.testing import CliRunner

from edgesleep.cli import app
from edgesleep.errors import InputError, UsageError
from edgesleep.installed import add_model, installed_names, remove_model, resolve_model

CARD = {
    "name": "tiny-eeg",
    "data": {"tiny": {"citation": "SYNTHETIC nights (edgesleep's generator)", "licence": "MIT"}},
    "intended_use": "tests only",
    "limits": "SYNTHETIC data: says nothing about sleep",
}


@pytest.fixture(scope="module")
def bundle(tiny_export: Callable[[str], dict], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny student exported with a model card (fp32, no parity): a bundle."""
    out = tmp_path_factory.mktemp("bundle") / "tiny-eeg"
    card = out.parent / "card.json"
    card.write_text(json.dumps(CARD))
    printed = CliRunner().invoke(app, ["export", str(tiny_export("student")["root"] / "m.pt"),
                                       "--out", str(out), "--card", str(card)])  # fmt: skip
    assert printed.exit_code == 0, printed.output
    return out


def _zip(folder: Path, path: Path, extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                zf.write(file, f"{folder.name}/{file.relative_to(folder).as_posix()}")
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return path


def test_add_a_folder_use_it_by_name_and_remove_it(
    bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGESLEEP_MODELS", str(tmp_path / "models"))
    runner = CliRunner()
    added = runner.invoke(app, ["models", "add", str(bundle)])
    assert added.exit_code == 0, added.output
    assert "installed 'tiny-eeg'" in added.output and "--model tiny-eeg" in added.output
    assert installed_names() == ["tiny-eeg"]
    listed = runner.invoke(app, ["models"])
    assert listed.exit_code == 0 and "tiny-eeg" in listed.output, listed.output
    assert resolve_model(Path("tiny-eeg")) == tmp_path / "models" / "tiny-eeg"
    import edgesleep

    night = np.random.default_rng(0).standard_normal(100 * 30 * 25) * 20
    staged = edgesleep.score_array(night, 100.0, model="tiny-eeg")
    assert staged.stages.shape == (25,)
    again = runner.invoke(app, ["models", "add", str(bundle)])
    assert again.exit_code != 0 and "installed already" in again.output
    assert runner.invoke(app, ["models", "add", str(bundle), "--force"]).exit_code == 0
    with pytest.raises(UsageError, match="shipped model's name"):
        add_model(str(bundle), name="heart-4class")
    with pytest.raises(UsageError, match="cannot be removed"):
        remove_model("heart-4class")
    removed = runner.invoke(app, ["models", "remove", "tiny-eeg"])
    assert removed.exit_code == 0 and installed_names() == []
    with pytest.raises(
        InputError, match=r"no such model: .* of that name \(shipped: \['heart-3class'"
    ):
        resolve_model(Path("tiny-eeg"))


def test_altered_unlisted_and_uncarded_bundles_are_refused(
    bundle: Path, tiny_export: Callable[[str], dict], tmp_path: Path
) -> None:
    root = tmp_path / "models"
    altered = shutil.copytree(bundle, tmp_path / "altered")
    step = altered / "fp32" / "step.onnx"
    step.write_bytes(step.read_bytes()[:-1] + b"\x00")
    with pytest.raises(InputError, match="sha256 differs from SHA256SUMS"):
        add_model(str(altered), root=root)
    extra = shutil.copytree(bundle, tmp_path / "extra")
    (extra / "run.sh").write_text("echo hi\n")
    with pytest.raises(InputError, match=r"unlisted: \['run.sh'\]"):
        add_model(str(extra), root=root)
    uncarded = tiny_export("student")["root"] / "out"  # exported without a card
    with pytest.raises(InputError, match="its model card lacks"):
        add_model(str(uncarded), root=root)
    assert installed_names(root) == []


def test_archives_and_urls_need_their_digest(bundle: Path, tmp_path: Path) -> None:
    root = tmp_path / "models"
    (tmp_path / "serve").mkdir()
    archive = _zip(bundle, tmp_path / "serve" / "tiny-eeg.zip")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    with pytest.raises(InputError, match="differs from --sha256"):
        add_model(str(archive), sha256="0" * 64, root=root)
    evil = _zip(bundle, tmp_path / "evil.zip", {"../../outside.txt": b"x"})
    with pytest.raises(InputError, match="would land outside"):
        add_model(str(evil), root=root)
    with http_mirror(tmp_path / "serve") as url:
        with pytest.raises(UsageError, match="only with its digest pinned"):
            add_model(url + "tiny-eeg.zip", root=root)
        with pytest.raises(InputError, match="checksum mismatch"):
            add_model(url + "tiny-eeg.zip", sha256="f" * 64, root=root)
        name, folder = add_model(url + "tiny-eeg.zip", sha256=digest, name="from-url", root=root)
    assert name == "from-url" and (folder / "SHA256SUMS").is_file()
    assert add_model(str(archive), sha256=digest, name="from-file", root=root)[0] == "from-file"
    assert installed_names(root) == ["from-file", "from-url"]
    assert not (tmp_path / "outside.txt").exists()


def test_tar_archives_hold_plain_files_only(bundle: Path, tmp_path: Path) -> None:
    import tarfile

    root = tmp_path / "models"
    good = tmp_path / "tiny-eeg.tar.gz"
    with tarfile.open(good, "w:gz") as tf:
        tf.add(bundle, arcname="tiny-eeg")
    assert add_model(str(good), name="from-tar", root=root)[0] == "from-tar"
    linked = tmp_path / "linked.tar"
    with tarfile.open(linked, "w") as tf:
        tf.add(bundle, arcname="tiny-eeg")
        link = tarfile.TarInfo("tiny-eeg/passwd")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
    with pytest.raises(InputError, match="holds links or devices"):
        add_model(str(linked), root=root)
    assert installed_names(root) == ["from-tar"]
