"""edgesleep beside YASA, sleepecg and GSSC: CPU, peak memory, start-up and per-epoch cost.

Runs in its own environment (the peers' pinned versions; not edgesleep's extras or CI)::

    python3.11 -m venv .venv-peers
    .venv-peers/bin/pip install torch==2.13.0
    .venv-peers/bin/pip install -r studies/peers/requirements.txt -e .
    python studies/export_table.py --keep runs/export-study      # edgesleep's EEG student
    .venv-peers/bin/python studies/peers/compare.py              # ~10 min on 2 cores

One SYNTHETIC night (edgesleep's generator: EEG, EOG and ECG at 256 Hz, 1092 epochs =
9.1 h) is staged by each tool in a fresh process, the tools interleaved (their order
rotated) over ``--rounds`` rounds; every process is held to one thread (``*_NUM_THREADS=1``
and each tool's own setting), the cost of a wearable-class core. Per tool and round:

- **night**: import time, then wall and CPU seconds (``time.process_time``, all threads) to
  stage the night from arrays in memory, and the process's peak RSS (``VmHWM``);
- **epoch**: what one new epoch costs when stages are wanted as the night goes on. edgesleep
  streams (the stager fed 1-s packets: the packet that completes an epoch, median); GSSC
  has an epoch-by-epoch API (``ArrayInfer``, with its recurrent state; timed on epochs
  already filtered, resampled and z-scored, which favours it); YASA and sleepecg have none,
  so a new epoch costs a re-run over the night so far (their night time above, the upper
  end; ``epoch`` there is that number).

The tools: edgesleep's student (int8 step graph, EEG; from ``--eeg-model``) and its shipped
heart model (ECG); YASA's ``SleepStaging`` (EEG + EOG, LightGBM); sleepecg's
``wrn-gru-mesa`` (heartbeats detected from the ECG, Keras on torch); GSSC's
``EEGInfer.mne_infer`` (EEG + EOG, torch). The stages of a synthetic night say nothing
about sleep: only the costs are compared. Writes ``studies/results/peers.json`` and
``peers.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

SFREQ = 256.0
N_EPOCHS = 1092  # 9.1 h
GSSC_EPOCHS = 40  # epochs timed one by one through GSSC's ArrayInfer
TOOLS = ("edgesleep-eeg", "edgesleep-ecg", "yasa", "sleepecg", "gssc")
ONE_THREAD = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                               "NUMEXPR_NUM_THREADS")}  # fmt: skip


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM (Linux only)")


def make_night(path: Path) -> None:
    """The SYNTHETIC night: µV arrays at 256 Hz and the generator's stages."""
    from edgesleep.synth.hypnograms import markov_model
    from edgesleep.synth.psg import generate_night

    rng = np.random.default_rng(22)
    stages = np.concatenate([markov_model().sample(rng, 20) for _ in range(2)])[:N_EPOCHS]
    night = generate_night(22, 0, SFREQ, stages=stages)
    np.savez(path, eeg=night.signals["EEG Fpz-Cz"], eog=night.signals["EOG horizontal"],
             ecg=night.signals["ECG"], stages=stages)  # fmt: skip


# --- children: one tool, one task, in a fresh process --------------------------------------


def _edgesleep(night: dict[str, np.ndarray], task: str, channel: str, model_dir: str) -> dict:
    t0 = time.perf_counter()
    from edgesleep.ort import ExportedModel
    from edgesleep.shipped import default_model
    from edgesleep.stager import Stager, score_signal

    model = default_model() if channel == "ecg" else ExportedModel(model_dir, "int8")
    imported = time.perf_counter() - t0
    x = night[channel]
    if task == "night":
        c0, w0 = time.process_time(), time.perf_counter()
        n = len(score_signal(model, x, SFREQ))
        return {"import_s": imported, "wall_s": time.perf_counter() - w0,
                "cpu_s": time.process_time() - c0, "epochs": n}  # fmt: skip
    stager, packet, spent = Stager(model, SFREQ, delay=0), int(SFREQ), []
    for start in range(0, x.shape[0], packet):
        t = time.perf_counter()
        if stager.push(x[start : start + packet]):
            spent.append(time.perf_counter() - t)
    return {"import_s": imported, "epoch_s": float(np.median(spent[20:])), "epochs": len(spent)}


def _mne_raw(night: dict[str, np.ndarray]) -> Any:
    import mne

    mne.set_log_level("ERROR")
    info = mne.create_info(["EEG", "EOG"], SFREQ, ["eeg", "eog"])
    return mne.io.RawArray(np.stack([night["eeg"], night["eog"]]) * 1e-6, info)


def _yasa(night: dict[str, np.ndarray], task: str) -> dict:
    t0 = time.perf_counter()
    import yasa

    imported = time.perf_counter() - t0
    c0, w0 = time.process_time(), time.perf_counter()
    stages = yasa.SleepStaging(_mne_raw(night), eeg_name="EEG", eog_name="EOG").predict()
    wall = time.perf_counter() - w0
    return {"import_s": imported, "wall_s": wall, "cpu_s": time.process_time() - c0,
            "epochs": len(stages), "epoch_s": wall}  # fmt: skip


