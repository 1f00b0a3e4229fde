"""Nothing a device sends ends the stream (issue 19, items 1 and 5): frames that pass the CRC
but do not decode are counted and skipped; header fields out of range are refused, naming
the field; a reader that dies of anything else ends the stream with an error."""

from __future__ import annotations

import struct
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgesleep import protocol
from edgesleep.emulate import PtyPort
from edgesleep.errors import InputError
from edgesleep.sources import SerialSource

GOOD = protocol.encode_header(protocol.Header(256.0, ("ECG",), "int16", 0.5, "dev", 1))
DATA = protocol.encode_data(0, np.arange(64, dtype=np.int16)[:, None])


def _header_payload(sfreq: float, uv_per_lsb: float, n_channels: int, texts: bytes) -> bytes:
    return struct.pack("<BBffIB", protocol.VERSION, 0, sfreq, uv_per_lsb, 7, n_channels) + texts


def test_a_header_whose_length_field_runs_past_the_end_is_counted_and_skipped() -> None:
    lying = protocol.frame(protocol.HEADER, _header_payload(256.0, 0.5, 1, b"\x03dev\xc8ECG"))
    parser = protocol.Parser()
    frames = parser.feed(GOOD + DATA + lying + DATA)
    assert [type(f).__name__ for f in frames] == ["Header", "Data", "Data"]
    assert parser.stats["malformed"] == 1 and parser.stats["crc_errors"] == 0


@pytest.mark.parametrize(
    ("sfreq", "uv_per_lsb", "n_channels", "field"),
    [
        (3.0, 0.5, 1, "sfreq 3 Hz"),
        (256.0, -0.5, 1, "uv_per_lsb -0.5"),
        (256.0, 1e30, 1, "uv_per_lsb 1e+30"),
        (256.0, float("nan"), 1, "uv_per_lsb nan"),
        (256.0, 0.5, 65, "channel count 65"),  # 0 is an events-only device (rates, beats)
    ],
)
def test_header_fields_out_of_range_are_refused_by_name(
    sfreq: float, uv_per_lsb: float, n_channels: int, field: str
) -> None:
    texts = b"\x03dev" + b"\x03ECG" * n_channels
    bad = protocol.frame(protocol.HEADER, _header_payload(sfreq, uv_per_lsb, n_channels, texts))
    parser = protocol.Parser()
    assert parser.feed(bad + DATA) == []  # no header yet: the data frame waits for one
    assert parser.stats["malformed"] == 1 and field in parser.last_error
    assert parser.header is None


@st.composite
def structured_frames(draw: st.DrawFn) -> bytes:
    """Frames with valid CRCs whose payloads have the right structure and random fields."""
    kind = draw(st.sampled_from([protocol.HEADER, protocol.DATA, protocol.BEATS, protocol.END]))
    if kind == protocol.HEADER:
        fields = struct.pack(
            "<BBffIB",
            draw(st.integers(0, 3)),
            draw(st.integers(0, 3)),
            draw(st.floats(width=32, allow_nan=True, allow_infinity=True)),
            draw(st.floats(width=32, allow_nan=True, allow_infinity=True)),
            draw(st.integers(0, 2**32 - 1)),
            draw(st.integers(0, 255)),
        )
        texts = b"".join(
            bytes([draw(st.integers(0, 255))]) + draw(st.binary(max_size=12))
            for _ in range(draw(st.integers(0, 5)))
        )
        payload = fields + texts
    elif kind == protocol.DATA:
        head = struct.pack(
            "<IBH", draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 4)),
            draw(st.integers(0, 600)),
        )  # fmt: skip
        payload = head + draw(st.binary(max_size=400))
    elif kind == protocol.BEATS:
        payload = struct.pack("<H", draw(st.integers(0, 300))) + draw(st.binary(max_size=200))
    else:
        payload = draw(st.binary(max_size=6))
    return protocol.frame(kind, payload[: protocol.MAX_PAYLOAD])


@settings(max_examples=300, deadline=None)
@given(st.lists(structured_frames(), max_size=12), st.integers(1, 300))
def test_fuzzed_structured_frames_never_raise_and_memory_stays_bounded(
    frames: list[bytes], chunk: int
) -> None:
    parser = protocol.Parser()
    stream = GOOD + b"".join(frames) + DATA
    seen = []
    for i in range(0, len(stream), chunk):
        seen += parser.feed(stream[i : i + chunk])
        assert len(parser.buffer) <= protocol.MAX_PAYLOAD + protocol.OVERHEAD
    seen += parser.finish()
    assert parser.stats["crc_errors"] == 0
    assert parser.stats["frames"] + parser.stats["malformed"] + parser.stats["no_header"] >= 2
    assert isinstance(seen[-1], protocol.Data)  # the stream still parses after the fuzz


def test_a_reader_that_dies_ends_the_stream_with_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(run: object) -> None:  # a bug in turning data frames into packets
        raise RuntimeError("bug")

    port = PtyPort(tmp_path / "wearable")
    source = SerialSource(str(port.link), reconnect_s=0.05)
    monkeypatch.setattr(source, "_data", broken)
    assert source.connected.wait(10)
    writer = threading.Thread(target=lambda: port.write(GOOD + DATA))
    writer.start()
    with pytest.raises(InputError, match="the reader stopped .RuntimeError: bug"):
        source.info()
        list(source.packets())
    writer.join()
    source.close()
    port.close()
