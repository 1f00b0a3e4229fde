"""The stager: samples in, one stage per 30-s epoch out (numpy + onnxruntime, no scipy).

Chunks of any size at the device rate -> quality bookkeeping and repair -> the streaming
resampler -> the model's input at 100 Hz, per completed epoch: the incremental STFT, or for a
beat-interval model the streaming R-peak detector and the beat images (an epoch's image comes
``RPeakDetector.delay_s`` after its end) -> one call of the model's step graph per epoch
(:class:`edgesleep.ort.StepStream`: the epoch encoder, the cached epoch vectors, only the
outputs of the window ending at the new epoch that the readout takes; exports without a step
graph: the encoder, then the sequence model on the window of the last L cached vectors) ->
the readout of :mod:`edgesleep.readout` with a delay of K epochs (a causal model: its
fixed delay). Offline scoring (:func:`score_signal`) runs the same front end and readout
with batched model calls, so a night streamed in any chunking gives the offline
probabilities (fp32: to ~1e-6). :class:`SeriesStager` and :func:`score_series` do the same
from a heart time series (beat times, heart-rate samples) instead of samples.

Quality (per epoch, on the device-rate input):

- ``nonfinite``: NaN/inf samples. They never reach the model: each is replaced by the last
  finite sample (0 µV before the first one).
- ``gap``: samples missing (``push(..., t0=...)`` later than the next expected sample);
  filled the same way (last value held).
- ``implausible``: samples beyond what the sensor kind can measure from a body
  (``PLAUSIBLE_UV``: EEG 1 mV, EOG 2 mV, ECG/EMG/other 10 mV); repaired like NaN, so that
  one spike never flips an epoch, and a rail or an offset of 1e9 µV makes the epoch unusable.
  Needs no full scale (CSV on stdin, serial).
- ``stuck``: one value repeated for ``STUCK_S`` or longer (a rail, a dead input): the
  samples from the point where the run has lasted ``STUCK_S`` (a rule on the sample order
  alone, so every chunking marks the same samples).
- ``clipped``: samples at or beyond 99.5 % of the input's full scale (when known).
- ``flat``: the epoch's standard deviation at 100 Hz is below 0.05 µV.
- ``segment``: the first epoch after a gap longer than ``MAX_FILL_S``.
- ``context``: another epoch inside this epoch's readout windows has one of the above.

An epoch is unusable, and gets stage -1 (artefact) while keeping the model's probabilities
and ``model_stage``, when it is ``flat`` or when repaired, stuck or clipped samples make up
half of it or more. Every other flagged epoch keeps the model's stage.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np

from edgesleep.dsp import EPOCH_S, EPOCH_SAMPLES, SFREQ, StreamingResampler, rational_factors
from edgesleep.dsp.inputs import SeriesSource, SeriesStream, get_kind
from edgesleep.errors import InputError
from edgesleep.io.edf import channel_kind
from edgesleep.ort import ExportedModel, StepStream, WindowStream
from edgesleep.protocol import Beats, Data, Rates
from edgesleep.readout import (
    BATCH,
    clock_warning,
    default_delay,
    epoch_clock_h,
    log_softmax,
    readout_for,
    sequence_log_probs,
)
from edgesleep.stages import ARTEFACT

log = logging.getLogger("edgesleep")
FLAT_STD_UV = 0.05
CLIP_FRACTION_OF_FULL_SCALE = 0.995
PLAUSIBLE_UV = {"eeg": 1_000.0, "eog": 2_000.0, "ecg": 10_000.0, "emg": 10_000.0}
PLAUSIBLE_OTHER_UV = 10_000.0
STUCK_S = 2.0
UNUSABLE_FRACTION = 0.5
MAX_FILL_S = 300.0  # a longer gap is not filled: the stream goes on in a new segment
HOLE_GRID_HZ = 2.0  # a heart series' holes are looked for on this grid
OFFLINE_CHUNK_S = 120.0  # offline scoring feeds the front end this much signal at a time


@dataclass(frozen=True)
class EpochResult:
    """One scored epoch.

    ``stage`` is a class index of the model's class set (for 5 classes the YASA integer),
    or -1 when the epoch is unusable; ``model_stage`` is always the model's argmax.
    ``probabilities``: shape (n_classes,). ``revision``: this result replaces an earlier
    one for the same epoch (only with ``revisions=True``).
    """

    index: int
    onset_s: float
    stage: int
    model_stage: int
    probabilities: np.ndarray
    flags: tuple[str, ...] = ()
    revision: bool = False


@dataclass
class _Quality:
    bad: int = 0  # repaired or clipped device-rate samples
    total: int = 0
    flags: set[str] = field(default_factory=set)


class FrontEnd:
    """Device-rate samples -> (epoch index, image, quality) for each completed epoch.

    ``kind`` names the model's input kind (:mod:`edgesleep.dsp.inputs`), whose streaming
    front end makes the images from the signal at 100 Hz.
    """

    def __init__(
        self,
        sfreq: float,
        full_scale_uv: float | None = None,
        kind: str = "stft",
        channel: str | None = None,
    ) -> None:
        self.sfreq = float(sfreq)
        self.resampler = StreamingResampler(sfreq) if sfreq != SFREQ else None
        self.images = get_kind(kind).stream()
        self.full_scale_uv = full_scale_uv
        self.plausible_uv = PLAUSIBLE_UV.get(channel_kind(channel or "") or "", PLAUSIBLE_OTHER_UV)
        self.stuck_samples = int(STUCK_S * self.sfreq)
        self.reset()

    def reset(self) -> None:
        if self.resampler is not None:
            self.resampler.reset()
        self.images.reset()
        self.n_in = 0  # device-rate samples received (including gap fill)
        self.n_out = 0  # 100 Hz samples made
        self.first_epoch = 0  # of the current segment (the image stream counts from it)
        self.last = 0.0
        self.run = (math.nan, 0)  # the value the input ended on and how often it repeated
        self.quality: dict[int, _Quality] = {}
        self._flat: set[int] = set()  # completed epochs whose image has not come yet
        self._epoch = np.zeros(EPOCH_SAMPLES)  # the current epoch at 100 Hz
        self._waiting: list[np.ndarray] = []  # samples not yet processed (see push)
        self._n_waiting = 0
        self._due = 0  # waiting samples that make the next image possible

    def _epoch_of(self, n: np.ndarray) -> np.ndarray:
        return (n / self.sfreq // EPOCH_S).astype(np.int64)

    def _mark(self, positions: np.ndarray, flag: str) -> None:
        epochs, counts = np.unique(self._epoch_of(positions), return_counts=True)
        for epoch, count in zip(epochs, counts, strict=True):
            q = self.quality.setdefault(int(epoch), _Quality())
            q.bad += int(count)
            q.flags.add(flag)

    def _repair(self, samples: np.ndarray) -> np.ndarray:
        """Hold the last good value over NaN/inf and implausible samples; mark them, stuck
        runs and clipped samples."""
        x = samples
        if x.shape[0] == 0:
            return x
        lo, hi = float(x.min()), float(x.max())  # NaN in, NaN out
        self._stuck(x, lo, hi)
        limit, repaired = self.plausible_uv, False
        if not (-limit <= lo and hi <= limit):  # NaN fails too
            repaired = True
            nonfinite = ~np.isfinite(x)
            implausible = np.abs(np.where(nonfinite, 0.0, x)) > limit
            self._mark(self.n_in + np.flatnonzero(nonfinite), "nonfinite")
            self._mark(self.n_in + np.flatnonzero(implausible), "implausible")
            bad = nonfinite | implausible
            last_good = np.where(bad, -1, np.arange(x.shape[0]))
            np.maximum.accumulate(last_good, out=last_good)
            held = np.where(last_good >= 0, x[np.maximum(last_good, 0)], self.last)
            x = np.where(bad, held, x)
        full_scale = self.full_scale_uv
        clip = CLIP_FRACTION_OF_FULL_SCALE * (full_scale or 0.0)
        if full_scale is not None and (repaired or max(-lo, hi) >= clip):
            clipped = np.abs(x) >= clip
            if clipped.any():
                self._mark(self.n_in + np.flatnonzero(clipped), "clipped")
        if x.shape[0]:
            self.last = float(x[-1])
        return x

    def _stuck(self, x: np.ndarray, lo: float, hi: float) -> None:
        """Mark the samples at which one value has lasted ``STUCK_S`` (the sample and the
        ``stuck_samples - 1`` before it are equal; a run's first ``STUCK_S`` are not
        marked): a rule on the sample order alone, so any chunking marks the same samples.
        ``lo``, ``hi``: the chunk's extremes. Only the (few) equal neighbours are looked at."""
        value, carried = self.run
        need = self.stuck_samples
        if lo == hi:  # one value: the run goes on, or starts here
            first = carried + 1 if x[0] == value else 1
            if first + x.shape[0] - 1 >= need:
                self._mark(self.n_in + np.arange(max(0, need - first), x.shape[0]), "stuck")
            self.run = (float(x[0]), first + x.shape[0] - 1)
            return
        # sample i equals sample i - 1 (i = 0: the previous chunk's last sample)
        same = np.flatnonzero(x[1:] == x[:-1]) + 1
        if x[0] == value:
            same = np.concatenate([[0], same])
        if same.size == 0:  # no two equal neighbours: the usual chunk
            self.run = (float(x[-1]), 1)
            return
        if same.size + 1 + carried < need:  # too few equal neighbours for any such run
            end = self._run_end(same, carried, x.shape[0]) if same[-1] == x.shape[0] - 1 else 1
            self.run = (float(x[-1]), end)
            return
        # runs of consecutive entries of ``same``: samples first - 1 .. last are equal
        breaks = np.flatnonzero(np.diff(same) != 1) + 1
        first = same[np.concatenate([[0], breaks])]
        last = same[np.concatenate([breaks - 1, [same.size - 1]])]
        at_start = np.where(first == 0, carried, 1)  # the run's length at sample first - 1
        marked = np.maximum(first, first - 1 + need - at_start)  # a run's first stuck sample
        long = marked <= last  # the runs that reach STUCK_S (rare)
        for from_i, hi_i in zip(marked[long].tolist(), last[long].tolist(), strict=True):
            self._mark(self.n_in + np.arange(from_i, hi_i + 1), "stuck")
        self.run = (float(x[-1]), self._run_end(same, carried, x.shape[0])
                    if same[-1] == x.shape[0] - 1 else 1)  # fmt: skip

    @staticmethod
    def _run_end(same: np.ndarray, carried: int, n: int) -> int:
        """The length of the run the chunk ends on (``same``: the chunk's samples equal to
        the one before, ending at ``n - 1``)."""
        breaks = np.flatnonzero(np.diff(same) != 1)
        lo_i = int(same[breaks[-1] + 1]) if breaks.size else int(same[0])
        return (carried if lo_i == 0 else 1) + n - lo_i

    def push(
        self, samples: np.ndarray, t0: float | None = None
    ) -> list[tuple[int, np.ndarray, _Quality]]:
        """Feed device-rate µV samples; ``t0``: time of the first one in s from the stream
        start (None: right after the previous chunk). Returns the completed epochs.

        Samples that continue the stream wait (copied) until the next image can be
        complete, then go through repair, resampler and image stream as one block: the same
        work, once per epoch instead of once per packet, and the same results at the same
        push (every step depends on the sample order alone)."""
        x = np.array(samples, dtype=np.float64).reshape(-1)
        return self.push_at(x, None if t0 is None else int(round(t0 * self.sfreq)))

    def push_at(self, x: np.ndarray, start: int | None) -> list[tuple[int, np.ndarray, _Quality]]:
        """:meth:`push` of float64 samples ``x`` (n_times,) that nobody changes afterwards
        (they may wait uncopied: a stream's packet), the first at device sample ``start``
        (None: right after the previous chunk)."""
        if start is None or start == self.n_in + self._n_waiting:
            self._waiting.append(x)
            self._n_waiting += x.shape[0]
            return self._run_waiting() if self._n_waiting >= self._due else []
        done = self._run_waiting()  # a gap or an overlap: what waits goes first
        if start - self.n_in > MAX_FILL_S * self.sfreq:
            done += self._new_segment(start)
        if start > self.n_in:  # a gap: hold the last value over it
            done += self._advance(self._fill(start - self.n_in))
        elif start < self.n_in:  # overlap: keep only the new samples
            x = x[self.n_in - start :]
        done += self._advance(self._repair(x))
        self._due = self._samples_due()
        return done

    def _run_waiting(self) -> list[tuple[int, np.ndarray, _Quality]]:
        """The waiting samples, as one block; then how many more the next image needs."""
        if not self._waiting:
            return []
        x = self._waiting[0] if len(self._waiting) == 1 else np.concatenate(self._waiting)
        self._waiting, self._n_waiting = [], 0
        done = self._advance(self._repair(x))
        self._due = self._samples_due()
        return done

    def _samples_due(self) -> int:
        """Device-rate samples before the image stream can complete its next image (0: it
        does not say, so every packet goes through at once)."""
        due = getattr(self.images, "samples_due", None)
        if due is None:
            return 0
        if self.resampler is None:
            return int(due())
        return self.resampler.inputs_for(int(due()))

    def _fill(self, missing: int) -> np.ndarray:
        """``missing`` samples of the last value, marked "gap" (a repeated run ends)."""
        self._mark(self.n_in + np.arange(missing), "gap")
        self.run = (math.nan, 0)
        return np.full(missing, self.last)

    def _advance(self, x: np.ndarray) -> list[tuple[int, np.ndarray, _Quality]]:
        """Samples ready for the model's input: resample, cut epochs, make images."""
        self.n_in += x.shape[0]
        return self._feed(self.resampler.push(x) if self.resampler is not None else x)

    def flush(self) -> list[tuple[int, np.ndarray, _Quality]]:
        """End of the stream: the resampler's tail; a last partial epoch is dropped."""
        out = self._run_waiting()
        if self.resampler is not None:
            out += self._feed(self.resampler.flush())
        segment_samples = self.n_out - self.first_epoch * EPOCH_SAMPLES
        return out + self._attach(self.images.flush(segment_samples))

    def _new_segment(self, start: int) -> list[tuple[int, np.ndarray, _Quality]]:
        """A gap longer than ``MAX_FILL_S``: complete the current epoch with held values,
        end the segment (as at the end of a stream) and start the next one at the epoch of
        sample ``start``, flagged "segment". Memory does not depend on the gap's length."""
        per_epoch = int(round(EPOCH_S * self.sfreq))
        gap_s = (start - self.n_in) / self.sfreq
        done = []
        if self.n_in % per_epoch:
            end = self.n_in + per_epoch - self.n_in % per_epoch
            done = self.push(np.empty(0), t0=end / self.sfreq)
        done += self.flush()  # the resampler's flush resets it
        self.images.reset()
        self.first_epoch = start // per_epoch
        self.n_in, self.n_out = self.first_epoch * per_epoch, self.first_epoch * EPOCH_SAMPLES
        self.quality = {k: q for k, q in self.quality.items() if k >= self.first_epoch}
        self.quality.setdefault(self.first_epoch, _Quality()).flags.add("segment")
        log.info("gap of %.0f s: a new segment from epoch %d", gap_s, self.first_epoch)
        return done

    def _feed(self, y: np.ndarray) -> list[tuple[int, np.ndarray, _Quality]]:
        pos = 0
        while pos < y.shape[0]:  # the flat check, on each completed epoch at 100 Hz
            at = self.n_out % EPOCH_SAMPLES
            take = min(EPOCH_SAMPLES - at, y.shape[0] - pos)
            self._epoch[at : at + take] = y[pos : pos + take]
            self.n_out += take
            pos += take
            if at + take == EPOCH_SAMPLES and _std(self._epoch) < FLAT_STD_UV:
                self._flat.add(self.n_out // EPOCH_SAMPLES - 1)
        done = self.images.push(y)
        return self._attach(done) if done else []

    def _attach(
        self, images: list[tuple[int, np.ndarray]]
    ) -> list[tuple[int, np.ndarray, _Quality]]:
        out = []
        for segment_epoch, image in images:
            epoch = segment_epoch + self.first_epoch
            q = self.quality.pop(epoch, _Quality())
            q.total = int(round(EPOCH_S * self.sfreq))
            if epoch in self._flat:
                q.flags.add("flat")
                self._flat.discard(epoch)
            out.append((epoch, image, q))
        return out


def _std(x: np.ndarray) -> float:
    """Standard deviation of a 1-D array (a fraction of ``np.std``'s call overhead)."""
    mean = float(np.add.reduce(x)) / x.shape[0]
    return math.sqrt(max(float(np.dot(x, x)) / x.shape[0] - mean * mean, 0.0))


def _unusable(q: _Quality) -> bool:
    return "flat" in q.flags or q.bad >= UNUSABLE_FRACTION * max(q.total, 1)


Column = int | tuple[int, int]  # a stream's channel, or a derivation of two: (plus, minus)


def column_of(samples: np.ndarray, column: Column) -> np.ndarray:
    """One channel, or a derivation (plus minus minus), of samples (n_times, n_channels)."""
    if isinstance(column, int):
        return samples[:, column]
    return samples[:, column[0]] - samples[:, column[1]]


def check_stream(model: ExportedModel, sfreq: float, channel: str | None) -> None:
    """Refuse a stream the model cannot take; warn about a synthetic model on real data."""
    info = model.info
    if channel is not None:
        want, have = channel_kind(info.signal_channel), channel_kind(channel)
        if want and have and want != have:
            raise InputError(
                f"the model was trained on {info.channel!r} ({want.upper()}), the stream is "
                f"{channel!r} ({have.upper()}); pass the matching channel or another model"
            )
    try:
        rational_factors(sfreq)
    except ValueError as err:
        raise InputError(str(err)) from None


class SeriesFrontEnd:
    """Heart events (beat times, heart-rate samples) -> (epoch index, image, quality) for
    each completed epoch, on the events' own time base: the series front end of
    :class:`SeriesStager` and :func:`score_series` alike, so both see the same epochs.

    - Events that are not usable (``SeriesSource.keep``: a non-finite time, an implausible
      rate) or that come earlier than one already pushed are dropped (``dropped``).
    - Epochs start at the epoch of the first event (epoch n covers n * 30 s .. (n + 1) *
      30 s of the time base; a device that has run for a day before the host connects
      starts at its epoch 2880), or at 0 when events before 0 are context (a watch's
      history before the recording start).
    - **Holes**: a 2-Hz grid time with no event in the ``hold_s`` before it (nor, before
      the segment's first event, in the ``hold_s`` after it) is missing: its epoch is
      flagged ``gap`` and is unusable (stage -1) when half of it or more is missing. Two
      events more than ``MAX_FILL_S`` apart end the segment: its epochs end with the whole
      epochs by its last event, the next one starts at the next event's epoch (flagged
      ``segment``), and nothing is emitted in between. The end of a stream completes the
      epochs by ``horizon_s``, at most ``MAX_FILL_S`` past the last event.
    """

    def __init__(self, source: SeriesSource) -> None:
        self.source = source
        self.grid_total = int(EPOCH_S * HOLE_GRID_HZ)
        self.reset()

    def reset(self) -> None:
        self.images: SeriesStream | None = None  # the current segment's image stream
        self.origin = 0  # the epoch of the current segment's local epoch 0
        self.first_s = math.nan  # the current segment's first event
        self.last_s = -math.inf  # the last event kept
        self.emitted = False  # any epoch so far
        self.dropped = 0
        self._times = np.zeros(0)  # kept event times still needed for the holes

    def push(
        self, time_s: np.ndarray, values: np.ndarray | None, horizon_s: float
    ) -> list[tuple[int, np.ndarray, _Quality]]:
        """Add events (s on the stream's time base, in time order; ``values``: beats/min
        of a heart-rate series); return the epochs that end by ``horizon_s`` (every event
        before it pushed)."""
        t = np.asarray(time_s, dtype=np.float64).reshape(-1)
        v = None if values is None else np.asarray(values, dtype=np.float64).reshape(-1)
        keep = self.source.keep(t, v)
        ahead = np.maximum.accumulate(np.concatenate([[self.last_s], np.where(keep, t, -np.inf)]))
        keep &= t >= ahead[:-1]
        self.dropped += int(t.size - keep.sum())
        t, v = t[keep], None if v is None else v[keep]
        if t.size == 0:
            return self._advance(t, v, horizon_s) if self.images is not None else []
        out: list[tuple[int, np.ndarray, _Quality]] = []
        # a segment starts at the first event and after every hole longer than MAX_FILL_S
        starts = set(np.flatnonzero(np.diff(t, prepend=self.last_s) > MAX_FILL_S).tolist())
        for a, b in itertools.pairwise(sorted({0, t.size} | starts)):
            if a in starts:
                self._start(float(t[a]))
            self._times = np.concatenate([self._times, t[a:b]])
            self.last_s = float(t[b - 1])
            part = None if v is None else v[a:b]
            out += self._advance(t[a:b], part, self.last_s if b < t.size else horizon_s)
        return out

    def _start(self, first_s: float) -> None:
        """A segment from the event at ``first_s`` (from epoch 0 if it is earlier: the
        events before 0 are context; a segment that ends before 0 emits nothing). The
        previous segment has emitted its whole epochs by its last event already."""
        epoch = math.floor(max(first_s, -1e12) / EPOCH_S)
        self.origin = max(0, epoch)
        self.images = self.source.stream(min(0, epoch - self.origin))
        self.first_s = first_s
        self._times = np.zeros(0)

    def _advance(
        self, t: np.ndarray, v: np.ndarray | None, horizon_s: float
    ) -> list[tuple[int, np.ndarray, _Quality]]:
        """Push events of the current segment to its image stream; the epochs by
        ``horizon_s`` (at most ``MAX_FILL_S`` past the last event)."""
        assert self.images is not None
        horizon_s = min(horizon_s, self.last_s + MAX_FILL_S)
        done = self.images.push(t - self.origin * EPOCH_S, v, horizon_s - self.origin * EPOCH_S)
        out = [(self.origin + local, image, self._quality(self.origin + local))
               for local, image in done]  # fmt: skip
        self.emitted = self.emitted or bool(done)
        return out

    def _quality(self, epoch: int) -> _Quality:
        """The grid times of ``epoch`` with no event behind them (see the class docstring)."""
        grid = epoch * EPOCH_S + np.arange(self.grid_total) / HOLE_GRID_HZ
        hold = self.source.hold_s
        last = np.searchsorted(self._times, grid, side="right") - 1
        behind = np.where(last >= 0, grid - self._times[np.maximum(last, 0)], np.inf) <= hold
        ahead = (grid < self.first_s) & (self.first_s - grid <= hold)
        q = _Quality(bad=int((~(behind | ahead)).sum()), total=self.grid_total)
        if q.bad:
            q.flags.add("gap")
        if epoch == self.origin and self.emitted:  # after a segment with epochs
            q.flags.add("segment")
        # the events still needed: from the last one before the next epoch's hold window
        keep_from = np.searchsorted(self._times, (epoch + 1) * EPOCH_S - hold, side="right") - 1
        self._times = self._times[max(keep_from, 0) :]
        return q


F = TypeVar("F", FrontEnd, SeriesFrontEnd)


class Staging(Generic[F]):
    """What every stager is: a front end (a signal's, :class:`FrontEnd`, or a heart
    series', :class:`SeriesFrontEnd`), the model's readout, and :meth:`feed`, which takes
    each packet of a stream whatever its kind (one packet family, :mod:`edgesleep.protocol`:
    the packet calls the stager's ``samples``, ``beats`` or ``rates``); the stager stages
    from the kind its front end takes and counts the others."""

    front: F
    seq_len: int
    delay: int

    def samples(self, packet: Data) -> list[EpochResult]:
        raise NotImplementedError

    def beats(self, packet: Beats) -> list[EpochResult]:
        raise NotImplementedError

    def rates(self, packet: Rates) -> list[EpochResult]:
        raise NotImplementedError

    def flush(self) -> list[EpochResult]:
        raise NotImplementedError

    def _start(self, model: ExportedModel, front: F,
               delay: int | None, revisions: bool) -> None:  # fmt: skip
        """What every stager does with its front end."""
        self._readout(model, delay, revisions)
        self.front = front
        # what the packets held (the stream's report): gaps and overlaps between sample
        # packets (device-rate samples), beats received
        self.counters = {"gaps": 0, "gap_samples": 0, "overlap_samples": 0, "beats": 0}
        self._expected = 0  # the sample index the next packet should start at
        self.reset()

    def feed(self, packet: Data | Beats | Rates) -> list[EpochResult]:
        """One packet of a stream (``Packet``, ``BeatPacket`` or ``RatePacket`` of
        :mod:`edgesleep.sources`): the results it makes final."""
        results: list[EpochResult] = packet.deliver(self)
        return results

    def _readout(self, model: ExportedModel, delay: int | None, revisions: bool) -> None:
        self.model = model
        self.seq_len = model.info.seq_len
        if delay is not None and not 0 <= delay < self.seq_len:
            raise InputError(f"--delay {delay}: choose 0..{self.seq_len - 1} (L - 1)")
        try:
            readout_for(model, delay)
        except ValueError as err:
            raise InputError(f"--delay {err}") from None
        self.delay = default_delay(model) if delay is None else delay
        self.revisions = revisions

    def reset(self) -> None:
        """Forget the stream: the next sample (or event) is t = 0 of a new night."""
        self.front.reset()
        self._reset_readout()

    def _calls(self) -> StepStream | WindowStream:
        """How the model is called per new epoch: its step graph when the export has one."""
        if self.model.step is not None:
            return StepStream(self.model, self.delay)
        return WindowStream(self.model)

    def _reset_readout(self) -> None:
        self.calls = self._calls()
        self.fusion = readout_for(self.model, self.delay)  # on epochs of the segment, from 0
        self.quality: dict[int, _Quality] = {}
        self.emitted: dict[int, int] = {}  # epoch -> last emitted stage (revisions)
        self.segment = 0  # first epoch of the current segment (see FrontEnd._new_segment)
        self.next_epoch = 0

    def _epoch(self, t: int, image: np.ndarray, q: _Quality) -> list[EpochResult]:
        out = []
        if t != self.next_epoch:  # a new segment: windows never reach across its start
            out, self.segment = self._drain(), t
            self.calls.reset()
        self.next_epoch = t + 1
        self.quality[t] = q
        logp = log_softmax(self.calls.logits(image, t).astype(np.float64))
        out += self._add_window(t - self.segment, logp)
        if len(self.quality) > self.seq_len + self.delay + 1:  # what no window needs
            for old in [k for k in self.quality if k < t - self.seq_len - self.delay]:
                del self.quality[old]
        return out

    def _add_window(self, t: int, logp: np.ndarray) -> list[EpochResult]:
        """Fuse the log-probabilities of the window ending at epoch ``t`` of the segment."""
        updated = self.fusion.add(t, logp)
        out, at = [], self.segment
        if self.revisions:  # new epoch at once, earlier ones again when their stage changed
            for i in updated:
                total = self.fusion.pending[i]
                if self.emitted.get(at + i) != int(total.argmax()):
                    out.append(self._result(at + i, total, revision=at + i in self.emitted))
        final = self.fusion.final(t)
        if final is not None:
            if not self.revisions:
                out.append(self._result(at + final[0], final[1]))
            self.emitted.pop(at + final[0], None)
        return out

    def _drain(self) -> list[EpochResult]:
        """The epochs still waiting (end of a night or segment), fused over the windows
        that exist."""
        done = self.fusion.drain()
        self.emitted.clear()
        return [] if self.revisions else [self._result(self.segment + i, t) for i, t in done]

    def _result(self, i: int, total: np.ndarray, revision: bool = False) -> EpochResult:
        probs = np.exp(log_softmax(total))
        model_stage = int(probs.argmax())
        q = self.quality.get(i, _Quality())
        flags = sorted(q.flags)
        # readout windows of epoch i cover epochs i - L + 1 .. i + K
        lo, hi = i - self.seq_len + 1, i + self.delay
        if any(j != i and j in self.quality and self.quality[j].flags for j in range(lo, hi + 1)):
            flags.append("context")
        if self.revisions:
            self.emitted[i] = model_stage
        return EpochResult(
            index=i,
            onset_s=i * EPOCH_S,
            stage=ARTEFACT if _unusable(q) else model_stage,
            model_stage=model_stage,
            probabilities=probs,
            flags=tuple(flags),
            revision=revision,
        )


class Stager(Staging[FrontEnd]):
    """Streaming staging of a signal with an exported model: device-rate samples through
    :class:`FrontEnd` (:meth:`push`, or :meth:`feed` a stream's packets).

    Parameters
    ----------
    model : ExportedModel
    sfreq : float
        Device rate in Hz (resampled to 100 Hz inside).
    delay : int or None
        K: epochs to wait before emitting an epoch (None: the model's default, L - 1).
    revisions : bool
        Emit each epoch at once (as with K = 0) and re-emit it, flagged as a revision,
        while its stage changes over the next K epochs.
    full_scale_uv : float, optional
        The input's full scale in µV, for the clipping flag.
    channel : str, optional
        The stream's channel label, checked against the model's sensor kind.
    column : int or (int, int)
        Which column of a packet's samples is that channel (:meth:`feed`), or which two
        make it (a derivation: plus minus minus).
    """

    def __init__(
        self,
        model: ExportedModel,
        sfreq: float,
        delay: int | None = None,
        revisions: bool = False,
        full_scale_uv: float | None = None,
        channel: str | None = None,
        column: Column = 0,
    ) -> None:
        check_stream(model, sfreq, channel)
        kind, sensor = model.info.input["kind"], channel or model.info.signal_channel
        self.column = column
        self._start(model, FrontEnd(sfreq, full_scale_uv, kind, sensor), delay, revisions)

    def samples(self, packet: Data) -> list[EpochResult]:
        """A packet of samples (its ``column``), placed by its first index."""
        start, samples = packet.first_index, packet.samples
        end = start + samples.shape[0]
        if start != self._expected:
            self._count_jump(start, end)
        if end > self._expected:
            self._expected = end
        # a packet's samples are never changed once made: they may wait uncopied
        x = np.asarray(column_of(samples, self.column), dtype=np.float64)
        made = self.front.push_at(x, start)
        return self._epochs(made) if made else []

    def _count_jump(self, start: int, end: int) -> None:
        """A packet that does not start where the last one ended: a gap or an overlap."""
        if start > self._expected:
            sfreq = self.front.sfreq
            self.counters["gaps"] += 1
            self.counters["gap_samples"] += start - self._expected
            log.info("gap of %.2f s at %.1f s", (start - self._expected) / sfreq,
                     self._expected / sfreq)  # fmt: skip
        else:
            self.counters["overlap_samples"] += min(self._expected, end) - start

    def _epochs(self, made: list[tuple[int, np.ndarray, _Quality]]) -> list[EpochResult]:
        out: list[EpochResult] = []
        for epoch, image, q in made:
            out += self._epoch(epoch, image, q)
        return out

    def beats(self, packet: Beats) -> list[EpochResult]:
        """R peaks beside a signal: counted (this stager stages from the signal)."""
        self.counters["beats"] += packet.indices.shape[0]
        return []

    def rates(self, packet: Rates) -> list[EpochResult]:
        """Heart rates beside a signal: skipped (this stager stages from the signal)."""
        return []

    def push(self, samples: np.ndarray, t0: float | None = None) -> list[EpochResult]:
        """Feed samples (µV, device rate); return the results they make final."""
        return self._epochs(self.front.push(samples, t0))

    def flush(self) -> list[EpochResult]:
        """End of stream: emit every epoch still waiting for later windows."""
        return self._epochs(self.front.flush()) + self._drain()


class SeriesStager(Staging[SeriesFrontEnd]):
    """Streaming staging from a time series that the model's input kind can be made from
    (:class:`edgesleep.dsp.inputs.SeriesSource`: beat times, heart-rate samples) rather
    than from a signal: :meth:`push_series` events as they come, :meth:`end` (or
    :meth:`flush`, at the last horizon) at the end. Epochs, holes and segments are
    :class:`SeriesFrontEnd`'s.

    Raises
    ------
    InputError
        The model's input kind cannot be made from ``source`` (the message says from what
        it can).
    """

    front: SeriesFrontEnd

    def __init__(
        self,
        model: ExportedModel,
        source: str,
        delay: int | None = None,
        revisions: bool = False,
        sfreq: float = 1.0,
    ) -> None:
        kind = get_kind(model.info.input["kind"])
        if source not in kind.series:
            raise InputError(
                f"the model takes {kind.name!r} input, which cannot be made from {source!r} "
                f"(it can from: a {model.info.channel!r} signal"
                + "".join(f", {name}" for name in kind.series)
                + "); use another model"
            )
        self.source = kind.series[source]
        self.ticks_per_s = sfreq  # of the stream's packets (:meth:`feed`)
        self.horizon_s = 0.0
        self._start(model, SeriesFrontEnd(self.source), delay, revisions)

    @property
    def series(self) -> SeriesFrontEnd:
        """The front end (its name before stagers shared one constructor)."""
        return self.front

    def reset(self) -> None:
        """Forget the stream: the next event starts a new night."""
        self.horizon_s = 0.0
        super().reset()

    def flush(self) -> list[EpochResult]:
        """End of stream at the last horizon pushed: every epoch still waiting for later
        windows."""
        return self._drain()

    def push_series(
        self, time_s: np.ndarray, values: np.ndarray | None, horizon_s: float
    ) -> list[EpochResult]:
        """Add events (times in s on the stream's time base, non-decreasing; ``values`` for
        a heart-rate series), every event before ``horizon_s`` included; return the results
        they make final."""
        out: list[EpochResult] = []
        self.horizon_s = max(self.horizon_s, horizon_s)
        for epoch, image, q in self.front.push(time_s, values, horizon_s):
            out += self._epoch(epoch, image, q)
        return out

    def end(self, end_s: float) -> list[EpochResult]:
        """End of stream at ``end_s``: the epochs it completes, then every epoch still
        waiting for later windows."""
        empty = np.zeros(0)
        return self.push_series(empty, empty, end_s) + self.flush()

    def _events(self, ticks: np.ndarray, values: np.ndarray | None) -> list[EpochResult]:
        """Events on the stream's ticks: the epochs up to the last one complete."""
        times = ticks / self.ticks_per_s
        horizon_s = max(self.horizon_s, float(times[-1])) if times.size else self.horizon_s
        return self.push_series(times, values, horizon_s)

    def samples(self, packet: Data) -> list[EpochResult]:
        """Samples are not this stager's input; an empty packet is the stream's end (its
        first index: the tick it ended at), which completes the epochs up to it."""
        if packet.samples.shape[0]:
            return []
        empty = np.zeros(0)
        end_s = max(self.horizon_s, packet.first_index / self.ticks_per_s)
        return self.push_series(empty, empty, end_s)

    def beats(self, packet: Beats) -> list[EpochResult]:
        self.counters["beats"] += packet.indices.shape[0]
        return self._events(packet.indices, None) if self.source.name == "beats" else []

    def rates(self, packet: Rates) -> list[EpochResult]:
        if self.source.name != "heart-rate":
            return []
        return self._events(packet.ticks, packet.bpm)


def score_series(
    model: ExportedModel,
    source: str,
    time_s: np.ndarray,
    values: np.ndarray | None = None,
    delay: int | None = None,
    n_epochs: int | None = None,
) -> list[EpochResult]:
    """Score a whole night from a time series (``source``: a name in the model's input
    kind's ``series``, e.g. "beats" or "heart-rate"): :class:`SeriesFrontEnd` on the
    sorted events, batched model calls per segment, the stager's readout. Equal to
    :class:`SeriesStager` on the same events.

    Parameters
    ----------
    time_s : ndarray of shape (n,), s from the recording start, any order
    values : ndarray of shape (n,), the values (beats/min for a heart-rate series)
    n_epochs : epochs up to (default: the whole epochs that end by the last event; never
        more than ``MAX_FILL_S`` past it)
    """
    stager = SeriesStager(model, source, delay)
    time_s = np.asarray(time_s, dtype=np.float64)
    order = np.argsort(time_s, kind="stable")
    values = None if values is None else np.asarray(values, dtype=np.float64)[order]
    time_s = time_s[order]
    last = time_s[np.isfinite(time_s)]
    horizon_s = n_epochs * EPOCH_S if n_epochs is not None else (last[-1] if last.size else 0.0)
    warning = clock_warning(model.clocked, horizon_s)  # the clock counts from time 0
    if warning:
        log.warning(warning)
    epochs = stager.series.push(time_s, values, horizon_s)
    if not model.batched:  # a streaming-only export: its step graph, epoch by epoch
        done = [stager._epoch(t, image, q) for t, image, q in epochs]
        return [r for results in done for r in results] + stager._drain()
    out: list[EpochResult] = []
    for segment in _segments(epochs):
        images = np.stack([image for _, image, _ in segment])
        clock = epoch_clock_h([t for t, _, _ in segment])
        vectors = np.concatenate([model.encode(images[i : i + BATCH], clock[i : i + BATCH])
                                  for i in range(0, images.shape[0], BATCH)])  # fmt: skip
        stager.segment = segment[0][0]
        for t, _, q in segment:
            stager.quality[t] = q
        for t, logp in enumerate(sequence_log_probs(model, vectors)):
            out += stager._add_window(t, logp)
        out += stager._drain()
    return out


def _segments(
    epochs: list[tuple[int, np.ndarray, _Quality]],
) -> list[list[tuple[int, np.ndarray, _Quality]]]:
    """Runs of consecutive epoch indices."""
    runs: list[list[tuple[int, np.ndarray, _Quality]]] = []
    for item in epochs:
        if not runs or item[0] != runs[-1][-1][0] + 1:
            runs.append([])
        runs[-1].append(item)
    return runs


def score_signal(
    model: ExportedModel,
    data: np.ndarray | Iterable[np.ndarray],
    sfreq: float,
    delay: int | None = None,
    full_scale_uv: float | None = None,
    channel: str | None = None,
) -> list[EpochResult]:
    """Score a whole recording offline: the stager's front end and readout, batched model
    calls (a streaming-only export, ``step.onnx`` alone: its step graph per epoch). Equal
    to streaming the same samples through :class:`Stager` (fp32: ~1e-6).
    Memory does not grow with the sample rate: the signal goes through the front end in
    pieces of ``OFFLINE_CHUNK_S`` and the images through the encoder in batches as they
    come; only the epoch vectors are kept for the night.

    Parameters
    ----------
    data : ndarray of shape (n_times,), µV at ``sfreq`` Hz, or consecutive pieces of it
    """
    stager = Stager(model, sfreq, delay, False, full_scale_uv, channel)
    pieces: Iterable[np.ndarray] = data
    if isinstance(data, np.ndarray):
        warning = clock_warning(model.clocked, data.shape[0] / sfreq)
        if warning:
            log.warning(warning)
        step = int(OFFLINE_CHUNK_S * sfreq)
        pieces = (data[i : i + step] for i in range(0, data.shape[0], step))
    images: list[np.ndarray] = []
    epochs: list[int] = []  # the images' epoch indices (their clock)
    vectors: list[np.ndarray] = []  # images are encoded in batches as they come
    streamed: list[EpochResult] = []  # a streaming-only export: its step graph per epoch
    for piece in itertools.chain(pieces, [None]):  # None: the end (flush)
        made = stager.front.push(piece) if piece is not None else stager.front.flush()
        for t, image, q in made:
            if not model.batched:
                streamed += stager._epoch(t, image, q)
                continue
            stager.quality[t] = q
            images.append(image)
            epochs.append(t)
        if len(images) >= BATCH or (piece is None and images):
            vectors.append(model.encode(np.stack(images), epoch_clock_h(epochs)))
            images, epochs = [], []
    if not model.batched:
        return streamed + stager._drain()
    if not vectors:
        return []
    logps = sequence_log_probs(model, np.concatenate(vectors))
    out = []
    for t, logp in enumerate(logps):
        out += stager._add_window(t, logp)
    return out + stager._drain()
