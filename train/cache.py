"""The feature cache: each night's model input computed once, stored as a memory-mappable
array, read lazily by training, cross-validation, distillation and evaluation.

::

    CACHE/                          default: DATASET/cache (or $EDGESLEEP_CACHE)
      <kind>-<dsp hash>/            one folder per input kind and DSP version
        <record>.<key>.npy          images (n_epochs, n_frames, n_freqs), float32
        <record>.<key>.json         the index entry: record, subject, channel, kind, crop,
                                    DSP hash, the source's identity, stages per epoch

``key`` hashes (record, channel, crop, labelled). The DSP hash covers the input kind's
parameters (its export metadata), :data:`CACHE_VERSION` and the package version, so a
changed STFT or pipeline never reads stale images. An entry whose source changed (path,
size or modification time of the recording or hypnogram, lights-off/on) is recomputed.
Entries are written atomically (the ``.npy`` first, then its ``.json``), so several
processes (``--jobs``, a cluster array job's shards) may fill one cache.

Sources are whatever a dataset's manifest points at (paths relative to the dataset or
absolute, anywhere), read through the input kind: the cache never reads a file itself.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import edgesleep
from edgesleep.dsp import EPOCH_SAMPLES
from edgesleep.dsp.inputs import HEART, get_kind
from edgesleep.errors import InputError, UsageError
from edgesleep.io import wfdb_record
from edgesleep.io.dataset import Crop, Dataset, Entry, crop_epochs, load_night, read_recording
from edgesleep.io.heart import SERIES_SUFFIXES, read_series
from edgesleep.io.hypnogram import read_hypnogram

log = logging.getLogger("edgesleep")
CACHE_VERSION = 1  # bump when the pipeline from file to image changes outside the kind
ENV = "EDGESLEEP_CACHE"


@dataclass(frozen=True)
class Request:
    """What to compute for a night: ``crop`` "unlabelled" reads the signal only."""

    channel: str
    kind: str
    crop: Crop | str


def cache_root(dataset: Dataset, cache: Path | None = None) -> Path:
    """Where a dataset's features live: ``cache``, else ``$EDGESLEEP_CACHE``, else
    ``DATASET/cache``, else (a read-only dataset) the user's cache directory."""
    if cache is not None:
        return cache
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    if os.access(dataset.root, os.W_OK):
        return dataset.root / "cache"
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    tag = hashlib.sha1(str(dataset.root.resolve()).encode()).hexdigest()[:12]
    return base / "edgesleep" / f"{dataset.root.name}-{tag}"


def dsp_hash(kind: str) -> str:
    """12 hex digits identifying how ``kind``'s images are made."""
    spec = {"cache": CACHE_VERSION, "edgesleep": edgesleep.__version__, **get_kind(kind).spec()}
    return hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]


def _identity(dataset: Dataset, entry: Entry, labelled: bool) -> dict[str, Any]:
    """The source files (path, size, mtime) and lights a night's features depend on."""

    def stat(rel: str) -> list[Any]:
        path = (dataset.root / rel).resolve()
        st = path.stat()
        return [str(path), st.st_size, st.st_mtime_ns]

    ident: dict[str, Any] = {"psg": stat(entry.psg)}
    if wfdb_record.is_wfdb(entry.psg):  # the header's signal files hold the samples
        files = [str(Path(entry.psg).with_suffix(ext)) for ext in (".mat", ".dat")]
        ident["signals"] = [stat(f) for f in files if (dataset.root / f).is_file()]
    if labelled:
        ident["hypnogram"] = stat(entry.hypnogram)
        ident["lights"] = [entry.lights_off_s, entry.lights_on_s]
    return ident


def entry_paths(root: Path, entry: Entry, req: Request) -> tuple[Path, Path]:
    """The ``.npy`` and ``.json`` of one night's features in cache ``root``."""
    folder = root / f"{req.kind}-{dsp_hash(req.kind)}"
    key = json.dumps([entry.record, req.channel, req.crop], separators=(",", ":"))
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    stem = f"{re.sub(r'[^A-Za-z0-9_-]+', '_', entry.record)}.{digest}"
    return folder / f"{stem}.npy", folder / f"{stem}.json"


