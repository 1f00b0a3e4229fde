"""The dataset layout that ``--data DIR`` reads and ``data synth`` / ``data fetch`` write.

::

    DIR/
      dataset.json    {"layout": 1, "name": ..., "synthetic": bool, "citation": ..., ...}
      manifest.csv    record,subject,night,psg,hypnogram,lights_off_s,lights_on_s
      psg/            recordings (EDF/EDF+)
      hypnograms/     EDF+ stage annotations (may be the recording itself)

``psg`` and ``hypnogram`` are paths relative to DIR (or absolute: signals stored
elsewhere). ``psg`` is an EDF/EDF+ recording, a WFDB record's header (``.hea``:
:mod:`edgesleep.io.wfdb_record`), or a heart time series (a beat or heart-rate
CSV with its header line, :mod:`edgesleep.io.heart`: ``.csv``/``.txt``), whose "channel" is
its source name (``beats`` or ``heart-rate``); ``hypnogram`` is EDF+ annotations or a CSV
hypnogram (:func:`edgesleep.io.hypnogram.read_labels_csv`). ``subject`` groups nights of
one person, so splits can be subject-wise. ``lights_off_s`` / ``lights_on_s`` are seconds
from the recording start; empty when unknown (then the in-bed crop is the whole night).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
from collections import Counter
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from edgesleep.dsp import EPOCH_S, EPOCH_SAMPLES, SFREQ
from edgesleep.errors import InputError, UsageError
from edgesleep.io import edf, wfdb_record
from edgesleep.io.edf import Signal, read_signal
from edgesleep.io.hypnogram import (
    fit_to_signal,
    in_bed_epochs,
    read_hypnogram,
    read_scored,
    sleep_window_epochs,
)
from edgesleep.stages import STAGE_NAMES

log = logging.getLogger("edgesleep")

LAYOUT_VERSION = 1
MANIFEST = "manifest.csv"
INFO = "dataset.json"
Crop = Literal["in-bed", "sleep", "none"]
# "grid": 30-s epochs from the recording start; "annotated": a 30-s window around each
# stage annotation at its own onset (MASS; 20-s epochs get 5 s either side)
Epochs = Literal["grid", "annotated"]


@dataclass(frozen=True)
class Entry:
    """One night of a dataset (a row of ``manifest.csv``)."""

    record: str
    subject: str
    night: int
    psg: str
    hypnogram: str
    lights_off_s: float | None = None
    lights_on_s: float | None = None
    epochs: Epochs = "grid"


@dataclass(frozen=True)
class Dataset:
    root: Path
    info: dict[str, object]
    entries: tuple[Entry, ...]

    @property
    def synthetic(self) -> bool:
        return bool(self.info.get("synthetic", False))

    @property
    def subjects(self) -> list[str]:
        return sorted({e.subject for e in self.entries})

    def channel(self, name: str) -> str:
        """The label ``name`` stands for in this dataset's recordings: its
        ``dataset.json`` ``channel_aliases`` (e.g. CinC 2018's ``"Fpz-Cz": "F4-M1"``, the
        frontal derivation that stands in for Sleep-EDF's), else ``name`` itself."""
        aliases = self.info.get("channel_aliases")
        if isinstance(aliases, dict):
            for alias, label in aliases.items():
                if str(alias).strip().lower() == name.strip().lower() and isinstance(label, str):
                    return label
        return name


@dataclass(frozen=True)
class Night:
    """One night cut into whole epochs, cropped.

    Attributes
    ----------
    signal : ndarray of shape (n_epochs * 3000,), float64, µV at 100 Hz
    stages : ndarray of shape (n_epochs,), int8, YASA stage integers
    first_epoch : int
        Index of the first kept epoch in the uncropped recording (its scored epochs, for an
        "annotated" entry).
    contiguous : bool
        Whether the epochs follow each other in time without gap or overlap (False for
        expanded 20-s epochs): input kinds with context across epochs need it.
    """

    record: str
    subject: str
    channel: str
    signal: np.ndarray
    stages: np.ndarray
    first_epoch: int
    contiguous: bool = True

    @property
    def n_epochs(self) -> int:
        return int(self.stages.shape[0])


PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def plain_name(name: str, where: Path | str) -> str:
    """``name`` if it is a plain file name (letters, digits, ``._-``; no path, no ``..``),
    as every id an importer turns into a path must be.

    Raises
    ------
    InputError
        Naming the id and where it was listed.
    """
    if not PLAIN_NAME.fullmatch(name) or ".." in name:
        raise InputError(
            f"{where}: the id {name[:80]!r} is not a plain name (letters, digits, '.', '_', "
            "'-'); refusing to make a path of it"
        )
    return name


def write_dataset(root: Path, entries: list[Entry], info: dict[str, object]) -> None:
    """Write ``manifest.csv`` and ``dataset.json`` (the recordings must already be there)."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / MANIFEST).open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[f.name for f in fields(Entry)])
        writer.writeheader()
        for entry in entries:
            row = {k: ("" if v is None else v) for k, v in asdict(entry).items()}
            writer.writerow(row)
    (root / INFO).write_text(json.dumps({"layout": LAYOUT_VERSION, **info}, indent=2) + "\n")


def manifest_path(path: Path, out: Path) -> str:
    """``path`` as the manifest of dataset folder ``out`` holds it: relative to ``out``
    (a manifest may point at files outside its folder, e.g. an imported cohort's)."""
    out.mkdir(parents=True, exist_ok=True)
    return os.path.relpath(path.resolve(), out.resolve())


def merge_datasets(
    sources: dict[str, Path], out: Path, extra_info: dict[str, object] | None = None
) -> Dataset:
    """One dataset over several (no copy: the manifest points at their files, relative to
    ``out``), e.g. two heart cohorts to train one model on.

    Records (``walch-101``) and subjects (``walch:101``) are prefixed with their dataset's
    name, so ids never collide and a subject stays one subject; ``dataset.json`` lists the
    sources, and the merge is synthetic if any source is.

    Parameters
    ----------
    sources : name -> dataset directory
    extra_info : more ``dataset.json`` fields (e.g. ``channel_aliases``)
    """
    if len(sources) < 2:
        raise UsageError("merging needs at least two datasets, given as NAME=DIR")
    out.mkdir(parents=True, exist_ok=True)
    entries, parts = [], {}
    for name, root in sources.items():
        dataset = read_dataset(root)
        base = Path(manifest_path(dataset.root, out))
        parts[name] = {"path": str(root), **dataset.info}
        entries += [replace(e, record=f"{name}-{e.record}", subject=f"{name}:{e.subject}",
                            psg=str(base / e.psg), hypnogram=str(base / e.hypnogram))
                    for e in dataset.entries]  # fmt: skip
    synthetic = any(bool(p.get("synthetic", False)) for p in parts.values())
    write_dataset(out, entries, {"name": "+".join(sources), "synthetic": synthetic,
                                 "merged": parts, **(extra_info or {})})  # fmt: skip
    return read_dataset(out)


def _epochs(text: str, root: Path) -> Epochs:
    if text not in get_args(Epochs):
        raise InputError(f"{root / MANIFEST}: epochs {text!r}; expected one of {get_args(Epochs)}")
    return text  # type: ignore[return-value]


def _optional_float(text: str) -> float | None:
    return float(text) if text.strip() else None


def read_dataset(root: str | Path) -> Dataset:
    """Read a dataset directory's manifest and info.

    Raises
    ------
    InputError
        If DIR is not a dataset or a listed file is missing.
    """
    root = Path(root)
    if not (root / MANIFEST).is_file():
        raise InputError(
            f"{root}: not an edgesleep dataset (no {MANIFEST}); make one with "
            "`edgesleep data synth --out DIR` or `edgesleep data fetch sleep-edf --out DIR`"
        )
    info = json.loads((root / INFO).read_text()) if (root / INFO).is_file() else {}
    entries = []
    with (root / MANIFEST).open(newline="") as fh:
        for row in csv.DictReader(fh):
            entries.append(
                Entry(
                    record=row["record"],
                    subject=row["subject"],
                    night=int(row["night"]),
                    psg=row["psg"],
                    hypnogram=row["hypnogram"],
                    lights_off_s=_optional_float(row.get("lights_off_s", "")),
                    lights_on_s=_optional_float(row.get("lights_on_s", "")),
                    epochs=_epochs(row.get("epochs") or "grid", root),
                )
            )
    missing = [e.psg for e in entries if not (root / e.psg).is_file()]
    if missing:
        raise InputError(
            f"{root}: {len(missing)} recordings in {MANIFEST} are missing: {missing[:5]}"
        )
    return Dataset(root=root, info=info, entries=tuple(entries))


def read_recording(path: Path, channel: str) -> Signal:
    """One channel of a manifest's recording at 100 Hz, µV: an EDF/EDF+ file or a WFDB
    record (``.hea``, :mod:`edgesleep.io.wfdb_record`)."""
    if wfdb_record.is_wfdb(path):
        return wfdb_record.read_signal(path, channel)
    return read_signal(path, channel)


def check_crop(crop: str) -> None:
    """Refuse a crop that is not one of ``Crop`` (:class:`UsageError`)."""
    if crop not in get_args(Crop):
        raise UsageError(f"--crop {crop!r}: choose one of {list(get_args(Crop))}")


def load_night(dataset: Dataset, entry: Entry, channel: str, crop: Crop = "in-bed") -> Night:
    """Read one night's channel at 100 Hz and its hypnogram, cut to whole epochs and cropped.

    Parameters
    ----------
    crop : {"in-bed", "sleep", "none"}
        "in-bed": lights-off to lights-on (whole night if unknown); "sleep": 30 min of wake
        around the sleep period; "none": the whole recording.
    """
    check_crop(crop)
    signal = read_recording(dataset.root / entry.psg, dataset.channel(channel))
    if entry.epochs == "annotated":
        return _annotated_night(dataset, entry, signal, crop)
    n_epochs = signal.data.shape[0] // EPOCH_SAMPLES
    hyp_path = dataset.root / entry.hypnogram
    stages = fit_to_signal(read_hypnogram(hyp_path), n_epochs, hyp_path)
    keep = crop_epochs(entry, stages, crop)
    return Night(
        record=entry.record,
        subject=entry.subject,
        channel=signal.channel,
        signal=signal.data[keep.start * EPOCH_SAMPLES : keep.stop * EPOCH_SAMPLES],
        stages=stages[keep],
        first_epoch=keep.start,
    )


def _annotated_night(dataset: Dataset, entry: Entry, signal: Signal, crop: Crop) -> Night:
    """A night scored at annotation onsets: one 30-s window per stage annotation (a 20-s
    epoch widened by 5 s either side, as seed 1 expands MASS's R&K epochs), the windows
    concatenated. Windows that would reach before the recording's start or past its end
    (annotations that overrun the signal) are dropped and counted in the log. The
    hypnogram is EDF+ stage annotations or a CSV with onsets (:func:`read_scored`)."""
    hyp_path = dataset.root / entry.hypnogram
    onsets, durations, stages = read_scored(hyp_path)
    starts = np.round((onsets - (EPOCH_S - durations) / 2) * SFREQ).astype(np.int64)
    inside = (starts >= 0) & (starts + EPOCH_SAMPLES <= signal.data.shape[0])
    if not inside.all():
        log.info("%s: %d of %d scored epochs reach past the recording; dropped",
                 entry.record, int((~inside).sum()), inside.size)  # fmt: skip
    starts, stages = starts[inside], stages[inside]
    keep = crop_epochs(entry, stages, crop, onsets[inside])
    starts, stages = starts[keep], stages[keep]
    windows = [signal.data[s : s + EPOCH_SAMPLES] for s in starts]
    return Night(
        record=entry.record,
        subject=entry.subject,
        channel=signal.channel,
        signal=np.concatenate(windows) if windows else np.zeros(0),
        stages=stages,
        first_epoch=keep.start,
        contiguous=bool(np.all(np.diff(starts) == EPOCH_SAMPLES)),
    )


def crop_epochs(
    entry: Entry, stages: np.ndarray, crop: Crop, onsets_s: np.ndarray | None = None
) -> slice:
    """The epochs a crop keeps of a night with ``stages`` (see :func:`load_night`); the
    epochs start at ``onsets_s`` (s, sorted) where they are not the 30-s grid from the
    recording start (an "annotated" entry)."""
    n_epochs = stages.shape[0]
    if crop == "in-bed" and entry.lights_off_s is not None and entry.lights_on_s is not None:
        if onsets_s is None:
            return in_bed_epochs(n_epochs, entry.lights_off_s, entry.lights_on_s)
        first = int(np.searchsorted(onsets_s, entry.lights_off_s - 1e-6))
        last = int(np.searchsorted(onsets_s + EPOCH_S, entry.lights_on_s + 1e-6, "right"))
        return slice(first, max(first, last))
    if crop == "sleep":
        return sleep_window_epochs(stages)
    return slice(0, n_epochs)


def describe(path: Path) -> tuple[str, list[str], list[list[str]], list[str]]:
    """What ``edgesleep data info`` shows of an EDF file or a dataset directory.

    Returns
    -------
    title, columns, rows : a table of the file's channels (no rows for a dataset)
    lines : annotation counts of the file, most frequent first
    """
    if path.is_dir():
        ds = read_dataset(path)
        kind = "SYNTHETIC" if ds.synthetic else "real"
        title = (
            f"{path}: {len(ds.entries)} nights, {len(ds.subjects)} subjects, {kind} "
            f"({ds.info.get('name', '?')})"
        )
        lines = [f"  {k}: {v}" for k, v in ds.info.items()
                 if k in ("subsets", "merged", "population", "licence")]  # fmt: skip
        failures = ds.info.get("failures")
        if isinstance(failures, dict) and failures:
            lines.append(f"  {len(failures)} records left out at import (dataset.json: failures)")
        return title, [], [], lines
    if path.suffix.lower() == ".xml":
        stages = read_hypnogram(path)
        counts = Counter(STAGE_NAMES[int(s)] for s in stages)
        lines = [f"  {n:6d}  {name}" for name, n in counts.most_common()]
        return f"{path.name}: NSRR stages, {stages.size} epochs of 30 s", [], [], lines
    if wfdb_record.is_wfdb(path):
        infos = wfdb_record.channels(path)
        rows = [[str(c.index), c.label, f"{c.sfreq:g}", c.unit, str(c.n_times)] for c in infos]
        title = f"{path.name}: WFDB record, {infos[0].n_times / infos[0].sfreq:.0f} s"
        return title, ["#", "channel", "Hz", "unit", "samples"], rows, []
    head = edf.header(path)
    rows = [
        [str(ch.index), ch.label, f"{ch.sfreq:g}", ch.unit, str(ch.n_times)]
        for ch in edf.channels(path)
    ]
    annotations = edf.read_annotations(path)
    counts = Counter(a.description for a in annotations)
    lines = [f"{len(annotations)} annotations" + (":" if counts else "")]
    lines += [f"  {n:6d}  {text}" for text, n in counts.most_common()]
    title = f"{path.name}: start {head['start']}, {head['duration_s']:.0f} s"
    return title, ["#", "channel", "Hz", "unit", "samples"], rows, lines
