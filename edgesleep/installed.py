"""Models someone trained, installed by name: ``edgesleep models add DIR|FILE|URL``, listed
by ``edgesleep models``, used as ``--model NAME``, removed by ``edgesleep models remove``.

A *bundle* is a folder as ``edgesleep export`` writes it (``fp32/`` and ``int8/`` graphs, or
the step graph alone as the shipped models are) with ``SHA256SUMS`` listing every file in
it, and a model card in the graphs' metadata (``name``, ``data`` with each cohort's
citation and licence, ``intended_use``, ``limits``). It may come as the folder, as an
archive of it (``.zip``, ``.tar.gz``, ``.tgz``, ``.tar``) or from an http(s) URL, which is
taken only with its archive's sha256 pinned (``--sha256``). Nothing in it is trusted: the
archive's members must stay inside it (no links, no absolute or ``..`` paths) and within
size bounds, every file must be listed and match its digest, and the graphs are opened as
any model is (format version and metadata bounds, :mod:`edgesleep.metadata`).

Installed models live in ``$EDGESLEEP_MODELS``, else ``$XDG_DATA_HOME/edgesleep/models``,
else ``~/.local/share/edgesleep/models`` (``--dir`` on the commands overrides it); each in
a folder of its name.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import IO

from edgesleep.errors import InputError, UsageError
from edgesleep.io.fetch import download, parse_sums, sha256_of
from edgesleep.ort import ExportedModel
from edgesleep.shipped import SHIPPED_DIR, shipped_names

ENV = "EDGESLEEP_MODELS"
SUMS = "SHA256SUMS"
MAX_BUNDLE_BYTES = 512 * 2**20  # unpacked; a SeqSleepNet export in fp32 + int8 is ~3 MB
MAX_FILES = 64
CARD_KEYS = ("name", "data", "intended_use", "limits")
ARCHIVES = (".zip", ".tar.gz", ".tgz", ".tar")


def models_dir(override: Path | None = None) -> Path:
    """Where models are installed (module docstring)."""
    if override is not None:
        return override
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "edgesleep" / "models"


def installed_names(root: Path | None = None) -> list[str]:
    """Names of the installed models (folders holding ``SHA256SUMS``)."""
    folder = models_dir(root)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if (p / SUMS).is_file())


def installed_model_folders(root: Path | None = None) -> dict[str, Path]:
    """Installed model name -> its folder."""
    return {name: models_dir(root) / name for name in installed_names(root)}


def resolve_model(model: Path, root: Path | None = None) -> Path:
    """A ``--model``: a file or folder that exists, else a shipped or installed model's name.

    Raises
    ------
    InputError
        Neither (the names there are are given).
    """
    if model.exists():
        return model
    name = str(model)
    if name in shipped_names():
        return SHIPPED_DIR / name
    if name in installed_names(root):
        return models_dir(root) / name
    raise InputError(
        f"--model {name}: no such model: no file or folder there, and no shipped or "
        f"installed model of that name (shipped: "
        f"{shipped_names()}; installed in {models_dir(root)}: {installed_names(root)})"
    )


def check_bundle(folder: Path) -> ExportedModel:
    """Verify a bundle (module docstring) and open its model.

    Raises
    ------
    InputError
        No ``SHA256SUMS``, a file missing, unlisted or different from its digest, too many
        or too large files, graphs that do not open, no model card or one without
        ``name``, ``data`` (each cohort with a citation), ``intended_use``, ``limits``.
    """
    sums = folder / SUMS
    if not sums.is_file():
        raise InputError(
            f"{folder}: no {SUMS} (every file of a bundle is listed with its sha256; "
            "`edgesleep export` writes one)"
        )
    files = [p for p in folder.rglob("*") if p.is_file() or p.is_symlink()]
    if any(p.is_symlink() for p in files) or len(files) > MAX_FILES:
        raise InputError(f"{folder}: links, or more than {MAX_FILES} files; not a bundle")
    if sum(p.stat().st_size for p in files) > MAX_BUNDLE_BYTES:
        raise InputError(f"{folder}: more than {MAX_BUNDLE_BYTES >> 20} MB; not a bundle")
    listed = parse_sums(sums.read_text(errors="replace"))
    present = {p.relative_to(folder).as_posix() for p in files} - {SUMS}
    if set(listed) != present:
        raise InputError(
            f"{folder}: {SUMS} and the files differ (missing: {sorted(set(listed) - present)}; "
            f"unlisted: {sorted(present - set(listed))}); the bundle is incomplete or altered"
        )
    for rel, digest in listed.items():
        if sha256_of(folder / rel) != digest:
            raise InputError(f"{folder / rel}: sha256 differs from {SUMS}; the bundle was altered")
    model = ExportedModel(folder)
    card = model.info.card
    missing = [k for k in CARD_KEYS if not (card or {}).get(k)]
    if card is None or missing:
        raise InputError(
            f"{folder}: its model card lacks {missing} (a bundle says what it learned from, "
            "under which licences, what it is for and where it fails; export with --card)"
        )
    data = card["data"]
    if not isinstance(data, dict) or not all(isinstance(v, dict) and v.get("citation")
                                             for v in data.values()):  # fmt: skip
        raise InputError(f"{folder}: the card's data must name each cohort with its citation")
    return model


def _unpack(archive: Path, into: Path) -> Path:
    """Extract an archive's regular files inside ``into``; return the bundle folder in it
    (the one holding ``SHA256SUMS``: its root or its one top folder)."""
    name = archive.name.lower()
    if name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            _check_members([(m.filename, m.file_size) for m in members], archive)
            for m in members:
                with zf.open(m) as src:
                    _write_member(src, into / m.filename)
    elif name.endswith(ARCHIVES[1:]):
        with tarfile.open(archive) as tf:
            entries = [m for m in tf.getmembers() if not m.isdir()]
            if not all(m.isfile() for m in entries):
                raise InputError(f"{archive}: holds links or devices; a bundle holds files only")
            _check_members([(m.name, m.size) for m in entries], archive)
            for entry in entries:
                data = tf.extractfile(entry)
                assert data is not None  # a regular file
                with data:
                    _write_member(data, into / entry.name)
    else:
        raise InputError(f"{archive}: not a bundle folder or an archive ({', '.join(ARCHIVES)})")
    if (into / SUMS).is_file():
        return into
    tops = [p for p in into.iterdir() if p.is_dir()]
    if len(tops) == 1 and (tops[0] / SUMS).is_file():
        return tops[0]
    raise InputError(f"{archive}: no {SUMS} at its root or in its one top folder")


def _write_member(src: IO[bytes], target: Path) -> None:
    """One archive member as a plain file (its name already checked to stay inside), at
    most :data:`MAX_BUNDLE_BYTES` whatever its header claimed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as dst:
        copied = 0
        for block in iter(lambda: src.read(1 << 20), b""):
            copied += len(block)
            if copied > MAX_BUNDLE_BYTES:
                raise InputError(f"{target.name}: larger than its archive said; refused")
            dst.write(block)


