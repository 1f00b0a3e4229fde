"""Run a source through the stager into sinks: what ``edgesleep stream`` does."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgesleep.errors import InputError
from edgesleep.night_file import NightSink
from edgesleep.ort import ExportedModel
from edgesleep.sinks import Fanout, Sink
from edgesleep.sources import BeatPacket, Packet, RatePacket, Source, StreamInfo, pick_channel
from edgesleep.stager import EpochResult, SeriesStager, Stager

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
        stager, index, label, info = _prepare(model, source, fan, opts)
    except BaseException:
        fan.close()  # the night file's lock too
        raise
    report = StreamReport(sfreq=info.sfreq)
    log.info("streaming %r at %g Hz from %s -> %s", label, info.sfreq, info.device_id, out)

    def emit(r: EpochResult) -> None:
        fan.epoch(r)
        if on_result is not None:
            on_result(r, report)

    try:
        run_stream(source, stager, index, emit, report)
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        fan.close()
        report.sinks = fan.stats
    return report


def _prepare(
    model: ExportedModel, source: Source, night: Sink, opts: StreamOptions
) -> tuple[Stager, int, str, StreamInfo]:
    """The stager of the source's stream, its channel's index and label, the stream."""
    info = source.info()
    if opts.source is None and not info.channels:
        raise InputError(
            f"{info.device_id or 'the device'} sends events only (no channels); say what to "
            "stage from with --input beats or --input heart-rate"
        )
    stager: Stager
    if opts.source is not None:
        stager = SeriesStager(model, opts.source, opts.delay, opts.revisions)
        index, label = -1, opts.source
    else:
        index = pick_channel(info, model.info.signal_channel, opts.channel)
        label = info.channels[index]
        stager = Stager(model, info.sfreq, opts.delay, opts.revisions, info.full_scale_uv, label)
    night.start({"device_id": info.device_id, "stream_id": info.stream_id,
                 "channel": label, "sfreq": info.sfreq,
                 "export_id": model.info.raw["export_id"]})  # fmt: skip
    if model.info.synthetic and not info.synthetic:
        log.warning(
            "%s was trained on SYNTHETIC data: its stages say nothing about real sleep",
            model.folder,
        )
    return stager, index, label, info


def run_stream(
    source: Source,
    stager: Stager,
    channel: int,
    emit: Callable[[EpochResult], None],
    report: StreamReport | None = None,
) -> StreamReport:
    """Feed every packet of ``source`` (column ``channel``) to ``stager`` and pass each
    result to ``emit`` as it is produced; flush at the end of the stream, also when it is
    interrupted (KeyboardInterrupt), so nothing already computed is lost."""
    report = report or StreamReport()
    t_start = time.monotonic()
    expected, horizon_s = 0, 0.0
    sfreq = source.info().sfreq if isinstance(stager, SeriesStager) else stager.front.sfreq

    def out(results: list[EpochResult]) -> None:
        for r in results:
            report.epochs += not r.revision
            report.flagged += bool(r.flags) and not r.revision
            emit(r)

    try:
        for packet in source.packets():
            if isinstance(stager, SeriesStager):
                horizon_s = _series_packet(stager, packet, sfreq, horizon_s, out)
            if isinstance(packet, BeatPacket):
                report.beats += packet.indices.shape[0]
            if isinstance(stager, SeriesStager) or not isinstance(packet, Packet):
                continue  # a series stager's packets are fed above; beats, rates: counted
            if packet.start > expected:
                report.gaps += 1
                report.gap_samples += packet.start - expected
                log.info(
                    "gap of %.2f s at %.1f s", (packet.start - expected) / sfreq, expected / sfreq
                )
            elif packet.start < expected:
                report.overlap_samples += min(expected - packet.start, packet.samples.shape[0])
            expected = max(expected, packet.start + packet.samples.shape[0])
            out(stager.push(packet.samples[:, channel], t0=packet.start / sfreq))
    finally:
        out(stager.flush())
        report.seconds = time.monotonic() - t_start
        report.source = dict(source.stats)
        source.close()
    return report


def _series_packet(
    stager: SeriesStager,
    packet: Packet | BeatPacket | RatePacket,
    sfreq: float,
    horizon_s: float,
    out: Callable[[list[EpochResult]], None],
) -> float:
    """Feed a heart-series stager one packet (ticks of ``sfreq``): the frames of its source
    complete the epochs up to their last event, the stream's end (an empty packet) the
    rest; return the horizon reached."""
    name, times, values = stager.source.name, None, None
    if isinstance(packet, BeatPacket) and name == "beats":
        times = packet.indices / sfreq
    elif isinstance(packet, RatePacket) and name == "heart-rate":
        times, values = packet.ticks / sfreq, packet.bpm
    elif isinstance(packet, Packet) and packet.samples.shape[0] == 0:  # the end
        times = values = np.zeros(0)
        horizon_s = max(horizon_s, packet.start / sfreq)
    if times is None:
        return horizon_s
    if times.size:
        horizon_s = max(horizon_s, float(times[-1]))
    out(stager.push_series(times, values, horizon_s))
    return horizon_s
