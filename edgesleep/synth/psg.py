"""Whole synthetic nights: hypnogram -> EEG x2, EOG, ECG -> EDF+ files in the dataset layout.

Deterministic per (seed, night index). Nights ``2k`` and ``2k+1`` belong to subject ``k``
(two nights per subject, as in Sleep-EDF SC). Everything written is labelled synthetic:
``dataset.json`` says so and carries ``GENERATOR_VERSION``, and the EDF header's patient
field reads "SYNTHETIC".
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgesleep.dsp import EPOCH_S
from edgesleep.errors import UsageError
from edgesleep.io.dataset import Entry, write_dataset
from edgesleep.io.writers import stage_annotations
from edgesleep.synth.hypnograms import markov_model, real_hypnograms, render_stages
from edgesleep.synth.signals import (
    Subject,
    beat_times,
    eeg_derivation,
    eeg_sources,
    eog,
    eyes_open_epochs,
    render_ecg,
)

log = logging.getLogger("edgesleep")

# Bump when any output changes; experiments name the version they used.
GENERATOR_VERSION = "1.0"
CHANNELS = ("EEG Fpz-Cz", "EEG C4-A1", "EOG horizontal", "ECG")
PHYSICAL_RANGE_UV = {
    "EEG Fpz-Cz": 500.0,
    "EEG C4-A1": 500.0,
    "EOG horizontal": 2000.0,
    "ECG": 3000.0,
}
ARTEFACT_KINDS = ("movement", "flat", "clipping", "pops")
HYPNOGRAM_SOURCES = ("mixed", "real", "markov")
NIGHTS_PER_SUBJECT = 2


@dataclass
class SynthNight:
    """One generated night.

    Attributes
    ----------
    signals : dict of channel -> ndarray of shape (n_epochs * 30 * sfreq,), µV
    stages : ndarray of shape (n_epochs,), int8, the hypnogram (unscored kept)
    beat_times_s : ndarray of shape (n_beats,)
    n_spindles : int
    artefacts : list of (onset_s, duration_s, text)
    """

    record: str
    subject: int
    night: int
    sfreq: float
    stages: np.ndarray
    signals: dict[str, np.ndarray]
    beat_times_s: np.ndarray
    n_spindles: int
    hypnogram_source: str
    artefacts: list[tuple[float, float, str]] = field(default_factory=list)


def night_hypnogram(seed: int, index: int, source: str) -> tuple[np.ndarray, str]:
    """The stage sequence of night ``index``: a real SC-20 one or a Markov one.

    ``source``: "real" (cycle through the 39, in a seed-dependent order), "markov", or
    "mixed" (real for the first 39 nights, Markov after).
    """
    real = real_hypnograms()
    if source not in HYPNOGRAM_SOURCES:
        raise UsageError(f"--hypnograms {source!r}: expected one of {HYPNOGRAM_SOURCES}")
    if source == "real" or (source == "mixed" and index < len(real)):
        order = np.random.default_rng([seed, 39]).permutation(len(real))
        pick = int(order[index % len(real)])
        return real[pick].copy(), f"sleep-edf:{pick}"
    rng = np.random.default_rng([seed, index, 1])
    return markov_model().sample(rng), "markov"


def _check_artefact_kinds(kinds: tuple[str, ...]) -> None:
    unknown = set(kinds) - set(ARTEFACT_KINDS)
    if unknown:
        raise UsageError(f"unknown artefact kinds {sorted(unknown)}; choose from {ARTEFACT_KINDS}")


def add_artefacts(
    night: SynthNight, kinds: tuple[str, ...], rng: np.random.Generator, per_hour: float = 2.0
) -> None:
    """Add artefacts in place and record them as annotations.

    movement: 2-10 s of large broadband + slow activity on every channel; flat: 1-5 min of
    zeros on one channel (electrode off); clipping: 5-30 s of one channel driven past its
    physical range (clipped when written); pops: a step that decays over ~1 s on one channel.
    """
    _check_artefact_kinds(kinds)
    sfreq = night.sfreq
    n = next(iter(night.signals.values())).shape[0]
    hours = n / sfreq / 3600
    for kind in kinds:
        for _ in range(rng.poisson(per_hour * hours)):
            start = int(rng.integers(0, max(1, n - int(300 * sfreq))))
            channel = str(rng.choice(CHANNELS))
            if kind == "movement":
                dur = int(rng.uniform(2, 10) * sfreq)
                for x in night.signals.values():
                    burst = rng.standard_normal(dur) * 150 + np.cumsum(rng.standard_normal(dur)) * 8
                    x[start : start + dur] += burst * np.hanning(dur)
                channel = "all"
            elif kind == "flat":
                dur = int(rng.uniform(60, 300) * sfreq)
                night.signals[channel][start : start + dur] = 0.0
            elif kind == "clipping":
                dur = int(rng.uniform(5, 30) * sfreq)
                night.signals[channel][start : start + dur] *= 20.0
            else:
                dur = int(1.5 * sfreq)
                step = rng.choice([-1, 1]) * rng.uniform(200, 400)
                night.signals[channel][start : start + dur] += step * np.exp(
                    -np.arange(dur) / (0.3 * sfreq)
                )
            night.artefacts.append((start / sfreq, dur / sfreq, f"Artefact {kind} {channel}"))


def generate_night(
    seed: int,
    index: int,
    sfreq: float = 100.0,
    hypnograms: str = "mixed",
    artefacts: tuple[str, ...] = (),
    stages: np.ndarray | None = None,
    beats: tuple[np.ndarray, np.ndarray] | None = None,
) -> SynthNight:
    """Generate night ``index`` of a seed: subject ``index // 2``.

    Parameters
    ----------
    seed : int
    index : int
    sfreq : float
        Output rate in Hz for every channel.
    hypnograms : {"mixed", "real", "markov"}
    artefacts : kinds from ``ARTEFACT_KINDS`` to add
    stages : ndarray of shape (n_epochs,), optional
        A given hypnogram instead of ``hypnograms`` (e.g. short nights for tests).
    beats : (times_s, labels), optional
        Given R-peak times (s) and MIT-BIH beat codes, e.g. slpdb's: the ECG is rendered at
        these beats and then depends on nothing else (not on the stages).
    """
    if sfreq < 100 or float(sfreq) != round(sfreq):
        raise UsageError(f"--sfreq {sfreq}: use an integer rate of at least 100 Hz")
    subject_id = index // NIGHTS_PER_SUBJECT
    subject = Subject.draw(np.random.default_rng([seed, subject_id, 0]))
    rng = np.random.default_rng([seed, index, 2])
    stages, source = (
        night_hypnogram(seed, index, hypnograms) if stages is None else (stages, "given")
    )
    drawn = render_stages(stages)
    eyes_open = eyes_open_epochs(drawn, rng)
    sources, n_spindles = eeg_sources(drawn, eyes_open, subject, sfreq, rng)
    signals = {name: eeg_derivation(sources, name, subject, rng, sfreq) for name in CHANNELS[:2]}
    signals["EOG horizontal"] = eog(drawn, eyes_open, signals["EEG Fpz-Cz"], subject, sfreq, rng)
    times = beat_times(drawn, subject, rng) if beats is None else beats[0]
    labels = np.full(times.shape[0], "N") if beats is None else beats[1]
    n_times = signals["EEG Fpz-Cz"].shape[0]
    # a seed of its own: with given beats the ECG depends on nothing else
    ecg_seed = int(np.random.default_rng([seed, index, 4]).integers(2**31))
    signals["ECG"] = render_ecg(times, labels, n_times, sfreq, ecg_seed, subject.ecg_gain)
    night = SynthNight(
        record=f"synth-{index:03d}",
        subject=subject_id,
        night=index % NIGHTS_PER_SUBJECT + 1,
        sfreq=float(sfreq),
        stages=stages,
        signals=signals,
        beat_times_s=times,
        n_spindles=n_spindles,
        hypnogram_source=source,
    )
    if artefacts:
        add_artefacts(night, artefacts, np.random.default_rng([seed, index, 3]))
    return night


def write_night_edf(
    path: Path, night: SynthNight, start: dt.datetime = dt.datetime(2000, 1, 1, 22, 0, 0)
) -> None:
    """Write signals + stage and artefact annotations as one EDF+ file."""
    import pyedflib

    writer = pyedflib.EdfWriter(str(path), len(night.signals), file_type=pyedflib.FILETYPE_EDFPLUS)
    try:
        writer.setPatientCode("SYNTHETIC")
        writer.setPatientName(f"synthetic_subject_{night.subject}")
        writer.setEquipment(f"edgesleep_synth_{GENERATOR_VERSION}")
        writer.setStartdatetime(start)
        headers: list[dict[str, str | int | float | None]] = []
        for name in night.signals:
            peak = PHYSICAL_RANGE_UV[name]
            headers.append(
                {
                    "label": name,
                    "dimension": "uV",
                    "sample_frequency": night.sfreq,
                    "physical_max": peak,
                    "physical_min": -peak,
                    "digital_max": 32767,
                    "digital_min": -32768,
                    "transducer": "synthetic",
                    "prefilter": "",
                }
            )
        writer.setSignalHeaders(headers)
        writer.writeSamples(
            [
                np.clip(x, -PHYSICAL_RANGE_UV[k], PHYSICAL_RANGE_UV[k])
                for k, x in night.signals.items()
            ]
        )
        for onset, duration, text in stage_annotations(night.stages, 5) + night.artefacts:
            writer.writeAnnotation(onset, duration, text)
    finally:
        writer.close()


def synthesize_dataset(
    out: Path,
    n_nights: int,
    seed: int,
    sfreq: float = 100.0,
    hypnograms: str = "mixed",
    artefacts: tuple[str, ...] = (),
    progress: Callable[[Iterable[int], str], Iterable[int]] | None = None,
) -> list[Entry]:
    """Write ``n_nights`` nights as EDF+ plus the dataset manifest (labelled synthetic).

    ``progress`` wraps the loop over nights (e.g. ``rich.progress.track``).
    """
    if n_nights < 1:
        raise UsageError(f"--nights {n_nights}: need at least one night")
    _check_artefact_kinds(artefacts)
    (out / "psg").mkdir(parents=True, exist_ok=True)
    entries = []
    indices: Iterable[int] = range(n_nights)
    if progress is not None:
        indices = progress(indices, "synthesizing nights")
    for index in indices:
        night = generate_night(seed, index, sfreq, hypnograms, artefacts)
        rel = f"psg/{night.record}.edf"
        write_night_edf(out / rel, night)
        n_epochs = night.stages.shape[0]
        log.info("%s: %d epochs (%.1f h), subject %d, hypnogram %s", rel, n_epochs,
                 n_epochs * EPOCH_S / 3600, night.subject, night.hypnogram_source)  # fmt: skip
        entries.append(Entry(night.record, str(night.subject), night.night, rel, rel))
    write_dataset(
        out,
        entries,
        {
            "name": "synthetic",
            "synthetic": True,
            "generator": "edgesleep.synth",
            "generator_version": GENERATOR_VERSION,
            "seed": seed,
            "sfreq": sfreq,
            "hypnograms": hypnograms,
            "artefacts": list(artefacts),
            "note": "SYNTHETIC signals. Stage sequences are real Sleep-EDF SC-20 hypnograms "
            "(ODC-By 1.0; Kemp et al. 2000) or simulated from them. Accuracy measured on these "
            "data says nothing about sleep.",
        },
    )
    return entries
