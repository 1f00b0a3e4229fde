"""Per-sample cost of the front end: batch vs incremental STFT; the resampler streaming in
1-s packets, in 30-s blocks (how the stager feeds it: a packet's samples wait until the
next image can be complete) and in one batch (files).

Run: ``python -m edgesleep.bench.dsp_speed [--out bench/results]``. Writes ``dsp_speed.json``
and ``dsp_speed.md``. numpy only on the measured paths (as on the device).
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from edgesleep import __version__
from edgesleep.dsp import EPOCH_SAMPLES, StreamingResampler, StreamingSTFT, resample, stft_signal
from edgesleep.io.writers import write_report
from edgesleep.ort import cpu_info

N_EPOCHS = 120  # one hour at 100 Hz
RATES = (128, 200, 250, 256, 360, 500, 512)


def _best_of(fn: Callable[[], object], repeats: int = 5) -> float:
    """Smallest wall time of ``repeats`` calls, in seconds."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _stream(make: Callable[[], object], x: np.ndarray, packet: int) -> Callable[[], None]:
    def run() -> None:
        obj = make()
        for pos in range(0, x.shape[0], packet):
            obj.push(x[pos : pos + packet])  # type: ignore[attr-defined]

    return run


def _resampling_of(checkout: Path) -> Any:
    """The resampling module of another checkout of edgesleep (by file: it imports only
    numpy, and scipy for its batch path when that checkout's does)."""
    path = checkout / "edgesleep" / "dsp" / "resampling.py"
    spec = importlib.util.spec_from_file_location("edgesleep_resampling_before", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"{path}: no such file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure(against: Path | None = None) -> dict[str, object]:
    """Time each path over one hour of signal; ns per input sample. ``against``: another
    checkout whose resampler is timed beside this one's, in the same run."""
    before = _resampling_of(against) if against is not None else None
    rng = np.random.default_rng(0)
    x100 = rng.standard_normal(N_EPOCHS * EPOCH_SAMPLES) * 20
    n = x100.shape[0]
    rows: list[dict[str, object]] = [
        {
            "path": "STFT batch (training)",
            "sfreq": 100,
            "ns_per_sample": _best_of(lambda: stft_signal(x100)) / n * 1e9,
        },
        {
            "path": "STFT incremental, 1-s packets",
            "sfreq": 100,
            "ns_per_sample": _best_of(_stream(StreamingSTFT, x100, 100)) / n * 1e9,
        },
        {
            "path": "STFT incremental, 1-sample packets (first 2 epochs)",
            "sfreq": 100,
            "ns_per_sample": _best_of(_stream(StreamingSTFT, x100[:6000], 1), 1) / 6000 * 1e9,
        },
    ]
    for sfreq in RATES:
        xs = rng.standard_normal(N_EPOCHS * 30 * sfreq)
        ways: list[tuple[str, Callable[[], object]]] = [
            ("resampler streaming, 1-s packets",
             _stream(partial(StreamingResampler, sfreq), xs, sfreq)),
            ("resampler streaming, 30-s blocks (as the stager feeds it)",
             _stream(partial(StreamingResampler, sfreq), xs, 30 * sfreq)),
            ("resampler batch (files)", partial(resample, xs, sfreq)),
        ]  # fmt: skip
        old: list[Callable[[], object] | None] = [None, None, None]
        if before is not None:
            old = [_stream(partial(before.StreamingResampler, sfreq), xs, sfreq),
                   _stream(partial(before.StreamingResampler, sfreq), xs, 30 * sfreq),
                   partial(before.resample, xs, sfreq)]  # fmt: skip
        for (path, run), run_before in zip(ways, old, strict=True):
            row = {"path": path, "sfreq": sfreq,
                   "ns_per_sample": _best_of(run, 3) / xs.shape[0] * 1e9}  # fmt: skip
            if run_before is not None:
                row["ns_per_sample_before"] = _best_of(run_before, 3) / xs.shape[0] * 1e9
            rows.append(row)
    for row in rows:
        rate = float(row["sfreq"])  # type: ignore[arg-type]
        row["cpu_ms_per_hour"] = float(row["ns_per_sample"]) * rate * 3600 / 1e6  # type: ignore[arg-type]
    return {
        "against": None if against is None else str(against),
        "edgesleep": __version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": cpu_info()["model"],
        "rows": rows,
    }


def to_markdown(result: dict[str, object]) -> str:
    lines = [
        "# Front-end cost per input sample",
        "",
        f"edgesleep {result['edgesleep']}, numpy {result['numpy']}, Python {result['python']}, "
        f"{result['processor']} ({result['machine']}).",
    ]
    against = result.get("against")
    if against:
        lines += [f"Command: `python -m edgesleep.bench.dsp_speed --against {against}` (the "
                  "resampler of that checkout timed beside this one's in the same run).",
                  ""]  # fmt: skip
    else:
        lines += ["Command: `python -m edgesleep.bench.dsp_speed`.", ""]
    lines += [
        "| path | input Hz | ns / sample | CPU ms / hour of signal |"
        + (" before: ns / sample | faster |" if against else ""),
        "|---|---|---|---|" + ("---|---|" if against else ""),
    ]
    for row in result["rows"]:  # type: ignore[attr-defined]
        old = row.get("ns_per_sample_before")
        lines.append(
            f"| {row['path']} | {row['sfreq']} | {row['ns_per_sample']:.1f} "
            f"| {row['cpu_ms_per_hour']:.1f} |"
            + (f" {old:.1f} | {old / row['ns_per_sample']:.1f}x |" if old else
               (" | |" if against else ""))
        )  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--against", type=Path, default=None,
                        help="another checkout whose resampler is timed beside this one's "
                        "(`git worktree add /tmp/before d59b9e4`: before issue 33)")  # fmt: skip
    args = parser.parse_args()
    result = measure(args.against)
    markdown = to_markdown(result)
    write_report(args.out, "dsp_speed", result, markdown)
    print(markdown)


if __name__ == "__main__":
    main()
