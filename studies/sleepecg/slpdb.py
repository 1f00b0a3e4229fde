"""sleepecg's pretrained ``wrn-gru-mesa`` on the slpdb records (W / NREM / REM).

Runs in its own environment (Keras; sleepecg 0.6 runs it on the torch backend), outside
edgesleep's extras and CI::

    python3.11 -m venv .venv-sleepecg
    .venv-sleepecg/bin/pip install -r studies/sleepecg/requirements.txt -e .
    .venv-sleepecg/bin/python studies/sleepecg/slpdb.py --data ../shared/data/slpdb

It writes ``studies/results/sleepecg_slpdb.json``: per record, one prediction per epoch of
edgesleep's slpdb reader (0 W, 1 NREM, 2 REM, -1 none), from the real beat times. The
recording start time is not in the CSV export, so that feature is missing (sleepecg masks
it); age and sex are given, as sleepecg's own slpdb reader gives them.
``python studies/cardiac_slpdb.py`` scores it on exactly the study's epochs.
"""

from __future__ import annotations

import argparse
import csv
import json
from importlib.metadata import version
from pathlib import Path

import numpy as np
import sleepecg

from edgesleep.io.slpdb import read_record, record_names

# wake-rem-nrem classes of sleepecg: 0 undefined, 1 NREM, 2 REM, 3 wake -> edgesleep 3-class
TO_EDGESLEEP = np.array([-1, 1, 2, 0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/slpdb"))
    parser.add_argument("--out", type=Path, default=Path("studies/results/sleepecg_slpdb.json"))
    args = parser.parse_args()
    clf = sleepecg.load_classifier("wrn-gru-mesa", "SleepECG")
    with (args.data / "records.csv").open(newline="") as fh:
        meta = {row["record"]: row for row in csv.DictReader(fh)}
    predictions = {}
    for name in record_names(args.data):
        rec = read_record(args.data, name)
        age = meta[name]["age"]
        n_epochs = rec.stages.shape[0]
        record = sleepecg.SleepRecord(
            # all UNDEFINED: only sets the number of epochs to predict (stage() ignores labels)
            sleep_stages=np.zeros(n_epochs, dtype=np.int64),
            sleep_stage_duration=30,
            id=name,
            heartbeat_times=rec.beat_times_s,
            subject_data=sleepecg.SubjectData(
                gender=sleepecg.Gender.MALE, age=None if age == "x" else int(age)
            ),
        )
        stages = TO_EDGESLEEP[sleepecg.stage(clf, record, return_mode="int")]
        out = np.full(n_epochs, -1, dtype=np.int64)
        out[: min(n_epochs, stages.shape[0])] = stages[:n_epochs]
        predictions[name] = out.tolist()
        print(f"{name}: {n_epochs} epochs, {stages.shape[0]} predicted", flush=True)
    result = {
        "model": "wrn-gru-mesa",
        "classes": ["W", "NREM", "REM"],
        "versions": {p: version(p) for p in ("sleepecg", "keras", "torch", "numpy")},
        "predictions": predictions,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
