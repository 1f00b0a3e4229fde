"""The edgesleep serial protocol, version 1 (numpy + stdlib; no scipy).

Every frame, little-endian::

    sync  0xA5 0x5A            2 bytes
    type  u8                   1: header, 2: data, 3: beats, 4: end, 5: rates
    size  u16                  payload bytes, at most MAX_PAYLOAD
    payload                    size bytes
    crc   u16                  CRC-16/CCITT-FALSE over type, size and payload

Payloads:

- header (the device sends it when a port opens and then at least every 5 s, so a host
  that connects mid-stream finds it): ``version u8, sample format u8 (0 int16, 1 float32),
  sfreq f32 (Hz), uv_per_lsb f32 (µV per count; 1.0 for float32 in µV), stream id u32
  (new at every device boot), channel count u8, device id (u8 length + UTF-8), one label per
  channel (u8 length + UTF-8)``.
- data: ``first sample index u32 (counts samples since the device's stream start and
  wraps at 2**32; not a packet counter), channel count u8, sample count u16, samples``
  interleaved by sample (s0c0 s0c1 ... s1c0 ...), in the header's format.
- beats: ``count u16, then count sample indices u32`` of R peaks the device detected.
- rates: ``count u16, then count times (tick u32, beats/min f32)``: heart-rate samples
  (e.g. a watch's photoplethysmography heart rate), in time order.
- end: ``next sample index u32`` (the index after the last sample; so a host also sees
  frames lost at the very end); the recording is over.

Time base: a tick is one sample index at the header's ``sfreq``, since the device's stream
start (u32, wrapping). A device with signal channels counts its samples; an events-only
device (a watch or chest strap that sends only beats or rates frames) sends a header with
**0 channels**, no data frames, and ``sfreq`` = its tick rate (1000: ticks are
milliseconds since its stream start); its ``end`` frame gives the tick the stream ended
at.

A sync word is accepted only when the frame's CRC validates; anything else is skipped one
byte at a time, so the parser resynchronises after garbage and never waits on a bad length.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import numpy as np

VERSION = 1
SYNC = b"\xa5\x5a"
MAX_PAYLOAD = 1024
HEADER, DATA, BEATS, END, RATES = 1, 2, 3, 4, 5
FORMATS: dict[int, np.dtype[Any]] = {0: np.dtype("<i2"), 1: np.dtype("<f4")}
FORMAT_CODES = {"int16": 0, "float32": 1}
_PREFIX = struct.Struct("<2sBH")
_DATA = struct.Struct("<IBH")
_HEADER = struct.Struct("<BBffIB")
_CRC = struct.Struct("<H")
_FIRST = struct.Struct("<I")
_BODY_DATA = struct.Struct("<BH" + _DATA.format[1:])  # type, size, then the data fields
_KINDS = frozenset((HEADER, DATA, BEATS, END, RATES))
_RATE = np.dtype([("tick", "<u4"), ("bpm", "<f4")])
OVERHEAD = _PREFIX.size + 2  # sync, type, size, crc


def crc16(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor)."""
    return binascii.crc_hqx(data, 0xFFFF)


@dataclass(frozen=True)
class Header:
    sfreq: float
    channels: tuple[str, ...]
    sample_format: str = "int16"
    uv_per_lsb: float = 1.0
    device_id: str = ""
    stream_id: int = 0
    version: int = VERSION


class Receiver(Protocol):
    """What a packet is delivered to (:meth:`Data.deliver` and its siblings): a stager,
    which stages from the kinds it takes and skips the others."""

    def samples(self, packet: Data) -> Any: ...

    def beats(self, packet: Beats) -> Any: ...

    def rates(self, packet: Rates) -> Any: ...


class Data(NamedTuple):
    """A run of samples, shape (n_samples, n_channels), the first at ``first_index``: raw
    counts in the header's format as the wire carries them (u32 indices that wrap), µV on
    an unwrapped index once a source has placed and scaled them (the same type on both
    sides: ``edgesleep.sources.Packet``). A tuple, not a dataclass: one is made per frame,
    and this is the cheapest to make."""

    first_index: int
    samples: np.ndarray

    @property
    def start(self) -> int:
        """``first_index`` (the name of edgesleep 0.1's ``Packet``)."""
        return self.first_index

    def deliver(self, to: Receiver) -> Any:
        return to.samples(self)


@dataclass(frozen=True)
class Beats:
    """``indices``: R-peak sample indices (u32, wrapping like data indices, on the wire;
    unwrapped once a source has placed them: ``edgesleep.sources.BeatPacket``)."""

    indices: np.ndarray

    def deliver(self, to: Receiver) -> Any:
        return to.beats(self)


