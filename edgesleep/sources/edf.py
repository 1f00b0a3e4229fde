"""``edf:night.edf?speed=10&channel=EOG``: one channel of an EDF/EDF+ file, replayed at its
own rate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgesleep.io.edf import read_signal
from edgesleep.sources.base import PACKET_S, ArraySource, Param, StreamInfo

DOC = "one channel of an EDF/EDF+ file, replayed at its own rate"
TARGET = "the file"
PARAMS = {
    "speed": Param(
        float, 0.0, "1 real time, 10 ten times faster, 0 as fast as possible", 0.0, 1e6
    ),  # fmt: skip
    "channel": Param(str, "", "the channel to replay (default: the model's)"),
}


def open_spec(target: str, params: dict[str, Any], channel: str) -> ArraySource:
    return edf_source(target, params["channel"] or channel, params["speed"] or None)


def edf_source(
    path: str | Path, channel: str, speed: float | None = None, packet_s: float = PACKET_S
) -> ArraySource:
    """Replay one channel of an EDF file at its own rate."""
    signal = read_signal(path, channel, sfreq=None)
    info = StreamInfo(signal.sfreq, (signal.channel,), signal.full_scale_uv, str(path),
                      clock="the file's samples")  # fmt: skip
    return ArraySource(signal.data[:, None], info, speed, packet_s)