def lookup(root: Path, dataset: Dataset, entry: Entry, req: Request) -> dict[str, Any] | None:
    """The index entry of a night whose cached features are current, else None."""
    npy, meta = entry_paths(root, entry, req)
    if not (meta.is_file() and npy.is_file()):
        return None
    try:
        index = json.loads(meta.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    current = index.get("source") == _identity(dataset, entry, req.crop != "unlabelled")
    return index if current else None


def compute(root: Path, dataset: Dataset, entry: Entry, req: Request) -> dict[str, Any]:
    """Compute one night's images, write them and their index entry; return the entry."""
    make = get_kind(req.kind).images
    labelled = req.crop != "unlabelled"
    if Path(entry.psg).suffix.lower() in SERIES_SUFFIXES:
        images, stages, first = _series_night(dataset, entry, req)
    elif labelled:
        night = load_night(dataset, entry, req.channel, req.crop)  # type: ignore[arg-type]
        if not night.contiguous and not get_kind(req.kind).epoch_local:
            raise InputError(
                f"{entry.record}: its scored epochs overlap or leave gaps (e.g. MASS's 20-s "
                f"epochs, expanded to 30 s), so the {req.kind!r} input, which reads context "
                "across epochs, cannot be made from them; use --input stft, or nights scored "
                "in consecutive 30-s epochs"
            )
        images, stages, first = make(night.signal), night.stages, night.first_epoch
    else:
        signal = read_recording(dataset.root / entry.psg, dataset.channel(req.channel)).data
        images = make(signal[: signal.shape[0] // EPOCH_SAMPLES * EPOCH_SAMPLES])
        stages, first = np.full(images.shape[0], -2, dtype=np.int8), 0
    npy, meta = entry_paths(root, entry, req)
    npy.parent.mkdir(parents=True, exist_ok=True)
    tmp = npy.with_name(f"{npy.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as fh:
        np.save(fh, np.ascontiguousarray(images, dtype=np.float32))
    os.replace(tmp, npy)
    index = {
        "record": entry.record,
        "subject": entry.subject,
        "channel": req.channel,
        "kind": req.kind,
        "crop": req.crop,
        "dsp": dsp_hash(req.kind),
        "n_epochs": int(images.shape[0]),
        "first_epoch": int(first),
        "source": _identity(dataset, entry, labelled),
        "stages": [int(s) for s in stages],
    }
    tmp = meta.with_name(f"{meta.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(index) + "\n")
    os.replace(tmp, meta)
    log.debug("%s: %d epochs of %r cached", entry.record, images.shape[0], req.channel)
    return index


def _series_night(
    dataset: Dataset, entry: Entry, req: Request
) -> tuple[np.ndarray, np.ndarray, int]:
    """Images, stages and first kept epoch of a night recorded as a heart time series."""
    kind = get_kind(req.kind)
    series = read_series(dataset.root / entry.psg)
    if series.source not in kind.series:
        raise InputError(
            f"{entry.psg}: a {series.source} series; {req.kind!r} input cannot be made from "
            f"it (only from a signal{''.join(', ' + n for n in kind.series)})"
        )
    if req.channel not in (series.source, HEART):
        raise InputError(
            f"{entry.record}: a {series.source} series has no channel {req.channel!r}; "
            f"use --channel {series.source} (or --channel {HEART}: any heart series)"
        )
    make = kind.series[series.source].images
    if req.crop == "unlabelled":
        images = make(series.time_s, series.values, None)
        return images, np.full(images.shape[0], -2, dtype=np.int8), 0
    stages = read_hypnogram(dataset.root / entry.hypnogram)
    images = make(series.time_s, series.values, stages.shape[0])
    keep = crop_epochs(entry, stages, req.crop)  # type: ignore[arg-type]
    return images[keep], stages[keep], keep.start


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` (1 <= I <= N) -> (I, N).

    Raises
    ------
    UsageError
        Anything else.
    """
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if match is None or not 1 <= int(match[1]) <= int(match[2]):
        raise UsageError(f"{text!r}: give I/N with 1 <= I <= N, e.g. 2/8 (the second of 8)")
    return int(match[1]), int(match[2])


def shard(entries: Sequence[Entry], part: tuple[int, int]) -> list[Entry]:
    """Part I of N of the entries (sorted by record, every N-th from the I-th): the parts
    are disjoint and cover them all."""
    i, n = part
    return sorted(entries, key=lambda e: e.record)[i - 1 :: n]


def _compute_job(args: tuple[Path, Dataset, Entry, Request]) -> dict[str, Any]:
    return compute(*args)


def ensure(
    dataset: Dataset,
    entries: Sequence[Entry],
    req: Request,
    cache: Path | None = None,
    jobs: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> list[tuple[Path, dict[str, Any]]]:
    """The cached features of ``entries`` (computing what is missing or stale, over ``jobs``
    processes); for each entry in order, its ``.npy`` path and index entry."""
    get_kind(req.kind)  # an unknown kind is refused before any work
    root = cache_root(dataset, cache)
    found = {e.record: lookup(root, dataset, e, req) for e in entries}
    missing = [e for e in entries if found[e.record] is None]
    if missing:
        log.info("computing %d of %d nights' %s features into %s", len(missing), len(entries),
                 req.kind, root)  # fmt: skip
    done = 0
    if jobs > 1 and len(missing) > 1:
        context = multiprocessing.get_context("spawn")  # no fork of a process holding torch
        with ProcessPoolExecutor(min(jobs, len(missing)), mp_context=context) as pool:
            work = [(root, dataset, e, req) for e in missing]
            for entry, index in zip(missing, pool.map(_compute_job, work), strict=True):
                found[entry.record], done = index, done + 1
                if progress is not None:
                    progress(done, len(missing))
    else:
        for entry in missing:
            found[entry.record], done = compute(root, dataset, entry, req), done + 1
            if progress is not None:
                progress(done, len(missing))
    return [(entry_paths(root, e, req)[0], found[e.record] or {}) for e in entries]
