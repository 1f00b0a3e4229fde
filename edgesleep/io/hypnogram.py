"""Hypnograms: EDF+ stage annotations or CSV labels -> one stage per 30-s epoch, fitting
and cropping.

A hypnogram is an int8 array of YASA stage integers, epoch ``i`` covering
``[i * 30, (i + 1) * 30)`` seconds from the recording start.
"""

from __future__ import annotations

import csv
import logging
import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgesleep.dsp import EPOCH_S
from edgesleep.errors import InputError
from edgesleep.io.edf import Annotation, read_annotations
from edgesleep.stages import (
    ARTEFACT,
    CLASS_LABELS,
    MAX_NIGHT_S,
    N1,
    N2,
    N3,
    REM,
    UNSCORED,
    W,
    stage_from_string,
)

log = logging.getLogger("edgesleep")

_STAGE_PREFIXES = ("sleep stage", "movement time")


def _is_stage_annotation(description: str) -> bool:
    return description.strip().lower().startswith(_STAGE_PREFIXES)


def on_epoch_grid(annotation: Annotation) -> bool:
    """Onset and duration are whole 30-s epochs from the recording start."""
    first, n = annotation.onset_s / EPOCH_S, annotation.duration_s / EPOCH_S
    return abs(first - round(first)) <= 1e-6 and abs(n - round(n)) <= 1e-6


def stages_from_annotations(
    annotations: Sequence[Annotation], source: str | Path = ""
) -> np.ndarray:
    """One stage per 30-s epoch from "Sleep stage ..." / "Movement time" annotations.

    Annotations that are not stages (lights, events) are ignored; epochs no stage
    annotation covers are unscored (-2).

    Parameters
    ----------
    annotations : sequence of Annotation
        Onsets and durations in s from the recording start, multiples of 30 s.
    source : path-like
        Named in error messages.

    Returns
    -------
    ndarray of shape (n_epochs,), int8
        YASA stage integers; R&K 4 -> N3, movement and "?" -> unscored.
    """
    staged = [a for a in annotations if _is_stage_annotation(a.description)]
    if not staged:
        raise InputError(f"{source}: no sleep-stage annotations ('Sleep stage W', ...) found")
    end_s = max(a.onset_s + a.duration_s for a in staged)
    stages = np.full(int(round(end_s / EPOCH_S)), UNSCORED, dtype=np.int8)
    for a in staged:
        first, n = a.onset_s / EPOCH_S, a.duration_s / EPOCH_S
        if not on_epoch_grid(a):
            raise InputError(
                f"{source}: stage annotation {a.description!r} at {a.onset_s} s lasting "
                f"{a.duration_s} s is not on the 30-s epoch grid"
            )
        try:
            stage = stage_from_string(a.description)
        except ValueError as err:
            raise InputError(f"{source}: {err}") from None
        stages[int(round(first)) : int(round(first + n))] = stage
    return stages


