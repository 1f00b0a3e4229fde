"""Soak: many days of signal streamed at maximum speed through the stager, RSS sampled.

Run: ``python -m edgesleep.bench.soak MODEL_DIR [--days 7] [--out bench/results]``. Writes
``soak.json`` / ``soak.md``. A SYNTHETIC signal (a 10-Hz rhythm in noise, µV) at 100 Hz
in 1-s packets, with a 10-s gap every hour (filled and flagged) and a 2-h gap every day (a
new segment: no filler rows). Checks every emitted epoch: indices increase, onsets are
index x 30 s, the epochs of a gap carry "gap", the first after a 2-h gap "segment", and
no epoch outside the gaps is missing. RSS (VmRSS) is sampled every simulated hour. Then
the same days from an events-only watch (:func:`soak_watch`: the shipped heart model,
off-wrist holes, a reboot).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgesleep import __version__, protocol
from edgesleep.io.writers import markdown_table, write_report
from edgesleep.ort import ExportedModel, cpu_info
from edgesleep.stager import Stager

HOUR_S, DAY_S = 3600, 86_400
SHORT_GAP_S, LONG_GAP_S = 10, 7200


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


class Checker:
    """Checks the emitted epochs as they come (no list of results grows with the soak)."""

    def __init__(self, n_epochs: int) -> None:
        self.emitted = np.zeros(n_epochs + 1, dtype=bool)
        self.last = -1
        self.counts = {"epochs": 0, "out_of_order": 0, "wrong_onsets": 0, "segments": 0,
                       "epochs_with_gap": 0}  # fmt: skip

    def add(self, index: int, onset_s: float, flags: tuple[str, ...]) -> None:
        self.counts["epochs"] += 1
        self.counts["out_of_order"] += index <= self.last
        self.counts["wrong_onsets"] += onset_s != 30.0 * index
        self.counts["segments"] += "segment" in flags
        self.counts["epochs_with_gap"] += "gap" in flags
        self.emitted[min(index, self.emitted.shape[0] - 1)] = True
        self.last = index


def soak(model_dir: Path, days: float) -> dict[str, Any]:
    model = ExportedModel(model_dir)
    stager = Stager(model, 100.0)  # the model's default readout
    rng = np.random.default_rng(0)
    rhythm = 20 * np.sin(2 * np.pi * 10 * np.arange(100) / 100)
    end = int(days * DAY_S)
    checker, fed, rss = Checker(end // 30), np.zeros(end // 30 + 1, dtype=bool), []
    t0, cpu0, second = time.perf_counter(), time.process_time(), 0
    while second < end:
        if second % DAY_S == DAY_S - LONG_GAP_S:  # the device was away for 2 h
            second += LONG_GAP_S
            continue
        if second % HOUR_S == HOUR_S - SHORT_GAP_S:  # 10 s of lost packets
            second += SHORT_GAP_S
            continue
        for r in stager.push(rhythm + rng.normal(0, 10, 100), t0=float(second)):
            checker.add(r.index, r.onset_s, r.flags)
        fed[second // 30] = True
        if second % HOUR_S == 0:
            rss.append(round(rss_mb(), 1))
        second += 1
    for r in stager.flush():
        checker.add(r.index, r.onset_s, r.flags)
    # every epoch whose neighbours were fed too must be there (gap edges may be partial)
    inner = fed[1:-1] & fed[:-2] & fed[2:]
    missing = int((inner & ~checker.emitted[1:-1]).sum())
    c = checker.counts
    ok = not c["out_of_order"] and not c["wrong_onsets"] and not missing
    return {
        "model": f"{model.info.model} {model.info.precision}",
        "days": days,
        **c,
        "missing_epochs": missing,
        "segments_expected": int(np.ceil(days)) - 1,
        "ok": bool(ok and c["segments"] == int(np.ceil(days)) - 1),
        "wall_s": round(time.perf_counter() - t0, 1),
        "cpu_s": round(time.process_time() - cpu0, 1),
        "rss_mb_hourly": rss,
        "rss_mb_first_day_max": max(rss[:24]),
        "rss_mb_last_day_max": max(rss[-24:]),
        "edgesleep_version": __version__,
        "cpu": cpu_info(),
    }


WATCH_EVERY_S = 5  # a watch's heart-rate sample
OFF_WRIST_S, SHORT_HOLE_S = 3600, 120  # every day: off the wrist for 1 h; every 3 h: 2 min


class _Frames:
    """A SerialSource that is handed frames directly (no port, no thread)."""

    def __init__(self) -> None:
        from edgesleep.sources import SerialSource

        self.source = SerialSource.detached()
        self.parser = self.source.parser  # the reader's own

    def send(self, data: bytes) -> list[Any]:
        self.source.receive(self.parser.feed(data))
        q = self.source.queue
        return [q.get() for _ in range(q.qsize())]


def soak_watch(days: float, model_dir: Path | None = None) -> dict[str, Any]:
    """An events-only watch (rates frames, millisecond ticks) through the serial source's
    frame handling and the heart-series stager for ``days``: off the wrist for 1 h every
    day (a new segment), a 2-min hole every 3 h (flagged), and the watch rebooted at the
    middle (a new stream id, ticks from 0 again). Checks every epoch: indices increase,
    onsets are index x 30 s, none in an hour off the wrist, none staged without a sample in
    the ``hold_s`` before it, and every epoch with samples all through it is there."""
    from edgesleep.shipped import default_model
    from edgesleep.stager import SeriesStager

    model = ExportedModel(model_dir) if model_dir is not None else default_model(4)
    stager = SeriesStager(model, "heart-rate", sfreq=1000.0)  # millisecond ticks
    hold_s = stager.source.hold_s
    rng = np.random.default_rng(0)
    end = int(days * DAY_S)
    reboot = end // 2 // HOUR_S * HOUR_S + 1800  # while worn
    wearing = np.ones(end // WATCH_EVERY_S + 1, dtype=bool)  # per sample time
    for day in range(0, end, DAY_S):
        wearing[(day + DAY_S - 3 * HOUR_S) // WATCH_EVERY_S :][: OFF_WRIST_S // WATCH_EVERY_S] = 0
    for hour in range(3 * HOUR_S, end, 3 * HOUR_S):
        wearing[(hour - SHORT_HOLE_S) // WATCH_EVERY_S : hour // WATCH_EVERY_S] = False
    checker = Checker(end // 30)
    worn_epochs = np.zeros(end // 30 + 1, dtype=np.int64)  # samples per epoch
    staged_unheld = 0
    sample_times: list[float] = []
    frames, rss = _Frames(), []
    t0, cpu0 = time.perf_counter(), time.process_time()

    def header(stream_id: int) -> bytes:
        return protocol.encode_header(protocol.Header(1000.0, (), "int16", 1.0, "w", stream_id))

    def out(results: list[Any]) -> None:
        nonlocal staged_unheld
        for r in results:
            checker.add(r.index, r.onset_s, r.flags)
            last = [t for t in sample_times if t <= r.onset_s + 30]
            staged_unheld += r.stage >= 0 and (not last or r.onset_s + 30 - last[-1] > 2 * hold_s)

    stream_id, tick0 = 1, 0
    for minute in range(0, end, 60):
        if minute == reboot:  # the watch reboots: a new stream id, its ticks from 0
            stream_id, tick0 = 2, minute
            # the host places the new ticks by the wall-clock time since the last sample:
            # at maximum speed, say what it would have measured in real time
            frames.source._last_data_t = time.monotonic() - WATCH_EVERY_S
        times = np.arange(minute, minute + 60, WATCH_EVERY_S)
        times = times[wearing[times // WATCH_EVERY_S]]
        data = header(stream_id) if minute % 300 == 0 else b""
        if times.size:
            bpm = 60 + 8 * np.sin(times / 1800) + rng.normal(0, 1, times.size)
            data += protocol.encode_rates((times - tick0) * 1000, bpm.astype(np.float32))
            np.add.at(worn_epochs, times // 30, 1)
            sample_times = [*sample_times[-30:], *times.tolist()]
        for packet in frames.send(data):
            out(stager.feed(packet))
        if minute % HOUR_S == 0:
            rss.append(round(rss_mb(), 1))
    out(stager.flush())
    full = worn_epochs == 30 // WATCH_EVERY_S  # samples all through the epoch
    full[:-1] &= full[1:]  # (and the next: an epoch completes with a later sample)
    missing = int((full & ~checker.emitted).sum())
    off_wrist = sum(
        int(
            checker.emitted[
                (d + DAY_S - 3 * HOUR_S) // 30 + 1 : (d + DAY_S - 2 * HOUR_S) // 30 - 10
            ].sum()
        )
        for d in range(0, end, DAY_S)
    )
    c = checker.counts
    ok = not (c["out_of_order"] or c["wrong_onsets"] or missing or off_wrist or staged_unheld)
    return {
        "model": f"{model.folder.name} {model.info.precision}",
        "days": days,
        **c,
        "missing_epochs": missing,
        "epochs_off_the_wrist": off_wrist,
        "staged_without_data": int(staged_unheld),
        "segments_expected": int(np.ceil(days)),
        "ok": bool(ok and c["segments"] == int(np.ceil(days))),
        "wall_s": round(time.perf_counter() - t0, 1),
        "cpu_s": round(time.process_time() - cpu0, 1),
        "rss_mb_hourly": rss,
        "rss_mb_first_day_max": max(rss[:24]),
        "rss_mb_last_day_max": max(rss[-24:]),
    }


def markdown(r: dict[str, Any], watch: dict[str, Any] | None = None) -> str:
    rows = [[r["model"], r["days"], r["epochs"], r["cpu_s"], r["rss_mb_first_day_max"],
             r["rss_mb_last_day_max"], r["out_of_order"], r["wrong_onsets"],
             r["missing_epochs"], f"{r['segments']} / {r['segments_expected']}",
             r["epochs_with_gap"],
             "yes" if r["ok"] else "NO"]]  # fmt: skip
    columns = ["model", "days", "epochs", "CPU s", "RSS MB day 1 (max)",
               "RSS MB last day (max)", "out of order", "wrong onsets", "missing",
               "segments / expected",
               "gap epochs", "ok"]  # fmt: skip
    lines = [
        "# Soak: days of signal through the stager at maximum speed (SYNTHETIC signal)",
        "",
        f"`python -m edgesleep.bench.soak`, {r['cpu']['model']}. 1-s packets at 100 Hz, a "
        "10-s gap every hour, a 2-h gap (a new segment) every day.",
        "",
        *markdown_table(columns, rows),
    ]
    if watch is not None:
        w = watch
        rows = [[w["model"], w["days"], w["epochs"], w["cpu_s"], w["rss_mb_first_day_max"],
                 w["rss_mb_last_day_max"], w["out_of_order"], w["wrong_onsets"],
                 w["missing_epochs"], w["epochs_off_the_wrist"], w["staged_without_data"],
                 f"{w['segments']} / {w['segments_expected']}", w["epochs_with_gap"],
                 "yes" if w["ok"] else "NO"]]  # fmt: skip
        columns = ["model", "days", "epochs", "CPU s", "RSS MB day 1 (max)",
                   "RSS MB last day (max)", "out of order", "wrong onsets", "missing",
                   "epochs off the wrist", "staged without data", "segments / expected",
                   "gap epochs", "ok"]  # fmt: skip
        lines += [
            "",
            "## An events-only watch (SYNTHETIC heart rate)",
            "",
            f"A heart-rate sample every {WATCH_EVERY_S} s as rates frames (millisecond "
            "ticks) through the serial source's frame handling and the heart-series stager "
            f"(`--input heart-rate`): off the wrist for {OFF_WRIST_S // 60} min every day "
            f"(a new segment), a {SHORT_HOLE_S // 60}-min hole every 3 h (flagged), the "
            'watch rebooted half way (a new stream id, ticks from 0). "staged without '
            'data": epochs given a stage with no sample in the 2 x hold before their end.',
            "",
            *markdown_table(columns, rows),
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    result = soak(args.model, args.days)
    result["watch"] = soak_watch(args.days)
    write_report(args.out, "soak", result, markdown(result, result["watch"]))
    print(markdown(result, result["watch"]))


if __name__ == "__main__":
    main()
