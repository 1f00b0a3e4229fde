"""The streaming R-peak detector on MIT-BIH Arrhythmia record 100 (real ECG, lead MLII).

Run: ``python -m edgesleep.bench.rpeaks [--data tests/data/mitbih/mitbih100_mlii.npz]``
(writes ``bench/results/rpeaks.json``). Reference: the record's beat annotations (beat codes
only; the rhythm mark "+" dropped), matched within ±50 ms, at the native 360 Hz and after
resampling to 100 Hz (the rate the device runs the detector at).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from edgesleep.dsp import resample
from edgesleep.dsp.beats import RPeakDetector, detect_rpeaks
from edgesleep.metrics import match_beats

# MIT-BIH beat annotation codes; everything else ("+", "~", "|", ...) is not a beat
BEAT_CODES = list("NLRBAaJSVrFejnE/fQ?")


def load_record(path: Path) -> tuple[np.ndarray, float, np.ndarray]:
    """The shipped record: ECG in µV, its rate in Hz, the reference beat times in s."""
    d = np.load(path)
    ecg_uv = (d["ecg_adc"] - d["adc_baseline"]) / d["adc_gain_per_mv"] * 1000.0
    sfreq = float(d["sfreq"])
    return ecg_uv, sfreq, d["beat_sample"][np.isin(d["beat_symbol"], BEAT_CODES)] / sfreq


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("tests/data/mitbih/mitbih100_mlii.npz"))
    parser.add_argument("--out", type=Path, default=Path("bench/results/rpeaks.json"))
    args = parser.parse_args()
    ecg, sfreq, reference = load_record(args.data)
    rates: dict[str, dict[str, float]] = {}
    result = {"record": "mitbih 100 MLII", "tolerance_s": 0.05, "rates": rates}
    for label, x, fs in (("native", ecg, sfreq), ("100 Hz", resample(ecg, sfreq), 100.0)):
        found = match_beats(detect_rpeaks(x, fs) / fs, reference, 0.05)
        rates[f"{label} ({fs:g} Hz)"] = {**found, "delay_s": RPeakDetector(fs).delay_s}
        print(
            f"{label:>7}: {found['n_detected']} detected, {found['n_reference']} reference, "
            f"sensitivity {100 * found['sensitivity']:.2f} %, PPV {100 * found['ppv']:.2f} %"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