def scored_epochs(
    annotations: Sequence[Annotation], source: str | Path = ""
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every stage annotation as a scored epoch at its own onset (MASS: 30-s epochs that
    need not start on a 30-s grid from the recording start, or 20-s R&K epochs).

    Returns
    -------
    onset_s : ndarray of shape (n_epochs,), float64, s from the recording start, sorted
    duration_s : ndarray of shape (n_epochs,), float64 (20 or 30)
    stages : ndarray of shape (n_epochs,), int8, YASA integers (R&K 4 -> N3; "?" and
        movement -> unscored)

    Raises
    ------
    InputError
        No stage annotation, an unknown stage, or an epoch that is neither 20 nor 30 s.
    """
    staged = sorted((a for a in annotations if _is_stage_annotation(a.description)),
                    key=lambda a: a.onset_s)  # fmt: skip
    if not staged:
        raise InputError(f"{source}: no sleep-stage annotations ('Sleep stage W', ...) found")
    durations = np.array([a.duration_s for a in staged])
    odd = ~np.isclose(durations, 20.0) & ~np.isclose(durations, EPOCH_S)
    if odd.any():
        raise InputError(
            f"{source}: stage annotations of {sorted(set(durations[odd].tolist()))} s; "
            "scored epochs must last 20 s (R&K, expanded to 30 s) or 30 s"
        )
    try:
        stages = np.array([stage_from_string(a.description) for a in staged], dtype=np.int8)
    except ValueError as err:
        raise InputError(f"{source}: {err}") from None
    return np.array([a.onset_s for a in staged]), durations, stages


def read_scored(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The scored epochs of a hypnogram at their own onsets (:func:`scored_epochs`): the
    stage annotations of an EDF+ file, or the rows of a CSV hypnogram (``onset``,
    ``duration``, ``label``: five stage names, UNS, ART, or any annotation
    :func:`edgesleep.stages.stage_from_string` reads) whose onsets need not lie on a 30-s
    grid from the recording start.

    Returns
    -------
    onset_s, duration_s, stages : as :func:`scored_epochs`

    Raises
    ------
    InputError
        As :func:`scored_epochs`; for a CSV, missing columns or a bad row (its line named).
    """
    path = Path(path)
    if path.suffix.lower() != ".csv":
        return scored_epochs(read_annotations(path), path)
    try:
        with path.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read it as a CSV hypnogram ({err})") from None
    scored = []
    for line, row in enumerate(rows, 2):
        try:
            label = str(row["label"]).strip()
            code = {"UNS": UNSCORED, "ART": ARTEFACT}.get(label.upper())
            stage = code if code is not None else stage_from_string(label)
            scored.append((float(row["onset"]), float(row["duration"]), stage))
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(
                f"{path}, line {line}: {err}; a scored-epoch CSV has onset, duration, label"
            ) from None
    if not scored:
        raise InputError(f"{path}: no scored epochs")
    onsets, durations, stages = (np.array(column) for column in zip(*sorted(scored), strict=True))
    if not np.allclose(durations, EPOCH_S) or not np.all(np.isfinite(onsets)):
        raise InputError(f"{path}: epochs must last 30 s at finite onsets")
    return onsets.astype(np.float64), durations.astype(np.float64), stages.astype(np.int8)


def centre_stages(onset_s: np.ndarray, duration_s: np.ndarray, stages: np.ndarray,
                  ) -> np.ndarray:  # fmt: skip
    """Scored epochs anywhere in time (:func:`scored_epochs`) onto 30-s epochs from the
    recording start: each takes the stage of the scored epoch that holds its centre
    (unscored where none does).

    Returns
    -------
    ndarray of shape (n_epochs,), int8
    """
    end_s = float(np.max(onset_s + duration_s)) if onset_s.size else 0.0
    centres = (np.arange(int(end_s // EPOCH_S)) + 0.5) * EPOCH_S
    at = np.searchsorted(onset_s, centres, side="right") - 1  # the last epoch begun by then
    inside = (at >= 0) & (centres < onset_s[np.maximum(at, 0)] + duration_s[np.maximum(at, 0)])
    return np.where(inside, stages[np.maximum(at, 0)], UNSCORED).astype(np.int8)


NSRR_CODES = {0: W, 1: N1, 2: N2, 3: N3, 4: N3, 5: REM, 6: UNSCORED, 9: UNSCORED}


MAX_XML_BYTES = 64 * 2**20  # NSRR's annotation files are a few MB at most


def read_nsrr_xml(path: str | Path) -> np.ndarray:
    """One stage per 30-s epoch from the recording start, from an NSRR XML file
    (:mod:`edgesleep.io.nsrr`: ``ScoredEvent`` elements of type ``Stages|Stages``).

    Nothing in the file is trusted: it is parsed incrementally (each event dropped once
    read) and at most ``MAX_XML_BYTES``; a DOCTYPE (entities: the "billion laughs") is
    refused; every ``Start`` and ``Duration`` must be a finite number within a night
    (``MAX_NIGHT_S``) and ``EpochLength`` 30.

    Returns
    -------
    ndarray of shape (n_epochs,), int8, YASA integers; epochs no stage event covers are
        unscored

    Raises
    ------
    InputError
        Not NSRR XML, too large, a DOCTYPE, no stage events, an epoch length other than
        30 s, an unknown stage code, a time out of bounds, or a stage event off the 30-s
        grid.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_XML_BYTES:
            raise InputError(f"{path}: {size / 2**20:.0f} MB; an NSRR annotation file is at "
                             f"most {MAX_XML_BYTES // 2**20} MB")  # fmt: skip
        events, epoch = _nsrr_events(path)
    except (ET.ParseError, OSError) as err:
        raise InputError(f"{path}: not readable as NSRR XML ({err})") from None
    if epoch is not None:
        try:
            length = float(epoch)
        except ValueError:
            raise InputError(f"{path}: EpochLength {epoch[:40]!r} is not a number") from None
        if abs(length - EPOCH_S) > 1e-6:
            raise InputError(f"{path}: EpochLength {epoch[:40]} s; edgesleep stages 30-s epochs")
    if not events:
        raise InputError(f"{path}: no stage events (EventType 'Stages|Stages')")
    for start, duration, _, concept in events:
        if not (0 <= start <= MAX_NIGHT_S and 0 < duration <= MAX_NIGHT_S - start):
            raise InputError(
                f"{path}: stage event {concept!r} at Start {start:g} s lasting {duration:g} s "
                f"lies outside a night of {MAX_NIGHT_S / 3600:g} h"
            )
    stages = np.full(int(round(max(a + n for a, n, _, _ in events) / EPOCH_S)), UNSCORED,
                     dtype=np.int8)  # fmt: skip
    for start, duration, stage, concept in events:
        first, n = start / EPOCH_S, duration / EPOCH_S
        if abs(first - round(first)) > 1e-6 or abs(n - round(n)) > 1e-6:
            raise InputError(
                f"{path}: stage event {concept!r} at {start} s lasting "
                f"{duration} s is not on the 30-s epoch grid"
            )
        stages[int(round(first)) : int(round(first + n))] = stage
    return stages


def _nsrr_events(path: Path) -> tuple[list[tuple[float, float, int, str]], str | None]:
    """The stage events (start s, duration s, stage, concept) and EpochLength of an NSRR
    XML file, read in pieces."""
    parser: ET.XMLPullParser = ET.XMLPullParser(events=("end",))
    events: list[tuple[float, float, int, str]] = []
    epoch: str | None = None
    tail = b""
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 16):
            seen = (tail + chunk).upper()
            if b"<!DOCTYPE" in seen or b"<!ENTITY" in seen:
                raise InputError(f"{path}: a DOCTYPE or ENTITY declaration; NSRR XML has none "
                                 "(refused: entities can expand without bound)")  # fmt: skip
            tail = chunk[-16:]
            parser.feed(chunk)
            for item in parser.read_events():
                element: Any = item[-1]  # ("end", element): the only events asked for
                if element.tag == "EpochLength":
                    epoch = (element.text or "").strip()
                elif element.tag == "ScoredEvent":
                    stage = _stage_event(path, element)
                    if stage is not None:
                        events.append(stage)
                    element.clear()
        parser.close()
    return events, epoch


def _stage_event(path: Path, event: ET.Element) -> tuple[float, float, int, str] | None:
    if (event.findtext("EventType") or "").split("|")[0].strip().lower() != "stages":
        return None
    concept = (event.findtext("EventConcept") or "")[:100]
    code = concept.rsplit("|", 1)[-1].strip()
    if not code.isdigit() or int(code) not in NSRR_CODES:
        raise InputError(f"{path}: unknown stage concept {concept!r}")
    try:
        start = float(event.findtext("Start") or "")
        duration = float(event.findtext("Duration") or "")
    except ValueError:
        raise InputError(f"{path}: stage event {concept!r} without a numeric Start and "
                         "Duration") from None  # fmt: skip
    if not (math.isfinite(start) and math.isfinite(duration)):
        raise InputError(f"{path}: stage event {concept!r} with Start {start} and Duration "
                         f"{duration}: not finite")  # fmt: skip
    return start, duration, NSRR_CODES[int(code)], concept


def read_hypnogram(path: str | Path) -> np.ndarray:
    """Read the stage annotations of an EDF+ file (a Sleep-EDF hypnogram or any EDF+), the
    stages of a CSV hypnogram (:func:`read_labels_csv`, 5 stages) or of an NSRR XML file
    (:func:`read_nsrr_xml`).

    Returns
    -------
    ndarray of shape (n_epochs,), int8
    """
    if Path(path).suffix.lower() == ".xml":
        return read_nsrr_xml(path)
    if Path(path).suffix.lower() == ".csv":
        values, n_classes = read_labels_csv(path)
        if n_classes != 5:
            raise InputError(
                f"{path}: holds {CLASS_LABELS[n_classes]} labels; a hypnogram for training "
                "needs the five stages (W, N1, N2, N3, REM)"
            )
        return values
    return stages_from_annotations(read_annotations(path), path)


def fit_to_signal(stages: np.ndarray, n_epochs: int, source: str | Path = "") -> np.ndarray:
    """Make a hypnogram as long as the signal's whole epochs.

    Trailing unscored epochs past the signal (Sleep-EDF hypnograms run on to 24 h with
    "Sleep stage ?") are trimmed with an info log, and so is one scored epoch (the signal's
    last, partial epoch: NSRR scores it); a hypnogram shorter than the signal is padded
    with unscored epochs.

    Raises
    ------
    InputError
        If more than one scored epoch lies beyond the end of the signal.
    """
    if stages.shape[0] > n_epochs:
        beyond = stages[n_epochs:]
        n_scored = int(np.count_nonzero(beyond != UNSCORED))
        if n_scored > 1:
            raise InputError(
                f"{source}: {n_scored} scored epochs lie beyond the end of the signal "
                f"({stages.shape[0]} epochs scored, signal has {n_epochs}); "
                "is this the right hypnogram for this recording?"
            )
        log.info("%s: trimmed %d epochs past the end of the signal (%d scored)", source,
                 beyond.shape[0], n_scored)  # fmt: skip
        return stages[:n_epochs].copy()
    if stages.shape[0] < n_epochs:
        pad = np.full(n_epochs - stages.shape[0], UNSCORED, dtype=np.int8)
        return np.concatenate([stages, pad])
    return stages.copy()


def in_bed_epochs(n_epochs: int, lights_off_s: float, lights_on_s: float) -> slice:
    """Epochs wholly between lights-off and lights-on (s from the recording start)."""
    first = int(np.ceil(lights_off_s / EPOCH_S - 1e-9))
    last = int(np.floor(lights_on_s / EPOCH_S + 1e-9))
    first, last = max(first, 0), min(last, n_epochs)
    if last <= first:
        raise InputError(
            f"in-bed period {lights_off_s:.0f}-{lights_on_s:.0f} s holds no whole epoch of "
            f"a {n_epochs}-epoch recording"
        )
    return slice(first, last)


def sleep_window_epochs(stages: np.ndarray, margin_s: float = 1800.0) -> slice:
    """Epochs from ``margin_s`` before the first to ``margin_s`` after the last sleep epoch.

    The "±30 min of wake" protocol of TinySleepNet/L-SeqSleepNet.
    """
    asleep = np.flatnonzero(stages > W)
    if asleep.size == 0:
        raise InputError("the hypnogram has no sleep epoch: cannot crop around sleep")
    margin = int(round(margin_s / EPOCH_S))
    return slice(max(0, asleep[0] - margin), min(stages.shape[0], asleep[-1] + 1 + margin))


def read_labels_csv(path: str | Path) -> tuple[np.ndarray, int]:
    """One label per 30-s epoch from a hypnogram CSV: a header with ``onset`` (or
    ``onset_s``) and ``label`` (or ``stage``), optionally ``duration`` (``duration_s``; a
    row spans its duration, default 30 s); other columns are ignored. edgesleep's staged
    CSVs are such files.

    Labels are the names of one class set (W/N1/N2/N3/REM, W/Light/Deep/REM or W/NREM/REM)
    or any stage annotation :func:`edgesleep.stages.stage_from_string` reads (R&K codes,
    "Sleep stage 2", ...); ART and UNS are artefact and unscored; epochs no row covers
    are unscored.

    Returns
    -------
    values : ndarray of shape (n_epochs,), int8
        Class indices of the class set (for 5 classes, the YASA integers); negative codes
        for artefact and unscored.
    n_classes : {5, 4, 3}
        The class set of the labels.

    Raises
    ------
    InputError
        No such columns (the ones there are named), an unknown label (its line named).
    """
    path = Path(path)
    try:
        with path.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
            columns = [c.strip() for c in (rows[0].keys() if rows else [])]
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read it as a CSV hypnogram ({err})") from None
    onset_col = next((c for c in ("onset", "onset_s") if c in columns), None)
    label_col = next((c for c in ("label", "stage") if c in columns), None)
    if onset_col is None or label_col is None:
        raise InputError(
            f"{path}: a CSV hypnogram needs an onset (or onset_s) and a label (or stage) "
            f"column; it has {columns}"
        )
    labels = [row[label_col].strip() for row in rows]
    names = {lab.upper() for lab in labels} - {"ART", "UNS"}
    n_classes = next((n for n in (4, 3) if names and names <= {c.upper() for c in CLASS_LABELS[n]}
                      and not names <= {c.upper() for c in CLASS_LABELS[5]}), 5)  # fmt: skip
    lookup = {c.upper(): i for i, c in enumerate(CLASS_LABELS[n_classes])}
    lookup |= {"ART": ARTEFACT, "UNS": UNSCORED}
    n_epochs = 0
    spans = []
    for line, (row, label) in enumerate(zip(rows, labels, strict=True), 2):
        try:
            onset = float(row[onset_col])
            duration = float(row.get("duration") or row.get("duration_s") or EPOCH_S)
            value = lookup[label.upper()] if label.upper() in lookup else stage_from_string(label)
        except (ValueError, TypeError) as err:
            raise InputError(f"{path}, line {line}: {err}") from None
        first = int(round(onset / EPOCH_S))
        count = max(1, int(round(duration / EPOCH_S)))
        spans.append((first, count, value))
        n_epochs = max(n_epochs, first + count)
    values = np.full(n_epochs, UNSCORED, dtype=np.int8)
    for first, count, value in spans:
        if first >= 0:
            values[first : first + count] = value
    return values, n_classes


WALCH_STAGES = {0: W, 1: N1, 2: N2, 3: N3, 4: N3, 5: REM, -1: UNSCORED}  # their label codes


def read_walch_labels(path: str | Path) -> np.ndarray:
    """One stage per 30-s epoch from a Walch et al. label file (``<id>_labeled_sleep.txt``:
    ``time_s stage`` per line, 0 wake, 1-4 N1-N4 (N4 -> N3), 5 REM, -1 unscored).

    Returns
    -------
    ndarray of shape (n_epochs,), int8, YASA integers (epochs no line covers: unscored)

    Raises
    ------
    InputError
        Not two numeric columns, an epoch before 0 or after a night, an unknown code.
    """
    path = Path(path)
    try:
        table = np.loadtxt(path, ndmin=2)
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: not a Walch label file ({err})") from None
    if table.shape[1] != 2:
        raise InputError(f"{path}: {table.shape[1]} columns; a Walch label file has 2")
    epochs = np.round(table[:, 0] / EPOCH_S)
    if epochs.size and not (0 <= epochs.min() and epochs.max() * EPOCH_S <= MAX_NIGHT_S):
        raise InputError(f"{path}: epochs outside 0..{MAX_NIGHT_S:g} s")
    stages = np.full(int(epochs.max()) + 1 if epochs.size else 0, UNSCORED, dtype=np.int8)
    try:
        stages[epochs.astype(int)] = [WALCH_STAGES[int(code)] for code in table[:, 1]]
    except KeyError as err:
        raise InputError(f"{path}: unknown stage code {err}") from None
    return stages


def read_expert(path: str | Path) -> tuple[np.ndarray, int, str]:
    """An expert hypnogram in any format edgesleep imports, told apart by its name and
    content: NSRR XML, EDF+ annotations (Sleep-EDF hypnograms, MASS ``Base.edf``), a Walch
    label file, slpdb's stages CSV, or a hypnogram CSV (edgesleep's own included).

    Returns
    -------
    stages : ndarray of shape (n_epochs,), int8, class indices of the class set
    n_classes : {5, 4, 3}
    format : what was read, in words

    Raises
    ------
    InputError
        Unreadable in the format its name or content says.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".xml":
        return read_nsrr_xml(path), 5, "NSRR XML"
    if suffix in (".edf", ".bdf", ".rec"):
        annotations = read_annotations(path)
        staged = [a for a in annotations if _is_stage_annotation(a.description)]
        if all(on_epoch_grid(a) for a in staged):
            return stages_from_annotations(annotations, path), 5, "EDF+ annotations"
        # MASS: 30-s epochs off the recording's 30-s grid, or 20-s R&K epochs
        what = (
            "EDF+ annotations off the 30-s grid (MASS): each 30-s epoch from the "
            "recording start takes the stage scored at its centre"
        )
        return centre_stages(*scored_epochs(annotations, path)), 5, what
    if suffix == ".txt":
        return read_walch_labels(path), 5, "Walch et al. label file"
    values, n_classes = read_labels_csv(path)
    with path.open(newline="") as fh:
        header = fh.readline().strip().lower().split(",")
    slpdb = header[:4] == ["onset_s", "duration_s", "stage", "events"]
    return values, n_classes, "slpdb stages CSV" if slpdb else "hypnogram CSV"
