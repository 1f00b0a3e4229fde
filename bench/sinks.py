"""What a sink costs a stream: the LSL outlet (``--lsl-out``) and the live page (``--serve``).

``python -m edgesleep.bench.sinks [--seconds 300]`` (or ``edgesleep bench --sinks``) runs five
fresh processes, each staging a SYNTHETIC ECG hour from the generator (looped) with the
shipped heart model into a night file: the first 25 epochs as fast as they come (so that
epochs are being published), then ``--seconds`` at real time, one 1-s packet a second, as a
device streams. The variants:

- ``night file``: no other sink;
- ``floor: a thread woken per epoch``: a detached sink that does nothing — the cost of the
  one thread wake-up per epoch that pushing anything to anyone needs (a reader's thread, a
  viewer's); on this VM that wake-up alone is most of what the sinks below cost;
- ``lsl-out, no reader``: ``--lsl-out`` with nobody reading;
- ``lsl-out, one reader``: ``--lsl-out`` read by a plain pylsl inlet in another process
  (``pull_sample`` with a 1-s timeout: what a closed-loop controller runs);
- ``serve, no viewer`` and ``serve, one viewer``: ``--serve`` (the live page), and one
  viewer reading its event stream from another process, as a browser's ``EventSource`` does.

Over the real-time part each process measures: the sink's CPU time — its calls in the
scoring thread (both sinks run inline; ``time.thread_time`` around each call) plus the
threads it brought (``/proc/self/task/*/schedstat``, ns: liblsl's, or the page's server
and viewer threads) — scaled to CPU-s per streamed hour; the CPU time of all threads;
voluntary context switches per second of all threads (wake-ups); and resident memory before
the stream and at its end (VmRSS). This VM's idle driver (haltpoll) charges ~25–80 µs of CPU to each
thread wake-up, which dominates these figures; bare metal charges a few µs. LSL runs
under a machine-only configuration (:func:`edgesleep.lsl.machine_config`) unless
``LSLAPICFG`` is set. Goals (issue 32): outlet with one reader ≤ 0.01 CPU-s per streamed
hour, wake-ups per second unchanged with no reader, RSS ≤ +5 MB; the same for the live page
with one viewer.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgesleep.sources import Packet, StreamInfo

FAST_EPOCHS = 25
VARIANTS = (
    "night file",
    "floor: a thread woken per epoch",
    "lsl-out, no reader",
    "lsl-out, one reader",
    "serve, no viewer",
    "serve, one viewer",
)
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
VIEWER = """
import http.client, sys, time
for _ in range(600):
    try:
        conn = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=120)
        conn.request("GET", "/events")
        response = conn.getresponse()
        break
    except OSError:
        time.sleep(0.1)
n = 0
while True:
    line = response.fp.readline()
    if not line:
        break
    n += line.startswith(b"event:")
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


class Woken:
    """A sink that does nothing, run detached: its thread wakes once per epoch."""

    name = "woken"

    def start(self, meta: dict[str, Any]) -> None:
        pass

    def epoch(self, result: Any) -> None:
        pass

    def close(self) -> None:
        pass


class Timed:
    """A sink whose calls are timed (``time.thread_time``, the calling thread's CPU) while
    ``counting``: what an inline sink costs the scoring thread."""

    def __init__(self, sink: Any) -> None:
        self.sink, self.name = sink, sink.name
        self.inline = getattr(sink, "inline", False)
        self.counting, self.cpu_s = False, 0.0
        for what in ("packet", "arrived", "status_update"):
            if hasattr(sink, what):
                setattr(self, what, self._timed(getattr(sink, what)))
        self.start, self.epoch = self._timed(sink.start), self._timed(sink.epoch)

    def _timed(self, method: Any) -> Any:
        scoring = threading.main_thread()

        def call(value: Any) -> Any:  # counted in the scoring thread only (a detached
            t0 = time.thread_time()  # sink's thread is counted with the sink's threads)
            try:
                return method(value)
            finally:
                if self.counting and threading.current_thread() is scoring:
                    self.cpu_s += time.thread_time() - t0

        return call

    def close(self) -> None:
        self.sink.close()


class Paced:
    """A synthetic ECG night in 1-s packets: ``fast`` packets at once, then one a second for
    ``realtime_s``; snapshots of the threads where the real-time part begins and ends."""

    def __init__(self, signal: np.ndarray, sfreq: float, fast: int, realtime_s: float,
                 timed: list[Timed]) -> None:  # fmt: skip
        self.signal, self.sfreq, self.fast, self.realtime_s = signal, sfreq, fast, realtime_s
        self.timed = timed
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
                for sink in self.timed:
                    sink.counting = True
            if k >= self.fast:
                time.sleep(max(0.0, t0 + (k - self.fast + 1) - time.monotonic()))
            start = (k * step) % (self.signal.size - step)
            yield Packet(k * step, self.signal[start : start + step, None])
        self.snapshots.append((time.monotonic(), threads()))
        for sink in self.timed:
            sink.counting = False

    def close(self) -> None:
        pass