@dataclass(frozen=True)
class Rates:
    """Heart-rate samples: ``ticks`` (u32 ticks, wrapping like data indices, on the wire;
    unwrapped once a source has placed them: ``edgesleep.sources.RatePacket``) and
    ``bpm``."""

    ticks: np.ndarray
    bpm: np.ndarray

    def deliver(self, to: Receiver) -> Any:
        return to.rates(self)


@dataclass(frozen=True)
class End:
    next_index: int


Frame = Header | Data | Beats | Rates | End


def frame(kind: int, payload: bytes) -> bytes:
    """Wrap a payload into a frame with sync word, size and CRC."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes; the maximum is {MAX_PAYLOAD}")
    body = struct.pack("<BH", kind, len(payload)) + payload
    return SYNC + body + _CRC.pack(crc16(body))


def _text(value: str) -> bytes:
    raw = value.encode()[:255]
    return bytes([len(raw)]) + raw


def encode_header(h: Header) -> bytes:
    payload = _HEADER.pack(
        h.version,
        FORMAT_CODES[h.sample_format],
        h.sfreq,
        h.uv_per_lsb,
        h.stream_id,
        len(h.channels),
    )
    payload += _text(h.device_id) + b"".join(_text(c) for c in h.channels)
    return frame(HEADER, payload)


def encode_data(first_index: int, samples: np.ndarray, sample_format: str = "int16") -> bytes:
    """One data frame; ``samples``: shape (n_samples, n_channels) in the given format."""
    x = np.asarray(samples, dtype=FORMATS[FORMAT_CODES[sample_format]])
    n_samples, n_channels = x.shape
    return frame(DATA, _DATA.pack(first_index % 2**32, n_channels, n_samples) + x.tobytes())


def encode_beats(indices: np.ndarray) -> bytes:
    idx = np.asarray(indices, dtype=np.int64) % 2**32
    return frame(BEATS, struct.pack("<H", idx.shape[0]) + idx.astype("<u4").tobytes())


def encode_rates(ticks: np.ndarray, bpm: np.ndarray) -> bytes:
    body = np.empty(np.asarray(ticks).shape[0], dtype=_RATE)
    body["tick"] = np.asarray(ticks, dtype=np.int64) % 2**32
    body["bpm"] = bpm
    return frame(RATES, struct.pack("<H", body.shape[0]) + body.tobytes())


def encode_end(next_index: int) -> bytes:
    return frame(END, struct.pack("<I", next_index % 2**32))


def max_samples_per_frame(n_channels: int, sample_format: str = "int16") -> int:
    size = FORMATS[FORMAT_CODES[sample_format]].itemsize
    return (MAX_PAYLOAD - _DATA.size) // (size * n_channels)


class _Run:
    """Data frames of one read that continue each other: their sample bytes (views of the
    read), the first one's index, the index that would continue them, and where their
    Data goes in the output."""

    __slots__ = ("parts", "first", "next", "at", "count")

    def __init__(self) -> None:
        self.parts: list[memoryview] = []
        self.first = self.next = self.at = self.count = 0  # count: samples


class Parser:
    """Bytes in, frames out. Holds at most one frame of unparsed bytes between calls.

    ``feed(chunk)`` returns the complete, CRC-valid frames. Frames before the first header
    (data, beats, rates, end: their format and time base are the header's; a host that
    connects mid-stream sees some) are counted in ``stats['no_header']`` and dropped;
    bytes skipped while searching for a valid frame in ``stats['skipped_bytes']``;
    frames whose sync and size looked right but whose CRC failed in ``stats['crc_errors']``;
    frames that pass the CRC but do not decode (a length that runs past the payload, a
    header field out of range, ...) in ``stats['malformed']``, skipped: nothing a device sends
    raises here. ``last_error`` says why the last one was refused.

    ``merge=True``: the data frames of one call that continue each other (each starts at
    the index after the previous one's last sample, wrapping at 2**32, with nothing between
    them but repeats of the current header) come as one :class:`Data`, what a reader wants:
    one block per read; ``stats['frames']`` still counts frames.

    A data frame costs one CRC (:func:`binascii.crc_hqx`, in C, on a view of the read) and
    one copy of its samples (one per run, with ``merge``); the loop consumes the buffer by
    offset and trims it once per call.
    """

    def __init__(self, merge: bool = False) -> None:
        self.buffer = b""  # the unparsed bytes held between calls
        self._run = _Run()  # data frames that continue each other (reused)
        self.header: Header | None = None
        self._header_frame = b""  # the current header's whole frame, as sent
        # the last valid data frame's sync, type and size; channel and sample counts; its
        # length; its sample count: a frame that starts with the same bytes needs only
        # its CRC and its first index
        self._like: tuple[bytes, bytes, int, int] | None = None
        self.merge = merge
        self._dtype: np.dtype[Any] | None = None
        self.frames = self.skipped_bytes = self.crc_errors = 0
        self.malformed = self.no_header = 0
        self.last_error = ""

    @property
    def stats(self) -> dict[str, int]:
        return {
            "frames": self.frames,
            "skipped_bytes": self.skipped_bytes,
            "crc_errors": self.crc_errors,
            "malformed": self.malformed,
            "no_header": self.no_header,
        }

    def feed(self, chunk: bytes) -> list[Frame]:
        # the usual read starts on a frame boundary: parse the chunk itself, keep the rest
        buf: bytes = chunk if not self.buffer else self.buffer + bytes(chunk)
        view = memoryview(buf)
        out: list[Frame] = []
        run = self._run
        pos = skipped = 0  # pos: bytes of ``buf`` consumed
        n = len(buf)
        crc_hqx, unpack_prefix, find = binascii.crc_hqx, _PREFIX.unpack_from, buf.find
        starts, unpack_first, merge = buf.startswith, _FIRST.unpack_from, self.merge
        while True:
            if self._header_frame and starts(self._header_frame, pos):  # the header, again
                assert self.header is not None
                pos += len(self._header_frame)
                self.frames += 1
                if not merge:  # (with merge, a repeat keeps a run going)
                    self._close(run, out)
                out.append(self.header)
                continue
            if self._like is not None:  # the usual frames: data frames like the last one
                prefix, tail, length, per_frame = self._like
                parts, after, count, n_frames = run.parts, run.next, run.count, 0
                while (
                    starts(prefix, pos)
                    and starts(tail, pos + 9)
                    and pos + length <= n
                    and crc_hqx(view[pos + 2 : pos + length - 2], 0xFFFF)
                    == buf[pos + length - 2] | buf[pos + length - 1] << 8
                ):
                    (first,) = unpack_first(buf, pos + 5)
                    if not (merge and parts and first == after):
                        run.next, run.count = after, count
                        self._close(run, out)
                        parts, count, run.first, run.at = run.parts, 0, first, len(out)
                    parts.append(view[pos + 12 : pos + length - 2])
                    after, count = (first + per_frame) % 2**32, count + per_frame
                    n_frames += 1
                    pos += length
                run.next, run.count = after, count
                self.frames += n_frames
                if pos == n:  # the usual read: nothing but such frames
                    break
            start = find(SYNC, pos)
            if start < 0:
                keep = 1 if buf.endswith(SYNC[:1]) else 0
                skipped += n - keep - pos
                pos = n - keep
                break
            skipped += start - pos
            pos = start
            if n - pos < _PREFIX.size:
                break
            _, kind, size = unpack_prefix(buf, pos)
            end = pos + _PREFIX.size + size + 2
            if size > MAX_PAYLOAD or kind not in _KINDS:
                skipped, pos = skipped + 1, pos + 1
                continue
            if n < end:
                break
            body = view[pos + 2 : end - 2]  # type, size, payload (no copy)
            if crc_hqx(body, 0xFFFF) != buf[end - 2] | buf[end - 1] << 8:
                self.crc_errors += 1
                skipped, pos = skipped + 1, pos + 1
                continue
            frame_at, pos = pos, end
            if kind != HEADER and self.header is None:  # no time base yet (a late connect)
                self.no_header += 1
                continue
            if kind == DATA:
                fields = self._data_fields(body)
                if fields is None:
                    continue
                self.frames += 1
                first = fields[0]
                self._like = (bytes(buf[frame_at : frame_at + 5]),
                              bytes(buf[frame_at + 9 : frame_at + 12]), end - frame_at,
                              fields[1])  # fmt: skip
                if not (merge and run.parts and first == run.next):
                    self._close(run, out)
                    run.first, run.at = first, len(out)
                run.parts.append(body[_BODY_DATA.size :])
                run.next, run.count = (first + fields[1]) % 2**32, run.count + fields[1]
                continue
            self._close(run, out)  # before a header changes the format
            decoded = self._decode(kind, bytes(body[3:]))
            if decoded is None:
                continue
            if kind == HEADER:  # its bytes: a repeat is then known at a glance
                self._header_frame = bytes(buf[frame_at:end])
            self.frames += 1
            out.append(decoded)
        if run.parts:
            self._close(run, out)
        self.skipped_bytes += skipped
        self.buffer = buf[pos:]  # (b"" when all was used: no copy)
        return out

    def finish(self) -> list[Frame]:
        """End of input: recover frames held back behind a false sync whose size field
        promised more bytes than ever came."""
        out: list[Frame] = []
        while self.buffer:
            self.skipped_bytes += 1
            self.buffer = self.buffer[1:]
            out += self.feed(b"")
        return out

    def _close(self, run: _Run, out: list[Frame]) -> None:
        """The run's frames as one Data (its samples copied out of the read), at the place
        of its first frame."""
        if not run.parts:
            return
        assert self._dtype is not None and self.header is not None  # the run's format
        shape = (run.count, len(self.header.channels))
        data = Data(run.first, np.ndarray(shape, self._dtype, b"".join(run.parts)))
        if run.at == len(out):
            out.append(data)
        else:
            out.insert(run.at, data)
        run.parts, run.count = [], 0

    def _data_fields(self, body: memoryview) -> tuple[int, int] | None:
        """A data frame's first index and sample count, once its channel count is the
        header's and its sample count fills the payload exactly (else counted as malformed:
        None)."""
        dtype, header = self._dtype, self.header
        assert dtype is not None and header is not None  # feed() drops frames before one
        if len(body) >= _BODY_DATA.size:
            _, _, first, n_channels, n_samples = _BODY_DATA.unpack_from(body)
            if n_channels == len(header.channels) and len(body) == (
                _BODY_DATA.size + n_samples * n_channels * dtype.itemsize
            ):
                return first, n_samples
        self.malformed += 1
        self.last_error = "a data frame whose channel or sample count does not match"
        return None

    def _decode(self, kind: int, payload: bytes) -> Frame | None:
        try:
            if kind == HEADER:
                self.header = decode_header(payload)
                self._like = None  # a data frame must match the new header
                self._dtype = FORMATS[FORMAT_CODES[self.header.sample_format]]
                return self.header
            if kind == BEATS:
                (count,) = struct.unpack_from("<H", payload)
                if len(payload) != 2 + 4 * count:
                    raise ValueError("beat count does not match the payload")
                return Beats(np.frombuffer(payload, "<u4", count, 2).astype(np.int64))
            if kind == RATES:
                (count,) = struct.unpack_from("<H", payload)
                if len(payload) != 2 + _RATE.itemsize * count:
                    raise ValueError("rate count does not match the payload")
                body = np.frombuffer(payload, _RATE, count, 2)
                return Rates(body["tick"].astype(np.int64), body["bpm"].astype(np.float64))
            (next_index,) = struct.unpack("<I", payload)
            return End(next_index)
        except (ValueError, struct.error, UnicodeDecodeError, KeyError, IndexError) as err:
            self.malformed += 1
            self.last_error = f"{'header' if kind == HEADER else 'frame'}: {err}"
            return None


SFREQ_RANGE = (50.0, 10_000.0)  # Hz; the model input is 100 Hz
UV_PER_LSB_RANGE = (1e-3, 1e3)  # µV per count: an int16 full scale from ±33 µV to ±33 V
MAX_CHANNELS = 64


def check_header_fields(sfreq: float, uv_per_lsb: float, n_channels: int) -> None:
    """Refuse header values outside the stated ranges, naming the field.

    Raises
    ------
    ValueError
    """
    if not SFREQ_RANGE[0] <= sfreq <= SFREQ_RANGE[1]:
        raise ValueError(f"sfreq {sfreq:g} Hz outside {SFREQ_RANGE[0]:g}..{SFREQ_RANGE[1]:g}")
    if not UV_PER_LSB_RANGE[0] <= uv_per_lsb <= UV_PER_LSB_RANGE[1]:
        raise ValueError(
            f"uv_per_lsb {uv_per_lsb:g} outside {UV_PER_LSB_RANGE[0]:g}..{UV_PER_LSB_RANGE[1]:g}"
        )
    if not 0 <= n_channels <= MAX_CHANNELS:
        raise ValueError(f"channel count {n_channels} outside 0..{MAX_CHANNELS}")


def decode_header(payload: bytes) -> Header:
    version, fmt, sfreq, uv_per_lsb, stream_id, n_channels = _HEADER.unpack_from(payload)
    if version != VERSION:
        raise ValueError(f"protocol version {version}; this host speaks {VERSION}")
    pos = _HEADER.size
    texts = []
    for _ in range(1 + n_channels):
        length = payload[pos]
        texts.append(payload[pos + 1 : pos + 1 + length].decode())
        pos += 1 + length
    if pos != len(payload):
        raise ValueError("the text lengths do not add up to the payload")
    check_header_fields(sfreq, uv_per_lsb, n_channels)
    sample_format = {v: k for k, v in FORMAT_CODES.items()}[fmt]
    return Header(
        float(sfreq),
        tuple(texts[1:]),
        sample_format,
        float(uv_per_lsb),
        texts[0],
        stream_id,
        version,
    )
