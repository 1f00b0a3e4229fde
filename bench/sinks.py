"""What a sink costs a stream: the LSL outlet (``stream --lsl-out``), with and without a reader.

``python -m edgesleep.bench.sinks [--seconds 300]`` runs three fresh processes, each staging a
SYNTHETIC ECG hour from the generator (looped) with the shipped heart model into a night
file: the
first 25 epochs as fast as they come (so that epochs are being published), then
``--seconds`` at real time, one 1-s packet a second, as a device streams. The variants:

- ``night file``: no other sink;
- ``lsl-out, no reader``: ``--lsl-out`` with nobody reading;
- ``lsl-out, one reader``: ``--lsl-out`` read by a plain pylsl inlet in another process
  (``pull_sample`` with a 1-s timeout: what a closed-loop controller runs).

Over the real-time part each process measures, from ``/proc/self/task/*``: the CPU time
(``schedstat``, ns) of the threads the sink brought (its detached thread and liblsl's),
scaled to CPU-s per streamed hour; the CPU time of all threads; voluntary context switches
per second of all threads (wake-ups); and resident memory before the stream and at its end
(VmRSS). The outlet runs inline: what it adds to the scoring thread (one ``push_sample`` per
epoch, ~5 µs) shows only in all threads' CPU, which is reported (noisy at this scale); its
own threads are liblsl's. This VM's idle driver (haltpoll) charges ~25–80 µs of CPU to each
thread wake-up, which dominates these figures; bare metal charges a few µs. LSL runs
under a machine-only configuration (:func:`edgesleep.lsl.machine_config`) unless
``LSLAPICFG`` is set. Goals (issue 32): outlet with one reader ≤ 0.01 CPU-s per streamed
hour, wake-ups per second unchanged with no reader, RSS ≤ +5 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgesleep.sources import Packet, StreamInfo

FAST_EPOCHS = 25
VARIANTS = ("night file", "lsl-out, no reader", "lsl-out, one reader")
READER = """
import sys, pylsl
found = pylsl.resolve_byprop("name", sys.argv[1], 1, 120)
inlet = pylsl.StreamInlet(found[0], recover=False)
inlet.open_stream(60)
n = 0
while True:
    try:
        x, t = inlet.pull_sample(timeout=1.0)
    except pylsl.util.LostError:
        break
    n += x is not None
print(n)
"""


def threads() -> dict[str, tuple[int, int]]:
    """Per thread id: (CPU ns from schedstat, voluntary context switches)."""
    out = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            run_ns = int((task / "schedstat").read_text().split()[0])
            status = (task / "status").read_text()
        except OSError:  # the thread ended
            continue
        switches = next(int(line.split()[-1]) for line in status.splitlines()
                        if line.startswith("voluntary_ctxt_switches:"))  # fmt: skip
        out[task.name] = (run_ns, switches)
    return out


def vm(key: str) -> int:
    """A line of /proc/self/status in KB (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} in /proc/self/status (Linux only)")


class Paced:
    """A synthetic ECG night in 1-s packets: ``fast`` packets at once, then one a second for
    ``realtime_s``; snapshots of the threads where the real-time part begins and ends."""

    def __init__(self, signal: np.ndarray, sfreq: float, fast: int, realtime_s: float) -> None:
        self.signal, self.sfreq, self.fast, self.realtime_s = signal, sfreq, fast, realtime_s
        self.stats: dict[str, float] = {}
        self.snapshots: list[tuple[float, dict[str, tuple[int, int]]]] = []

    def info(self) -> StreamInfo:
        return StreamInfo(self.sfreq, ("ECG",), None, "bench", True)

    def packets(self) -> Iterator[Packet]:
        step = int(self.sfreq)
        n_real = int(self.realtime_s)
        for k in range(self.fast + n_real):
            if k == self.fast:
                time.sleep(1.0)  # the fast part's epochs reach the sinks
                t0 = time.monotonic()
                self.snapshots.append((t0, threads()))
            if k >= self.fast:
                time.sleep(max(0.0, t0 + (k - self.fast + 1) - time.monotonic()))
            start = (k * step) % (self.signal.size - step)
            yield Packet(k * step, self.signal[start : start + step, None])
        self.snapshots.append((time.monotonic(), threads()))

    def close(self) -> None:
        pass