def _sleepecg(night: dict[str, np.ndarray], task: str) -> dict:
    t0 = time.perf_counter()
    import sleepecg

    clf = sleepecg.load_classifier("wrn-gru-mesa", "SleepECG")
    imported = time.perf_counter() - t0
    c0, w0 = time.process_time(), time.perf_counter()
    beats = sleepecg.detect_heartbeats(night["ecg"], SFREQ) / SFREQ
    record = sleepecg.SleepRecord(
        sleep_stages=np.zeros(N_EPOCHS, dtype=np.int64),  # only the number of epochs
        sleep_stage_duration=30,
        id="synthetic",
        heartbeat_times=beats,
        subject_data=sleepecg.SubjectData(),
    )
    stages = sleepecg.stage(clf, record, return_mode="int")
    wall = time.perf_counter() - w0
    return {"import_s": imported, "wall_s": wall, "cpu_s": time.process_time() - c0,
            "epochs": len(stages), "epoch_s": wall}  # fmt: skip


def _gssc(night: dict[str, np.ndarray], task: str) -> dict:
    t0 = time.perf_counter()
    import torch
    from gssc.infer import ArrayInfer, EEGInfer
    from gssc.utils import epo_arr_zscore, permute_sigs
    from importlib_resources import files

    torch.set_num_threads(1)
    # GSSC 0.0.9 pickles whole modules; torch >= 2.6 loads weights only unless told: these
    # are the package's own files, loaded as its own code did before torch 2.6
    nets = [torch.load(files("gssc.nets").joinpath(name), weights_only=False)
            for name in ("sig_net_v1.pt", "gru_net_v1.pt")]  # fmt: skip
    infer = EEGInfer(net=nets[0], con_net=nets[1], use_cuda=False)
    imported = time.perf_counter() - t0
    if task == "night":
        c0, w0 = time.process_time(), time.perf_counter()
        out = infer.mne_infer(_mne_raw(night), eeg=["EEG"], eog=["EOG"])
        return {"import_s": imported, "wall_s": time.perf_counter() - w0,
                "cpu_s": time.process_time() - c0, "epochs": len(out[0])}  # fmt: skip
    # epoch by epoch: the night filtered and resampled to its 2560 samples per epoch once,
    # then each epoch z-scored and inferred with the recurrent state carried
    raw = _mne_raw(night).filter(0.3, 30.0).resample(2560 / 30.0)
    data = raw.get_data()[:, : GSSC_EPOCHS * 2560] * 1e6
    epochs = data.reshape(2, GSSC_EPOCHS, 2560).transpose(1, 0, 2)
    signals = {"eeg": {"chans": ["EEG"], "drop": True, "flip": False},
               "eog": {"chans": ["EOG"], "drop": True, "flip": False}}  # fmt: skip
    sig_combs, perm_matrix, all_chans, _ = permute_sigs(None, signals)
    streaming = ArrayInfer(infer.net, infer.con_net, sig_combs, perm_matrix, all_chans)
    hiddens = torch.zeros(len(perm_matrix), 10, 1, 256)
    spent = []
    for epoch in epochs:
        t = time.perf_counter()
        arr = torch.tensor(epo_arr_zscore(epoch[None].copy()), dtype=torch.float32)
        _, _, hiddens = streaming.infer(arr, hiddens)
        spent.append(time.perf_counter() - t)
    return {"import_s": imported, "epoch_s": float(np.median(spent[3:])), "epochs": len(spent)}


def child(tool: str, task: str, night_path: str, model_dir: str) -> None:
    night = np.load(night_path)  # each tool reads only the channels it stages
    if tool.startswith("edgesleep"):
        got = _edgesleep(night, task, tool.split("-")[1], model_dir)
    else:
        got = {"yasa": _yasa, "sleepecg": _sleepecg, "gssc": _gssc}[tool](night, task)
    print(json.dumps({**got, "peak_rss_mb": peak_rss_mb()}))


# --- the parent: rounds of fresh processes --------------------------------------------------


def run_child(tool: str, task: str, night: Path, model_dir: Path) -> dict:
    env = {**os.environ, **ONE_THREAD, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "3"}
    args = [sys.executable, __file__, "--child", tool, task, str(night), str(model_dir)]
    done = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{tool} {task} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def measure(rounds: int, model_dir: Path, progress: bool = True) -> dict[str, Any]:
    runs: dict[str, dict[str, list[dict]]] = {t: {"night": [], "epoch": []} for t in TOOLS}
    with tempfile.TemporaryDirectory() as tmp:
        night = Path(tmp) / "night.npz"
        make_night(night)
        for r in range(rounds):
            order = TOOLS[r % len(TOOLS) :] + TOOLS[: r % len(TOOLS)]
            for tool in order:
                for task in ("night", "epoch"):
                    if task == "epoch" and tool in ("yasa", "sleepecg"):
                        continue  # no incremental API: the night's time is the re-run
                    if progress:
                        print(f"round {r + 1}/{rounds}: {tool} {task}", file=sys.stderr)
                    runs[tool][task].append(run_child(tool, task, night, model_dir))
    return runs


