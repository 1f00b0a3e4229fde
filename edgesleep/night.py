"""One night's hypnogram CSV written by a stream: replace, resume, or start a new night.

Beside ``OUT`` (the CSV of :class:`edgesleep.io.writers.CsvSink`) the stream keeps
``OUT.json``: the device, its stream id (a new one at every device boot), the channel, the
rate, the model's export id and when the night started. Onsets are on the source's time base
(:mod:`edgesleep.sources`), so a restarted stream can continue the same file:

- ``resume``: when ``OUT`` exists, the stream **continues the night** if it comes from the
  same device stream (same device, stream id, channel and rate) and its first epoch starts
  less than ``NEW_NIGHT_S`` after the file's last row. Epochs already in the file are not
  written again; those between the last row and the first new one (lost while nothing ran)
  are written as rows flagged ``gap`` with stage -1 and no probabilities ("nan"), so the
  file has one row per epoch. Otherwise **a new night begins**: ``OUT`` and ``OUT.json``
  move aside to ``OUT-<start of that night>.csv`` / ``.json`` and ``OUT`` starts afresh.
  CSV on stdin carries no clock: it cannot be resumed.
- ``overwrite``: the new rows go to a hidden file that replaces ``OUT`` atomically when its
  first row exists (a stream that fails before that leaves the old file as it was).
- neither: an existing non-empty ``OUT`` is refused.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from edgesleep.dsp import EPOCH_S
from edgesleep.errors import InputError, UsageError
from edgesleep.io.writers import CsvSink
from edgesleep.stager import EpochResult
from edgesleep.stages import ARTEFACT

log = logging.getLogger("edgesleep")
NEW_NIGHT_S = 7200.0  # a longer pause between the last row and the new data: a new night


def sidecar(out: Path) -> Path:
    return out.with_name(out.name + ".json")


def last_epoch(out: Path) -> int:
    """The epoch index of the last row of a night CSV (-1 when it has none)."""
    with out.open("rb") as fh:
        fh.seek(max(0, out.stat().st_size - 4096))
        lines = fh.read().decode(errors="replace").splitlines()
    rows = [line for line in lines if line and line[0].isdigit()]
    return int(round(float(rows[-1].split(",")[0]) / EPOCH_S)) if rows else -1


class NightSink:
    """Writes a stream's epochs into ``out`` by the rules of the module docstring.

    Parameters
    ----------
    out : the night's CSV
    n_classes : the model's class count
    resume, overwrite : the stream's options

    Made before the source is opened (an existing ``out`` is refused at once); :meth:`start`
    then says what identifies the stream.
    """

    def __init__(self, out: Path, n_classes: int, resume: bool, overwrite: bool) -> None:
        exists = out.exists() and out.stat().st_size > 0
        if exists and not (resume or overwrite):
            raise InputError(f"{out} exists; pass --resume, --overwrite or another --out")
        self.out, self.n_classes = out, n_classes
        self.meta: dict[str, Any] = {}
        self.mode = "resume" if exists and resume else "replace" if exists else "new"
        self.sink: CsvSink | None = None
        self.last = -1  # the last epoch in the file
        self.target = out.with_name(f".{out.name}.new") if self.mode == "replace" else out

    def start(self, meta: dict[str, Any]) -> None:
        """The stream's identity: device_id, stream_id, channel, sfreq, export_id."""
        if self.mode == "resume" and meta["device_id"] == "stdin":
            raise UsageError("CSV on stdin carries no clock: it cannot --resume; use a new --out")
        self.meta = meta

    def write(self, r: EpochResult) -> None:
        if self.sink is None:
            self._open(r.index)
            assert self.sink is not None
        if r.index <= self.last and not r.revision:
            return  # already in the file (a resumed night)
        for missing in range(self.last + 1, r.index):
            self.sink.write(missing, ARTEFACT, np.full(self.n_classes, np.nan), ARTEFACT, ("gap",))
        self.sink.write(r.index, r.stage, r.probabilities, r.model_stage, r.flags, r.revision)
        self.last = max(self.last, r.index)
        if self.target != self.out:
            os.replace(self.target, self.out)  # the open file now is ``out``
            self.target = self.out

    def _open(self, first: int) -> None:
        """At the first epoch: continue the night, or start it (moving an old one aside)."""
        fresh = True
        if self.mode == "resume":
            last = last_epoch(self.out)
            fresh = not self._continues(first, last)
            if fresh:
                self._archive()
            else:
                self.last = last
                log.info("%s: continuing the night after epoch %d", self.out, last)
        if fresh:
            self.last = first - 1  # a night's rows start with its first epoch
        if self.target != self.out:
            self.target.unlink(missing_ok=True)  # a hidden file left by a killed stream
        self.sink = CsvSink(self.target, self.n_classes)
        if fresh:
            started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
            sidecar(self.out).write_text(json.dumps({**self.meta, "started": started}) + "\n")

    def _continues(self, first: int, last: int) -> bool:
        try:
            before = json.loads(sidecar(self.out).read_text())
        except (OSError, ValueError):
            log.warning("%s: no readable %s; a new night begins", self.out, sidecar(self.out))
            return False
        same = all(before.get(k) == self.meta[k] for k in ("device_id", "stream_id", "channel",
                                                           "sfreq"))  # fmt: skip
        pause_s = (first - last) * EPOCH_S
        if not same or pause_s >= NEW_NIGHT_S:
            why = "another device stream" if not same else f"{pause_s / 3600:.1f} h later"
            log.info("%s: a new night begins (%s)", self.out, why)
            return False
        return True

    def _archive(self) -> None:
        """Move the previous night aside, named by when it started."""
        try:
            started = json.loads(sidecar(self.out).read_text())["started"]
            stamp = started[:19].replace(":", "").replace("-", "")
        except (OSError, ValueError, KeyError):
            stamp = dt.datetime.fromtimestamp(self.out.stat().st_mtime).strftime("%Y%m%dT%H%M%S")
        old = self.out.with_name(f"{self.out.stem}-{stamp}{self.out.suffix}")
        for n in range(2, 1000):  # never over an earlier night
            if not old.exists():
                break
            old = self.out.with_name(f"{self.out.stem}-{stamp}-{n}{self.out.suffix}")
        os.replace(self.out, old)
        if sidecar(self.out).exists():
            os.replace(sidecar(self.out), sidecar(old))
        log.info("%s: the previous night is now %s", self.out, old)

    def close(self) -> None:
        """Close the CSV; a hidden file that never got a row is removed (the old one stays)."""
        try:
            if self.sink is not None:
                self.sink.close()
        finally:
            if self.target != self.out:
                self.target.unlink(missing_ok=True)