def child(variant: str, realtime_s: float, name: str) -> dict[str, Any]:
    """One variant in this (fresh) process: the measures of the module docstring."""
    from edgesleep.lsl import LslOutlet
    from edgesleep.shipped import default_model
    from edgesleep.stream import StreamOptions, stream_to_csv
    from edgesleep.synth.psg import generate_night

    model = default_model()
    stages = np.array([0] * 10 + [1] * 10 + [2] * 40 + [3] * 30 + [4] * 30)  # 1 h, looped
    signal = generate_night(0, 0, stages=stages).signals["ECG"]
    source = Paced(signal, 100.0, FAST_EPOCHS * 30, realtime_s)
    rss_before_kb = vm("VmRSS")
    before = set(threads())
    sinks = [] if variant == "night file" else [LslOutlet(name, model.info.n_classes, 0.0)]
    with tempfile.TemporaryDirectory() as tmp:
        report = stream_to_csv(model, source, Path(tmp) / "night.csv", StreamOptions(),
                               sinks=sinks)  # fmt: skip
        rss_kb = vm("VmRSS")
    (t0, a), (t1, b) = source.snapshots
    seconds = t1 - t0
    new = [tid for tid in b if tid not in before]
    sink_ns = sum(b[t][0] - a.get(t, (0, 0))[0] for t in new)
    all_ns = sum(b[t][0] - a.get(t, (0, 0))[0] for t in b)
    switches = sum(b[t][1] - a.get(t, (0, 0))[1] for t in b)
    per_hour = 3600 / seconds / 1e9
    return {
        "variant": variant,
        "seconds": round(seconds, 1),
        "epochs": report.epochs,
        "sink_threads": len(new),
        "sink_cpu_s_per_h": round(sink_ns * per_hour, 5),
        "all_cpu_s_per_h": round(all_ns * per_hour, 4),
        "wakeups_per_s": round(switches / seconds, 2),
        "rss_mb": round(rss_kb / 1024, 1),
        "rss_before_stream_mb": round(rss_before_kb / 1024, 1),
        "sinks": report.sinks,
    }


def run(realtime_s: float) -> dict[str, Any]:
    """Each variant in a fresh process (a reader process beside the last)."""
    from edgesleep.lsl import machine_config, machine_only

    env = dict(os.environ)
    if "LSLAPICFG" not in env:
        cfg = Path(tempfile.mkdtemp(prefix="edgesleep-lsl-")) / "lsl_api.cfg"
        env["LSLAPICFG"] = str(machine_config(cfg, f"edgesleep-bench-{os.getpid()}"))
    os.environ["LSLAPICFG"] = env["LSLAPICFG"]
    rows = []
    for variant in VARIANTS:
        name = f"bench-{os.getpid()}-{len(rows)}"
        reader = None
        if variant.endswith("one reader"):
            reader = subprocess.Popen([sys.executable, "-c", READER, name], env=env,
                                      stdout=subprocess.PIPE, text=True)  # fmt: skip
        command = [sys.executable, "-m", "edgesleep.bench.sinks", "--child", variant,
                   "--seconds", str(realtime_s), "--name", name]  # fmt: skip
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        row = json.loads(done.stdout.splitlines()[-1])
        if reader is not None:
            row["reader_received"] = int(reader.communicate(timeout=120)[0].strip() or 0)
        rows.append(row)
    base, quiet, read = rows
    return {
        "command": f"python -m edgesleep.bench.sinks --seconds {realtime_s:g}",
        "machine_only_lsl": machine_only(),
        "realtime_s": realtime_s,
        "variants": rows,
        "outlet_with_reader_cpu_s_per_h": read["sink_cpu_s_per_h"],
        "wakeups_no_reader_minus_base": round(quiet["wakeups_per_s"] - base["wakeups_per_s"], 2),
        "rss_increment_mb": round(max(quiet["rss_mb"], read["rss_mb"]) - base["rss_mb"], 1),
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# What the LSL outlet costs a stream",
        "",
        f"`{result['command']}`: the shipped heart model staging a SYNTHETIC ECG night into "
        f"a night file, {result['realtime_s']:g} s at real time per variant, each in a fresh "
        f"process (LSL machine-only: {result['machine_only_lsl']}). Sink CPU: the threads "
        "the sink brought (liblsl's; the outlet itself runs in the scoring thread), per "
        "streamed hour. RSS before: before the stream, after the model and signal.",
        "",
        "| variant | epochs | sink threads | sink CPU-s/h | all threads CPU-s/h | "
        "wake-ups/s | RSS before MB | RSS MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["variants"]:
        lines.append(f"| {r['variant']} | {r['epochs']} | {r['sink_threads']} | "
                     f"{r['sink_cpu_s_per_h']} | {r['all_cpu_s_per_h']} | "
                     f"{r['wakeups_per_s']} | {r['rss_before_stream_mb']} | "
                     f"{r['rss_mb']} |")  # fmt: skip
    cpu, wake = result["outlet_with_reader_cpu_s_per_h"], result["wakeups_no_reader_minus_base"]
    rss = result["rss_increment_mb"]
    lines += [
        "",
        "| goal | measured | met |",
        "|---|---|---|",
        f"| outlet + one reader ≤ 0.01 CPU-s per streamed hour | {cpu} | {cpu <= 0.01} |",
        f"| wake-ups/s unchanged with no reader | {wake:+} | {abs(wake) < 0.5} |",
        f"| RSS ≤ +5 MB | {rss:+} | {rss <= 5} |",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0, help="real time per variant")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--name", default="bench", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.seconds, args.name)))
        return
    result = run(args.seconds)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sinks.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "sinks.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
