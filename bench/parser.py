"""CPU cost of the serial protocol parser, per streamed hour.

Run: ``python -m edgesleep.bench.parser [--out bench/results]``. Writes ``parser.json`` and
``parser.md``. One hour of int16 frames as the emulator sends them (0.25-s data frames, a
header every 5 s) is fed to :class:`edgesleep.protocol.Parser` (``merge=True``, the serial
source's), one frame per call, one read per second (4 frames) and 4-KB reads; the CPU time
(``time.process_time``, best of 5) is the parser's alone: decoding included, the source's
bookkeeping and the stager not.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgesleep import __version__
from edgesleep.emulate import HEADER_EVERY_S
from edgesleep.io.writers import markdown_table, write_report
from edgesleep.ort import cpu_info
from edgesleep.protocol import Header, Parser, encode_data, encode_header

HOUR_S = 3600
FRAME_S = 0.25
CASES = ((1, 256), (4, 500))  # (channels, Hz)
READ_BYTES = 4096


def frames_of(counts: np.ndarray, header: Header) -> list[bytes]:
    """``counts`` (n_samples, n_channels) int16 as the emulator sends them: 0.25-s data
    frames, ``header`` again every 5 s (the encoded header object is shared by reference,
    so ``frame is frames[0]`` tells headers apart)."""
    encoded = encode_header(header)
    per_frame = int(round(FRAME_S * header.sfreq))
    every = int(round(HEADER_EVERY_S * header.sfreq))
    frames = []
    for first in range(0, counts.shape[0], per_frame):
        if first % every < per_frame:
            frames.append(encoded)
        frames.append(encode_data(first, counts[first : first + per_frame]))
    return frames


def hour_of_frames(n_channels: int, sfreq: int) -> list[bytes]:
    """One hour of frames (header every 5 s, 0.25-s data frames) of random int16 counts."""
    rng = np.random.default_rng(0)
    counts = rng.integers(-2000, 2000, (HOUR_S * sfreq, n_channels)).astype(np.int16)
    return frames_of(counts, Header(float(sfreq), tuple(f"EEG {i}" for i in range(n_channels))))


def cpu_s(chunks: list[bytes], repeats: int = 5) -> float:
    """Least CPU seconds of ``repeats`` runs of a fresh parser over ``chunks``."""
    best = float("inf")
    for _ in range(repeats):
        parser = Parser(merge=True)  # the serial source's
        t0 = time.process_time()
        for chunk in chunks:
            parser.feed(chunk)
        best = min(best, time.process_time() - t0)
        assert parser.stats["crc_errors"] == 0 and parser.stats["skipped_bytes"] == 0
    return best


def measure() -> dict[str, Any]:
    rows = []
    for n_channels, sfreq in CASES:
        frames = hour_of_frames(n_channels, sfreq)
        stream = b"".join(frames)
        reads = [stream[i : i + READ_BYTES] for i in range(0, len(stream), READ_BYTES)]
        per_second, second = [], []  # one read per second: 4 data frames (and a header)
        for frame in frames:
            second.append(frame)
            if len(second) - (second[0] is frames[0]) == round(1 / FRAME_S):
                per_second.append(b"".join(second))
                second = []
        rows.append(
            {
                "channels": n_channels,
                "sfreq": sfreq,
                "frame_s": FRAME_S,
                "frames_per_hour": len(frames),
                "bytes_per_hour": len(stream),
                "cpu_s_per_hour_frame_reads": round(cpu_s(frames), 4),
                "cpu_s_per_hour_1s_reads": round(cpu_s(per_second), 4),
                "cpu_s_per_hour_4kb_reads": round(cpu_s(reads), 4),
            }
        )
    return {"edgesleep_version": __version__, "cpu": cpu_info(), "rows": rows}


def markdown(result: dict[str, Any]) -> str:
    columns = ["channels", "Hz", "frames/h", "MB/h", "CPU-s/h, one frame per read",
               "CPU-s/h, one read per second", "CPU-s/h, 4-KB reads"]  # fmt: skip
    rows = [
        [r["channels"], r["sfreq"], r["frames_per_hour"], f"{r['bytes_per_hour'] / 1e6:.2f}",
         f"{r['cpu_s_per_hour_frame_reads']:.4f}", f"{r['cpu_s_per_hour_1s_reads']:.4f}",
         f"{r['cpu_s_per_hour_4kb_reads']:.4f}"]
        for r in result["rows"]
    ]  # fmt: skip
    lines = [
        "# Serial parser: CPU-seconds per streamed hour",
        "",
        f"{result['cpu']['model']}, one thread, `python -m edgesleep.bench.parser`. Int16 "
        "frames of 0.25 s, a header every 5 s; the serial source's parser (`merge=True`: a "
        "read's data frames that continue each other come as one block); best of 5 runs.",
        "",
        *markdown_table(columns, rows),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    result = measure()
    write_report(args.out, "parser", result, markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