def _check_members(members: list[tuple[str, int]], archive: Path) -> None:
    if len(members) > MAX_FILES or sum(size for _, size in members) > MAX_BUNDLE_BYTES:
        raise InputError(f"{archive}: more than {MAX_FILES} files or {MAX_BUNDLE_BYTES >> 20} MB")
    for member, _ in members:
        parts = Path(member).parts
        if Path(member).is_absolute() or ".." in parts or not parts:
            raise InputError(f"{archive}: member {member[:80]!r} would land outside; refused")


def add_model(
    source: str,
    sha256: str | None = None,
    name: str | None = None,
    root: Path | None = None,
    force: bool = False,
) -> tuple[str, Path]:
    """Install a bundle from a folder, an archive or a URL (module docstring).

    Parameters
    ----------
    source : folder, archive file, or http(s) URL of an archive
    sha256 : the archive's digest; required for a URL, checked for a file
    name : installed name (default: the card's ``name``)
    root : where to install (default :func:`models_dir`)
    force : replace an installed model of that name

    Returns
    -------
    name, folder : the installed model's name and where it is

    Raises
    ------
    UsageError
        A URL without ``sha256``, a digest for a folder, a shipped model's name, a name
        already installed (without ``force``).
    InputError
        The bundle fails :func:`check_bundle`, a digest differs, a download fails.
    """
    from edgesleep.io.dataset import plain_name

    if sha256 is not None and (len(sha256) != 64 or any(c not in "0123456789abcdef"
                                                         for c in sha256.lower())):  # fmt: skip
        raise UsageError(
            f"--sha256 {sha256[:80]!r}: give the 64 hex digits of the archive's sha256"
        )
    with tempfile.TemporaryDirectory(prefix="edgesleep-bundle-") as tmp:
        work = Path(tmp)
        if source.startswith(("http://", "https://")):
            if sha256 is None:
                raise UsageError(
                    f"{source}: a model from a URL is installed only with its digest pinned: "
                    "pass --sha256 (published beside the bundle)"
                )
            leaf = source.rstrip("/").rsplit("/", 1)[-1] or "bundle.zip"
            archive = download(source, work / "download" / leaf, sha256.lower())
            folder = _unpack(archive, work / "unpacked")
        elif Path(source).is_dir():
            if sha256 is not None:
                raise UsageError("--sha256 pins an archive's digest; a folder's files are "
                                 f"checked against its {SUMS}")  # fmt: skip
            folder = Path(source)
        elif Path(source).is_file():
            if sha256 is not None and sha256_of(Path(source)) != sha256.lower():
                raise InputError(f"{source}: sha256 differs from --sha256; refused")
            (work / "unpacked").mkdir()
            folder = _unpack(Path(source), work / "unpacked")
        else:
            raise InputError(f"{source}: no such folder or file, and not an http(s) URL")
        model = check_bundle(folder)
        card = model.info.card or {}
        chosen = plain_name(name or str(card.get("name", "")), "the model's name")
        if chosen in shipped_names():
            raise UsageError(f"{chosen!r} is a shipped model's name; pass --name to pick another")
        dest_root = models_dir(root)
        dest = dest_root / chosen
        if dest.exists() and not force:
            raise UsageError(
                f"{chosen!r} is installed already ({dest}); pass --force to replace it"
            )
        dest_root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{chosen}.", dir=dest_root))
        shutil.copytree(folder, staging, dirs_exist_ok=True)
        check_bundle(staging)  # what landed is what was checked
        if dest.exists():
            shutil.rmtree(dest)
        staging.rename(dest)
    return chosen, dest


def remove_model(name: str, root: Path | None = None) -> Path:
    """Remove an installed model; return the folder that was removed.

    Raises
    ------
    UsageError
        A shipped model, or no installed model of that name (the installed ones are named).
    """
    if name in shipped_names():
        raise UsageError(f"{name!r} is shipped with edgesleep and cannot be removed")
    if name not in installed_names(root):
        raise UsageError(f"no installed model {name!r}; installed: {installed_names(root)}")
    folder = models_dir(root) / name
    shutil.rmtree(folder)
    return folder


def write_sums(folder: Path) -> Path:
    """Write ``folder/SHA256SUMS`` for every file under ``folder`` (a bundle's manifest)."""
    lines = [f"{sha256_of(p)}  {p.relative_to(folder).as_posix()}"
             for p in sorted(folder.rglob("*")) if p.is_file() and p.name != SUMS]  # fmt: skip
    (folder / SUMS).write_text("\n".join(lines) + "\n")
    return folder / SUMS
