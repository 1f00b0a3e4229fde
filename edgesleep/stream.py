"""Run a source through the stager into sinks: the loop behind ``edgesleep stream``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from edgesleep.sources import BeatPacket, Packet, Source
from edgesleep.stager import EpochResult, Stager

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
    expected = 0
    sfreq = stager.front.sfreq

    def out(results: list[EpochResult]) -> None:
        for r in results:
            report.epochs += not r.revision
            report.flagged += bool(r.flags) and not r.revision
            emit(r)

    try:
        for packet in source.packets():
            if isinstance(packet, BeatPacket):
                report.beats += packet.indices.shape[0]
                continue
            assert isinstance(packet, Packet)
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