def summarise(runs: dict[str, dict[str, list[dict]]]) -> dict[str, dict[str, float]]:
    """Medians over rounds per tool: import s, night wall s, night CPU s, peak RSS MB,
    per-epoch s."""
    out = {}
    for tool, tasks in runs.items():
        nights = tasks["night"]
        epochs = tasks["epoch"] or nights

        def med(rows: list[dict], key: str) -> float:
            return float(np.median([r[key] for r in rows]))

        out[tool] = {
            "import_s": med(nights, "import_s"),
            "night_wall_s": med(nights, "wall_s"),
            "night_cpu_s": med(nights, "cpu_s"),
            "peak_rss_mb": med(nights, "peak_rss_mb"),
            "epoch_s": med(epochs, "epoch_s"),
            "epochs_staged": int(nights[0]["epochs"]),
        }
    return out


PAIRS = (("edgesleep-eeg", "yasa"), ("edgesleep-eeg", "gssc"), ("edgesleep-ecg", "sleepecg"))
GOALS = (("edgesleep-ecg", "sleepecg", 5.0), ("edgesleep-eeg", "yasa", 20.0))


def markdown(result: dict[str, Any]) -> str:
    s, v = result["summary"], result["versions"]
    lines = [
        "# edgesleep beside YASA, sleepecg and GSSC (one SYNTHETIC 9.1-h night)",
        "",
        f"{result['cpu']}, Python {result['python']}; one thread per process; "
        f"{result['rounds']} rounds, fresh processes, tools interleaved; medians. "
        f"Versions: {', '.join(f'{k} {x}' for k, x in v.items())}. "
        "Per-epoch cost: edgesleep streams (1-s packets, the packet that completes an epoch); "
        "GSSC's ArrayInfer infers one epoch with its recurrent state (on epochs already "
        "filtered and resampled); YASA and sleepecg have no incremental API, so a new epoch "
        "costs a re-run (their night time). Nights per hour per core: 9.1-h nights staged "
        "offline one after another in one process (3600 / night CPU s; the import once). "
        "Stages of synthetic data say nothing about "
        "sleep; only costs are compared. Command: `.venv-peers/bin/python "
        "studies/peers/compare.py`.",
        "",
        "| tool | input | import s | night: wall s | night: CPU s | nights per hour per core "
        "| peak RSS MB | one new epoch, ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    inputs = {
        "edgesleep-eeg": "EEG (student int8)",
        "edgesleep-ecg": "ECG (heart-4class)",
        "yasa": "EEG + EOG",
        "sleepecg": "ECG (wrn-gru-mesa)",
        "gssc": "EEG + EOG",
    }
    for tool in TOOLS:
        r = s[tool]
        lines.append(
            f"| {tool} | {inputs[tool]} | {r['import_s']:.3f} | {r['night_wall_s']:.3f} | "
            f"{r['night_cpu_s']:.3f} | {3600 / r['night_cpu_s']:.0f} | "
            f"{r['peak_rss_mb']:.0f} | {1000 * r['epoch_s']:.3f} |"
        )
    lines += ["", "| edgesleep vs | CPU per night | peak RSS | import | one new epoch |",
              "|---|---|---|---|---|"]  # fmt: skip
    for ours, peer in PAIRS:
        a, b = s[ours], s[peer]
        lines.append(
            f"| {peer} ({ours}) | {b['night_cpu_s'] / a['night_cpu_s']:.1f}× less | "
            f"{b['peak_rss_mb'] / a['peak_rss_mb']:.1f}× less | "
            f"{b['import_s'] / a['import_s']:.1f}× faster | "
            f"{b['epoch_s'] / a['epoch_s']:.0f}× cheaper |"
        )
    lines += ["", "| goal (issue 33) | measured | met |", "|---|---|---|"]
    for ours, peer, want in GOALS:
        ratio = s[peer]["night_cpu_s"] / s[ours]["night_cpu_s"]
        lines.append(f"| {ours}: night CPU >= {want:g}x less than {peer} | {ratio:.1f}x | "
                     f"{'yes' if ratio >= want else 'NO'} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:6])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    default_model = Path("runs/export-study/student-portable")
    parser.add_argument("--eeg-model", type=Path, default=default_model)
    parser.add_argument("--out", type=Path, default=Path("studies/results"))
    args = parser.parse_args()
    from importlib.metadata import version

    from edgesleep.io.writers import write_report
    from edgesleep.ort import cpu_info

    runs = measure(args.rounds, args.eeg_model.resolve())
    names = ("edgesleep", "yasa", "sleepecg", "gssc", "onnxruntime", "torch", "lightgbm", "mne")
    cpu = cpu_info()
    result = {
        "synthetic": True,
        "epochs": N_EPOCHS,
        "sfreq": SFREQ,
        "rounds": args.rounds,
        "cpu": f"{cpu['model']} ({cpu['machine']})",
        "python": platform.python_version(),
        "versions": {n: version(n) for n in names},
        "summary": summarise(runs),
        "runs": runs,
    }
    text = markdown(result)
    write_report(args.out, "peers", result, text)
    print(text)


if __name__ == "__main__":
    main()
