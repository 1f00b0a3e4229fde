"""Structured fuzz of the host's reader (issue 29): frames of every kind (events included),
in any order (before a header too), with random fields, through the parser, the serial
source's frame handling and the heart-series front end. Nothing raises, no epoch is made
without an event behind it, memory stays bounded. Fixed seed, a time budget of ~15 s."""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edgesleep import protocol
from edgesleep.dsp.inputs import get_kind
from edgesleep.sources import BeatPacket, Packet, RatePacket, SerialSource
from edgesleep.stager import MAX_FILL_S, SeriesFrontEnd

U32 = st.integers(0, 2**32 - 1)


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    """One CRC-valid frame: a plausible or random header, data, beats, rates or end."""
    kind = draw(st.sampled_from([protocol.HEADER, protocol.DATA, protocol.BEATS,
                                 protocol.RATES, protocol.END]))  # fmt: skip
    if kind == protocol.HEADER:
        n_channels = draw(st.sampled_from([0, 0, 1, 2]))
        sfreq = draw(st.sampled_from([1000.0, 256.0, 100.0, 3.0, float("nan")]))
        header = protocol.Header(sfreq, ("ECG", "EEG")[:n_channels], "int16", 1.0, "d",
                                 draw(st.integers(0, 3)))  # fmt: skip
        if sfreq != sfreq or sfreq < 50:  # out of range: refused by the parser
            payload = struct.pack("<BBffIB", 1, 0, sfreq, 1.0, 1, n_channels) + b"\x01d"
            return protocol.frame(kind, payload)
        return protocol.encode_header(header)
    if kind == protocol.DATA:
        n = draw(st.integers(0, 40))
        return protocol.encode_data(draw(U32), np.zeros((n, draw(st.integers(1, 2)))))
    if kind == protocol.BEATS:
        start = draw(U32)
        steps = draw(st.lists(st.integers(0, 3000), max_size=30))
        return protocol.encode_beats(start + np.cumsum(np.array(steps, dtype=np.int64)))
    if kind == protocol.RATES:
        start = draw(U32)
        steps = draw(st.lists(st.integers(0, 10**7), max_size=30))
        ticks = start + np.cumsum(np.array(steps, dtype=np.int64))
        bpm = draw(st.lists(st.floats(-1e3, 1e3, width=32), min_size=len(steps),
                            max_size=len(steps)))  # fmt: skip
        return protocol.encode_rates(ticks, np.array(bpm, dtype=np.float32))
    return protocol.encode_end(draw(U32))


@settings(max_examples=1500, deadline=None, derandomize=True, database=None)
@given(st.lists(frames(), max_size=14), st.integers(1, 200))
def test_any_frames_in_any_order_never_raise_nor_invent_epochs(
    stream: list[bytes], chunk: int
) -> None:
    source = SerialSource.detached()
    parser = source.parser  # the reader's own: data frames of a read merged
    rates = SeriesFrontEnd(get_kind("beats").series["heart-rate"])
    data = b"".join(stream)
    ended = False
    for i in range(0, len(data), chunk):
        frames = parser.feed(data[i : i + chunk])
        ended = ended or not source.receive(frames)
        assert len(parser.buffer) <= protocol.MAX_PAYLOAD + protocol.OVERHEAD
        assert source.queue.qsize() <= 256
        if ended:
            break
    epochs, events = [], []
    while not source.queue.empty():
        item = source.queue.get()
        if isinstance(item, RatePacket):
            times = item.ticks / 1000.0
            events += times[np.isfinite(item.bpm)].tolist()
            epochs += rates.push(times, item.bpm, float(times[-1]))
        assert isinstance(item, Packet | BeatPacket | RatePacket)
    for epoch, _, q in epochs:  # every scored epoch has an event within MAX_FILL_S of it
        near = [t for t in events if epoch * 30 - MAX_FILL_S <= t <= epoch * 30 + 30]
        assert near or q.bad == q.total