def child(variant: str, realtime_s: float, name: str) -> dict[str, Any]:
    """One variant in this (fresh) process: the measures of the module docstring."""
    from edgesleep.live import LivePage
    from edgesleep.lsl import LslOutlet
    from edgesleep.shipped import default_model
    from edgesleep.stream import StreamOptions, stream_to_csv
    from edgesleep.synth.psg import generate_night

    model = default_model()
    stages = np.array([0] * 10 + [1] * 10 + [2] * 40 + [3] * 30 + [4] * 30)  # 1 h, looped
    signal = generate_night(0, 0, stages=stages).signals["ECG"]
    rss_before_kb = vm("VmRSS")
    before = set(threads())
    n_classes = model.info.n_classes
    sinks: list[Timed] = []
    if variant.startswith("lsl-out"):
        sinks.append(Timed(LslOutlet(name, n_classes, 0.0)))
    elif variant.startswith("serve"):
        sinks.append(Timed(LivePage(f"127.0.0.1:{name}", n_classes)))
    elif variant.startswith("floor"):
        sinks.append(Timed(Woken()))
    source = Paced(signal, 100.0, FAST_EPOCHS * 30, realtime_s, sinks)
    with tempfile.TemporaryDirectory() as tmp:
        report = stream_to_csv(model, source, Path(tmp) / "night.csv", StreamOptions(),
                               sinks=sinks)  # fmt: skip
        rss_kb = vm("VmRSS")
    (t0, a), (t1, b) = source.snapshots
    seconds = t1 - t0
    new = [tid for tid in b if tid not in before]
    sink_ns = sum(b[t][0] - a.get(t, (0, 0))[0] for t in new)
    sink_ns += sum(int(s.cpu_s * 1e9) for s in sinks)  # its calls in the scoring thread
    all_ns = sum(b[t][0] - a.get(t, (0, 0))[0] for t in b)
    switches = sum(b[t][1] - a.get(t, (0, 0))[1] for t in b)
    per_hour = 3600 / seconds / 1e9
    return {
        "variant": variant,
        "seconds": round(seconds, 1),
        "epochs": report.epochs,
        "sink_threads": len(new),
        "sink_inline_cpu_s_per_h": round(sum(s.cpu_s for s in sinks) * 3600 / seconds, 5),
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
    rows: list[dict[str, Any]] = []
    for variant in VARIANTS:
        name = f"bench-{os.getpid()}-{len(rows)}" if "lsl" in variant else str(_free_port())
        reader = None
        if variant.endswith(("one reader", "one viewer")):
            script = READER if variant.endswith("reader") else VIEWER
            reader = subprocess.Popen([sys.executable, "-c", script, name], env=env,
                                      stdout=subprocess.PIPE, text=True)  # fmt: skip
        command = [sys.executable, "-m", "edgesleep.bench.sinks", "--child", variant,
                   "--seconds", str(realtime_s), "--name", name]  # fmt: skip
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        row = json.loads(done.stdout.splitlines()[-1])
        if reader is not None:
            row["reader_received"] = int(reader.communicate(timeout=120)[0].strip() or 0)
        rows.append(row)
    base, floor, quiet, read, page, viewed = rows
    return {
        "command": f"python -m edgesleep.bench.sinks --seconds {realtime_s:g}",
        "machine_only_lsl": machine_only(),
        "realtime_s": realtime_s,
        "variants": rows,
        "floor_cpu_s_per_h": floor["sink_cpu_s_per_h"],
        "outlet_with_reader_cpu_s_per_h": read["sink_cpu_s_per_h"],
        "wakeups_no_reader_minus_base": round(quiet["wakeups_per_s"] - base["wakeups_per_s"], 2),
        "rss_increment_mb": round(max(quiet["rss_mb"], read["rss_mb"]) - base["rss_mb"], 1),
        "page_with_viewer_cpu_s_per_h": viewed["sink_cpu_s_per_h"],
        "wakeups_page_no_viewer_minus_base": round(
            page["wakeups_per_s"] - base["wakeups_per_s"], 2
        ),
        "page_rss_increment_mb": round(max(page["rss_mb"], viewed["rss_mb"]) - base["rss_mb"], 1),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# What the LSL outlet and the live page cost a stream",
        "",
        f"`{result['command']}`: the shipped heart model staging a SYNTHETIC ECG hour into "
        f"a night file, {result['realtime_s']:g} s at real time per variant, each in a fresh "
        f"process (LSL machine-only: {result['machine_only_lsl']}). Sink CPU: the threads "
        "the sink brought plus its calls in the scoring thread (inline), per streamed hour. "
        "RSS before: before the stream, after the model and signal.",
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
    pcpu = result["page_with_viewer_cpu_s_per_h"]
    pwake = result["wakeups_page_no_viewer_minus_base"]
    prss = result["page_rss_increment_mb"]
    lines += [
        "",
        f"One thread wake-up per epoch costs {result['floor_cpu_s_per_h']} CPU-s per streamed "
        "hour on this machine (the floor row): a reader's or a viewer's thread pays at least "
        "that.",
        "",
        "| goal | measured | met |",
        "|---|---|---|",
        f"| LSL outlet + one reader ≤ 0.01 CPU-s per streamed hour | {cpu} | {cpu <= 0.01} |",
        f"| LSL outlet: wake-ups/s unchanged with no reader | {wake:+} | {abs(wake) < 0.5} |",
        f"| LSL outlet: RSS ≤ +5 MB | {rss:+} | {rss <= 5} |",
        f"| live page + one viewer ≤ 0.01 CPU-s per streamed hour | {pcpu} | {pcpu <= 0.01} |",
        f"| live page: wake-ups/s unchanged with no viewer | {pwake:+} | {abs(pwake) < 0.5} |",
        f"| live page: RSS ≤ +5 MB | {prss:+} | {prss <= 5} |",
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
    write(result, args.out)
    print(markdown(result))


def write(result: dict[str, Any], out: Path) -> None:
    """``sinks.json`` and ``sinks.md`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "sinks.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "sinks.md").write_text(markdown(result))


if __name__ == "__main__":
    main()
