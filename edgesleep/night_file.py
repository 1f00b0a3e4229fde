"""One night's hypnogram CSV written by a stream: replace, resume, or start a new night.

Beside ``OUT`` (the CSV of :class:`edgesleep.io.writers.CsvSink`) the stream keeps
``OUT.json``: the device, its stream id (a new one at every device boot), the channel, the
rate, the model's export id and when the night started. Onsets are on the source's time base
(:mod:`edgesleep.sources`), so a restarted stream can continue the same file:

- ``resume``: when ``OUT`` exists, the stream **continues the night** if it comes from the
  same device stream and model (same device, stream id, channel, rate and export id) and
  its first epoch starts less than ``NEW_NIGHT_S`` after the file's last row and no more
  than ``MAX_FILL_S`` before it (a counter that went further back restarted: a new
  recording). A last row cut by a crash is removed first. Epochs already in the file are
  not written again; those between the last row and the first new one (lost while nothing
  ran) are written as rows flagged ``gap`` with stage -1 and no probabilities ("nan"), so
  the file has one row per epoch (:func:`filler`). Otherwise, and whenever ``OUT.json``
  or the last row cannot be trusted, **a new night begins** (one warning says why):
  ``OUT`` and ``OUT.json`` move aside to ``OUT-<start of that night>.csv`` / ``.json``
  and ``OUT`` starts afresh. CSV on stdin carries no clock: it cannot be resumed.
- every stream holds ``OUT.lock`` (:class:`NightLock`): a second stream on ``OUT`` is
  refused.
- ``overwrite``: the new rows go to a hidden file that replaces ``OUT`` atomically when its
  first row exists (a stream that fails before that leaves the old file as it was).
- neither: an existing non-empty ``OUT`` is refused.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from edgesleep.dsp import EPOCH_S
from edgesleep.errors import InputError, UsageError
from edgesleep.io.writers import CsvSink
from edgesleep.stager import MAX_FILL_S, EpochResult
from edgesleep.stages import ARTEFACT

log = logging.getLogger("edgesleep")
NEW_NIGHT_S = 7200.0  # a longer pause between the last row and the new data: a new night
MAX_ONSET_S = 2.0**32 / 50.0  # the latest onset a device's u32 index can reach (at 50 Hz)


def filler(last: int, index: int, n_classes: int) -> list[EpochResult]:
    """The rows between the last written epoch (``last``) and the next result (``index``):
    flagged ``gap``, stage -1, no probabilities, so that a night has one row per epoch;
    every epoch when the hole is at most ``NEW_NIGHT_S``, none for a longer one (a device
    index that jumped, a day off the wrist: the rows go on at the new onset, flagged
    ``segment``), so no jump makes rows without bound."""
    if last < 0 or (index - last - 1) * EPOCH_S > NEW_NIGHT_S:
        return []
    nan = np.full(n_classes, np.nan)
    return [EpochResult(i, i * EPOCH_S, ARTEFACT, ARTEFACT, nan, ("gap",))
            for i in range(last + 1, index)]  # fmt: skip


def sidecar(out: Path) -> Path:
    return out.with_name(out.name + ".json")


def last_epoch(out: Path) -> int:
    """The epoch index of the last row of a night CSV (-1 when it has none).

    Raises
    ------
    ValueError
        The last row's onset is not a plausible number of seconds.
    """
    with out.open("rb") as fh:
        fh.seek(max(0, out.stat().st_size - 4096))
        lines = fh.read().decode(errors="replace").splitlines()
    rows = [line for line in lines if line and line[0].isdigit()]
    if not rows:
        return -1
    onset_s = float(rows[-1].split(",")[0])
    if not 0 <= onset_s <= MAX_ONSET_S:
        raise ValueError(f"the last row's onset {rows[-1].split(',')[0]} s")
    return int(round(onset_s / EPOCH_S))


def cut_partial_row(out: Path) -> str:
    """Truncate ``out`` after its last complete line (a row cut by a crash or a full disk);
    return what was cut ("" when nothing)."""
    size = out.stat().st_size
    with out.open("rb+") as fh:
        fh.seek(max(0, size - 65536))
        tail = fh.read()
        if not tail or tail.endswith(b"\n"):
            return ""
        keep = size - len(tail) + tail.rfind(b"\n") + 1 if b"\n" in tail else 0
        fh.truncate(keep)
    return tail[tail.rfind(b"\n") + 1 :].decode(errors="replace")


class NightLock:
    """An exclusive lock on a night's CSV (``OUT.lock``, holding the holder's process id
    and host, removed on release): two streams never write one night. ``fcntl.flock``: it
    holds on local file systems (not always on network ones); the kernel releases it when
    the process ends, however it ends (a stale ``OUT.lock`` is then just taken over).

    Raises
    ------
    InputError
        Another process holds it (named).
    """

    def __init__(self, out: Path) -> None:
        import fcntl
        import socket

        self.path = out.with_name(out.name + ".lock")
        out.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise InputError(
                    f"{out} is being written by another stream ({holder}); stop it first or "
                    "choose another --out"
                ) from None
            try:  # the file may have been removed by its last holder since we opened it
                if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        self._fd = fd
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)

    def release(self) -> None:
        if self._fd >= 0:
            self.path.unlink(missing_ok=True)  # while held: a waiting opener sees it gone
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = -1


class NightSink:
    """Writes a stream's epochs into ``out`` by the rules of the module docstring.

    Parameters
    ----------
    out : the night's CSV
    n_classes : the model's class count
    resume, overwrite : the stream's options

    Made before the source is opened (an existing ``out`` is refused at once, as is an
    ``out`` another stream holds: :class:`NightLock`); :meth:`start` then says what
    identifies the stream.
    """

    def __init__(self, out: Path, n_classes: int, resume: bool, overwrite: bool) -> None:
        exists = out.exists() and out.stat().st_size > 0
        if exists and not (resume or overwrite):
            raise InputError(f"{out} exists; pass --resume, --overwrite or another --out")
        self.lock = NightLock(out)
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

    name = "night file"

    def epoch(self, r: EpochResult) -> None:
        """Write one result (the :class:`edgesleep.sinks.Sink` protocol)."""
        self.write(r)

    def write(self, r: EpochResult) -> None:
        if self.sink is None:
            self._open(r.index)
            assert self.sink is not None
        if r.index <= self.last and not r.revision:
            return  # already in the file (a resumed night)
        for row in [*filler(self.last, r.index, self.n_classes), r]:
            self.sink.write(row.index, row.stage, row.probabilities, row.model_stage, row.flags,
                            row.revision)  # fmt: skip
        self.last = max(self.last, r.index)
        if self.target != self.out:
            os.replace(self.target, self.out)  # the open file now is ``out``
            self.target = self.out

    def _open(self, first: int) -> None:
        """At the first epoch: continue the night, or start it (moving an old one aside)."""
        fresh = True
        if self.mode == "resume":
            cut = cut_partial_row(self.out)
            if cut:
                log.warning("%s: its last row was cut (%r); removed before resuming", self.out, cut)
            why, last = self._why_new(first)
            fresh = why is not None
            if fresh:
                old = self._archive()
                log.warning("%s: a new night begins (%s); the previous one is %s",
                            self.out, why, old)  # fmt: skip
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

    def _why_new(self, first: int) -> tuple[str | None, int]:
        """Why the stream cannot continue the night in ``out`` (None: it can), and the
        file's last epoch. Nothing read from the files is trusted: whatever is unreadable,
        foreign or out of range makes a new night, never an error."""
        try:
            before = json.loads(sidecar(self.out).read_text())
        except (OSError, ValueError) as err:
            return f"no readable {sidecar(self.out).name}: {type(err).__name__}", -1
        if not isinstance(before, dict):
            return f"{sidecar(self.out).name} is not a night's description", -1
        for key in ("device_id", "stream_id", "channel", "sfreq", "export_id"):
            if before.get(key) != self.meta.get(key):
                what = "another model" if key == "export_id" else "another device stream"
                return f"{what}: {key} {before.get(key)!r}, now {self.meta.get(key)!r}", -1
        try:
            with self.out.open(newline="") as fh:
                header = fh.readline().rstrip("\r\n").split(",")
            last = last_epoch(self.out)
        except (OSError, ValueError, OverflowError) as err:
            return f"an unreadable last row ({err})", -1
        if header != CsvSink.header(self.n_classes):
            return f"other columns ({','.join(header)[:80]})", -1
        if (last - first) * EPOCH_S > MAX_FILL_S:  # a small overlap is the same data again
            return f"the device's counter went back (epoch {first}, the file ends at {last})", last
        pause_s = (first - last) * EPOCH_S
        if pause_s >= NEW_NIGHT_S:
            return f"{pause_s / 3600:.1f} h later", last
        return None, last

    def _archive(self) -> Path:
        """Move the previous night aside, named by when it started; return where to."""
        try:
            started = json.loads(sidecar(self.out).read_text())["started"]
            stamp = started[:19].replace(":", "").replace("-", "")
            if not re.fullmatch(r"\d{8}T\d{6}", stamp):
                raise ValueError(stamp)
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            stamp = dt.datetime.fromtimestamp(self.out.stat().st_mtime).strftime("%Y%m%dT%H%M%S")
        old = self.out.with_name(f"{self.out.stem}-{stamp}{self.out.suffix}")
        for n in range(2, 1000):  # never over an earlier night
            if not old.exists():
                break
            old = self.out.with_name(f"{self.out.stem}-{stamp}-{n}{self.out.suffix}")
        os.replace(self.out, old)
        if sidecar(self.out).exists():
            os.replace(sidecar(self.out), sidecar(old))
        return old

    def close(self) -> None:
        """Close the CSV; a hidden file that never got a row is removed (the old one stays);
        release the lock."""
        try:
            if self.sink is not None:
                self.sink.close()
        finally:
            if self.target != self.out:
                self.target.unlink(missing_ok=True)
            self.lock.release()
