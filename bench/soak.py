"""Soak: many days of signal streamed at maximum speed through the stager, RSS sampled.

Run: ``python -m edgesleep.bench.soak MODEL_DIR [--days 7] [--out bench/results]``. Writes
``soak.json`` / ``soak.md``. A SYNTHETIC signal (a 10-Hz rhythm in noise, µV) at 100 Hz
in 1-s packets, with a 10-s gap every hour (filled and flagged) and a 2-h gap every day (a
new segment: no filler rows). Checks every emitted epoch: indices increase, onsets are
index x 30 s, the epochs of a gap carry "gap", the first after a 2-h gap "segment", and
no epoch outside the gaps is missing. RSS (VmRSS) is sampled every simulated hour.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgesleep import __version__
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


def markdown(r: dict[str, Any]) -> str:
    rows = [[r["model"], r["days"], r["epochs"], r["cpu_s"], r["rss_mb_first_day_max"],
             r["rss_mb_last_day_max"], r["out_of_order"], r["wrong_onsets"],
             r["missing_epochs"], f"{r['segments']} / {r['segments_expected']}",
             r["epochs_with_gap"],
             "yes" if r["ok"] else "NO"]]  # fmt: skip
    columns = ["model", "days", "epochs", "CPU s", "RSS MB day 1 (max)",
               "RSS MB last day (max)", "out of order", "wrong onsets", "missing",
               "segments / expected",
               "gap epochs", "ok"]  # fmt: skip
    return "\n".join([
        "# Soak: days of signal through the stager at maximum speed (SYNTHETIC signal)",
        "",
        f"`python -m edgesleep.bench.soak`, {r['cpu']['model']}. 1-s packets at 100 Hz, a "
        "10-s gap every hour, a 2-h gap (a new segment) every day.",
        "",
        *markdown_table(columns, rows),
    ]) + "\n"  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    result = soak(args.model, args.days)
    write_report(args.out, "soak", result, markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
