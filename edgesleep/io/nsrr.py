"""NSRR cohorts (sleepdata.org: SHHS, MESA, CFS, CHAT, MrOS, ...), as distributed.

Each night is an EDF (``polysomnography/edfs/[visit/]<name>.edf``) and its NSRR XML
annotations (``polysomnography/annotations-events-nsrr/[visit/]<name>-nsrr.xml``, or
``<name>-nsrr.xml`` beside the EDF): ``PSGAnnotation/EpochLength`` and
``ScoredEvents/ScoredEvent`` elements whose ``EventType`` is ``Stages|Stages`` and whose
``EventConcept`` names the stage with its code after ``|`` (``Wake|0``, ``Stage 1
sleep|1`` ... ``Stage 4 sleep|4``, ``REM sleep|5``, ``Movement|6``, ``Unscored|9``), with
``Start`` and ``Duration`` in seconds from the recording start. Stage 3 and 4 -> N3;
movement and unscored -> unscored. The subject id is the file name's trailing number
(``shhs1-200001`` and ``shhs2-200001`` are one subject, two nights). ECG channels are
matched by the usual aliases (``ECG``, ``EKG``, ``ECG1``, ``ECG I``, ``ECG II``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from edgesleep.errors import InputError
from edgesleep.io.dataset import (
    Dataset,
    Entry,
    manifest_path,
    plain_name,
    read_dataset,
    write_dataset,
)
from edgesleep.io.hypnogram import read_nsrr_xml

TRAILING_ID = re.compile(r"(?P<id>\d+)$")  # the subject: the name's trailing number


def annotation_path(edf_path: Path) -> Path | None:
    """The NSRR XML of an EDF: under ``annotations-events-nsrr`` in place of ``edfs``, or
    beside it; None if neither exists."""
    name = f"{edf_path.stem}-nsrr.xml"
    parts = list(edf_path.parent.parts)
    if "edfs" in parts:
        i = len(parts) - 1 - parts[::-1].index("edfs")
        moved = Path(*parts[:i], "annotations-events-nsrr", *parts[i + 1 :]) / name
        if moved.is_file():
            return moved
    beside = edf_path.with_name(name)
    return beside if beside.is_file() else None


def import_nsrr(
    src: Path, out: Path, progress: Callable[[int, int], None] | None = None
) -> Dataset:
    """An NSRR cohort's EDFs and NSRR XML (module docstring) -> the dataset layout in
    ``out``: a manifest pointing at the original files (nothing is copied).

    Raises
    ------
    InputError
        No EDF under ``src``, an EDF without its XML (named), a name without a subject id.
    """
    edfs = sorted(p for p in src.rglob("*.[eE][dD][fF]") if "annotations" not in str(p.parent))
    if not edfs:
        raise InputError(f"{src}: no EDF files (expected polysomnography/edfs/...)")
    pairs = [(p, annotation_path(p)) for p in edfs]
    missing = [p.name for p, xml in pairs if xml is None]
    if missing:
        raise InputError(
            f"{src}: no NSRR XML for {missing[:5]} (expected "
            "polysomnography/annotations-events-nsrr/<name>-nsrr.xml or <name>-nsrr.xml "
            "beside the EDF)"
        )
    entries: list[Entry] = []
    nights: dict[str, int] = {}
    for i, (path, xml) in enumerate(pairs):
        match = TRAILING_ID.search(path.stem)
        if match is None:
            raise InputError(f"{path}: no subject id (a trailing number) in the file name")
        subject = match["id"]
        nights[subject] = nights.get(subject, 0) + 1
        assert xml is not None  # checked above
        read_nsrr_xml(xml)  # refuses a bad file at import time
        entries.append(Entry(plain_name(path.stem, path), subject, nights[subject],
                             manifest_path(path, out),
                             manifest_path(xml, out)))  # fmt: skip
        if progress is not None:
            progress(i + 1, len(pairs))
    write_dataset(out, entries, {"name": f"nsrr:{src.name}", "synthetic": False,
                                 "source": str(src),
                                 "citation": "Zhang GQ et al. The National Sleep Research "
                                 "Resource. JAMIA 25(10):1351-1358 (2018); and the cohort's "
                                 "own reference"})  # fmt: skip
    return read_dataset(out)
