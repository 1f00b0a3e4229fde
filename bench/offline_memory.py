"""Peak memory of scoring a whole night offline (``edgesleep stage``), by input rate.

Run: ``python -m edgesleep.bench.offline_memory MODEL_DIR... [--hours 8] [--rates 100 256
500] [--out bench/results]``. Writes ``offline_memory.json`` / ``.md``. For each rate an EDF
night of ``--hours`` of the model's channel (SYNTHETIC: a 10-Hz rhythm in noise, int16) is
scored by :func:`edgesleep.api.score_file` in a fresh process, whose peak RSS (VmHWM) is
reported beside a fresh process that only imports the runtime and loads the model. The
signal is read, resampled and scored in pieces, so the peak should not grow with the rate.
Goal: peak RSS <= 120 MB for 8 h at 500 Hz.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgesleep import __version__
from edgesleep.bench.process import peak_rss_kb
from edgesleep.bench.runtime import interpreter
from edgesleep.io.writers import markdown_table, write_report
from edgesleep.ort import ExportedModel, cpu_info

GOAL_MB = 120.0


def write_night(path: Path, channel: str, sfreq: float, hours: float) -> None:
    """A SYNTHETIC night of one channel, µV, written record by record (int16 in the file)."""
    import pyedflib

    n_times = int(hours * 3600 * sfreq)
    writer = pyedflib.EdfWriter(str(path), 1, file_type=pyedflib.FILETYPE_EDFPLUS)
    writer.setSignalHeaders([{
        "label": channel, "dimension": "uV", "sample_frequency": sfreq, "physical_max": 500.0,
        "physical_min": -500.0, "digital_max": 32767, "digital_min": -32768, "transducer": "",
        "prefilter": "",
    }])  # fmt: skip
    rng = np.random.default_rng(0)
    step = int(sfreq)  # one second per record
    for start in range(0, n_times, step):
        t = (start + np.arange(step)) / sfreq
        writer.writePhysicalSamples(20 * np.sin(2 * np.pi * 10 * t) + rng.normal(0, 15, step))
    writer.close()


def child(edf_path: str, model_dir: str, score: bool) -> None:
    """In the fresh process: load the model (and score the night); print VmHWM and time."""
    from edgesleep.api import score_file

    t0 = time.perf_counter()
    model = ExportedModel(model_dir)
    n_epochs = score_file(edf_path, model).n_epochs if score else 0
    print(json.dumps({"maxrss_kb": peak_rss_kb(), "epochs": n_epochs,
                      "seconds": round(time.perf_counter() - t0, 2)}))  # fmt: skip


def _fresh(edf_path: Path, model_dir: Path, score: bool) -> dict[str, Any]:
    args = [*interpreter(), "-m", "edgesleep.bench.offline_memory", "--child", str(edf_path),
            str(model_dir.resolve()), "score" if score else "load"]  # fmt: skip
    run = subprocess.run(args, check=True, capture_output=True, text=True,
                         cwd=tempfile.gettempdir())  # fmt: skip
    return dict(json.loads(run.stdout.strip().splitlines()[-1]))


def measure(model_dirs: list[Path], hours: float, rates: list[float]) -> dict[str, Any]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model_dir in model_dirs:
            model = ExportedModel(model_dir)
            floor = _fresh(Path("-"), model_dir, score=False)
            for sfreq in rates:
                path = Path(tmp) / f"night-{sfreq:g}.edf"
                write_night(path, model.info.channel, sfreq, hours)
                got = _fresh(path, model_dir, score=True)
                rows.append({
                    "model": f"{model.info.model} {model.info.precision}", "sfreq": sfreq,
                    "hours": hours, "epochs": got["epochs"],
                    "floor_rss_mb": round(floor["maxrss_kb"] / 1024, 1),
                    "peak_rss_mb": round(got["maxrss_kb"] / 1024, 1),
                    "increment_mb": round((got["maxrss_kb"] - floor["maxrss_kb"]) / 1024, 1),
                    "seconds": got["seconds"],
                })  # fmt: skip
    return {
        "edgesleep_version": __version__,
        "cpu": cpu_info(),
        "goal_peak_rss_mb": GOAL_MB,
        "rows": rows,
    }


def markdown(result: dict[str, Any]) -> str:
    rows = [
        [r["model"], f"{r['sfreq']:g}", f"{r['hours']:g}", r["epochs"], r["floor_rss_mb"],
         r["peak_rss_mb"], r["increment_mb"], r["seconds"],
         "yes" if r["peak_rss_mb"] <= result["goal_peak_rss_mb"] else "NO"]
        for r in result["rows"]
    ]  # fmt: skip
    columns = ["model", "Hz", "hours", "epochs", "floor MB", "peak RSS MB", "over the floor MB",
               "s", f"<= {result['goal_peak_rss_mb']:g} MB"]  # fmt: skip
    lines = [
        "# Offline scoring of a night: peak memory",
        "",
        f"`python -m edgesleep.bench.offline_memory`, {result['cpu']['model']}. SYNTHETIC "
        "one-channel nights; a fresh process per night. Floor: a fresh process that imports "
        "the runtime and loads the model.",
        "",
        *markdown_table(columns, rows),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4] == "score")
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--rates", type=float, nargs="+", default=[100.0, 256.0, 500.0])
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    result = measure(args.models, args.hours, args.rates)
    write_report(args.out, "offline_memory", result, markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
