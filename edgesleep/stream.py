"""Run a source through the stager into sinks: what ``edgesleep stream`` does."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgesleep.errors import InputError
from edgesleep.night_file import NightSink
from edgesleep.ort import ExportedModel
from edgesleep.sinks import Fanout, Sink
from edgesleep.sources import Source, StreamInfo, pick_channel
from edgesleep.stager import EpochResult, SeriesStager, Stager, Staging

log = logging.getLogger("edgesleep")


@dataclass
class StreamReport:
    """What happened in a stream: epochs emitted, gaps, and the source's own counters."""

    epochs: int = 0
    flagged: int = 0
    gaps: int = 0
    gap_samples: int = 0
    overlap_samples: int = 0
    beats: int = 0
    seconds: float = 0.0
    source: dict[str, float] = field(default_factory=dict)
    interrupted: bool = False
    sfreq: float = 0.0  # the stream's rate, Hz
    sinks: dict[str, dict[str, int]] = field(default_factory=dict)  # detached sinks' counters

    def count(self, counters: dict[str, int]) -> None:
        """The stager's packet counters (gaps, overlaps, beats) so far."""
        self.gaps, self.gap_samples = counters["gaps"], counters["gap_samples"]
        self.overlap_samples, self.beats = counters["overlap_samples"], counters["beats"]

    def rows(self) -> list[tuple[str, str]]:
        """The report as (what, value) rows: epochs, gaps, the source's counters."""
        return [
            ("epochs", str(self.epochs)),
            ("flagged epochs", str(self.flagged)),
            ("gaps", f"{self.gaps} ({self.gap_samples / max(self.sfreq, 1e-9):.1f} s)"),
            *((k.replace("_", " "), f"{v:g}") for k, v in self.source.items()),
            *((f"sink {name}", ", ".join(f"{k} {v}" for k, v in stats.items()))
              for name, stats in self.sinks.items()),
        ]  # fmt: skip


@dataclass(frozen=True)
class StreamOptions:
    """How to stage a stream (see ``edgesleep stream --help``)."""

    channel: str | None = None  # the stream's channel to stage (default: the model's kind)
    delay: int | None = None  # readout delay K (default: L - 1)
    revisions: bool = False
    overwrite: bool = False
    resume: bool = False
    source: str | None = None  # stage from a heart series ("beats", "heart-rate") frames


def stream_to_csv(
    model: ExportedModel,
    source: Source,
    out: Path,
    opts: StreamOptions,
    on_result: Callable[[EpochResult, StreamReport], None] | None = None,
    sinks: Sequence[Sink] = (),
) -> StreamReport:
    """Stage ``source`` with ``model`` into the CSV ``out``, one row per epoch, each written
    as it is scored, and into ``sinks``, each detached (:mod:`edgesleep.sinks`: none can
    delay scoring or cost the night file a row); Ctrl-C (and SIGTERM, in the CLI) ends the
    stream with every epoch so far written. ``opts.resume`` continues or rotates an existing
    night, ``opts.overwrite`` replaces it atomically (:mod:`edgesleep.night_file`).

    Raises
    ------
    InputError
        ``out`` exists (neither option), the channel is missing, the rate or sensor does not
        fit the model.
    """
    fan = Fanout(NightSink(out, model.info.n_classes, opts.resume, opts.overwrite), sinks)
    try:
        stager, label, info = _prepare(model, source, fan, opts)
    except BaseException:
        fan.close()  # the night file's lock too
        raise
    report = StreamReport(sfreq=info.sfreq)
    log.info("streaming %r at %g Hz from %s -> %s", label, info.sfreq, info.device_id, out)

    def emit(r: EpochResult) -> None:
        if fan.showing:  # first: the epoch then carries it (one push per epoch)
            fan.status_update(_status(report, source, fan.last_packet_unix))
        fan.epoch(r)
        if on_result is not None:
            on_result(r, report)

    try:
        run_stream(source, stager, emit, report, fan.packet if fan.wants_packets else None)
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        fan.close()
        report.sinks = fan.stats
    return report


def _status(report: StreamReport, source: Source, last_packet_unix: float) -> dict[str, Any]:
    """The stream's counters as a live page shows them."""
    counters = {k: v for k, v in source.stats.items() if isinstance(v, int | float)}
    return {"epochs": report.epochs, "flagged": report.flagged, "gaps": report.gaps,
            "gap_s": report.gap_samples / max(report.sfreq, 1e-9),
            "last_packet_unix": last_packet_unix, "source": counters}  # fmt: skip


def _prepare(
    model: ExportedModel, source: Source, night: Sink, opts: StreamOptions
) -> tuple[Staging[Any], str, StreamInfo]:
    """The stager of the source's stream (of its channel, or of its heart events), what it
    stages from, the stream."""
    info = source.info()
    if opts.source is None and not info.channels:
        raise InputError(
            f"{info.device_id or 'the device'} sends events only (no channels); say what to "
            "stage from with --input beats or --input heart-rate"
        )
    stager: Staging[Any]
    if opts.source is not None:
        stager = SeriesStager(model, opts.source, opts.delay, opts.revisions, info.sfreq)
        label = opts.source
    else:
        column, label = pick_channel(info, model.info.signal_channel, opts.channel)
        full_scale = info.full_scale_uv if isinstance(column, int) else None  # not of A - B
        stager = Stager(model, info.sfreq, opts.delay, opts.revisions, full_scale, label, column)
    night.start({"device_id": info.device_id, "stream_id": info.stream_id,
                 "channel": label, "sfreq": info.sfreq, "delay": stager.delay,
                 "export_id": model.info.raw["export_id"],
                 "channels": list(info.channels), "full_scale_uv": info.full_scale_uv})  # fmt: skip
    if model.info.synthetic and not info.synthetic:
        log.warning(
            "%s was trained on SYNTHETIC data: its stages say nothing about real sleep",
            model.folder,
        )
    return stager, label, info


def run_stream(
    source: Source,
    stager: Staging[Any],
    emit: Callable[[EpochResult], None],
    report: StreamReport | None = None,
    received: Callable[[Any], None] | None = None,
) -> StreamReport:
    """Feed every packet of ``source`` to ``stager`` (``Staging.feed``: it stages from the
    kind it takes) and pass each result to ``emit`` as it is produced (each packet, as
    received, to ``received`` first: a recorder); flush at the end of the stream, also when
    it is interrupted (KeyboardInterrupt), so nothing already computed is lost."""
    report = report or StreamReport()
    t_start = time.monotonic()

    def out(results: list[EpochResult]) -> None:
        if results:  # the counters as of these results (what the live line shows)
            report.count(stager.counters)
        for r in results:
            report.epochs += not r.revision
            report.flagged += bool(r.flags) and not r.revision
            emit(r)

    try:
        for packet in source.packets():
            if received is not None:
                received(packet)
            out(stager.feed(packet))
    finally:
        out(stager.flush())
        report.count(stager.counters)
        report.seconds = time.monotonic() - t_start
        report.source = dict(source.stats)
        source.close()
    return report
