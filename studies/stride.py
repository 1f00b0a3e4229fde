"""How far apart should training windows start? Accuracy and time for strides 1, 5, 20.

Run: ``python studies/stride.py [--out studies/results]`` (writes
``stride.json`` / ``stride.md``). SYNTHETIC nights (generator 1.0): SeqSleepNet on
"EEG C4-A1", 5 subjects: 3 train, 1 validation, 1 test; 10 passes over the windows
(the paper's budget), validation once per pass, early stopping after 3 passes without gain.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from edgesleep.io.dataset import read_dataset
from edgesleep.io.writers import write_report
from edgesleep.synth.psg import GENERATOR_VERSION, synthesize_dataset
from edgesleep.train.data import load_features
from edgesleep.train.evaluate import evaluate_nights
from edgesleep.train.training import TrainOptions
from edgesleep.train.transfer import train_features

STRIDES = (1, 5, 20)
CHANNEL = "EEG C4-A1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("studies/results"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        synthesize_dataset(Path(tmp), n_nights=10, seed=300)
        nights = load_features(read_dataset(tmp), CHANNEL, 5)
    train = [n for n in nights if n.subject in ("0", "1", "2")]
    val = [n for n in nights if n.subject == "3"]
    test = [n for n in nights if n.subject == "4"]
    n_epochs = sum(n.n_epochs for n in train)
    rows = []
    for stride in STRIDES:
        per_pass = max(1, n_epochs // stride // 32)
        opts = TrainOptions(
            passes=10, stride=stride, eval_every=per_pass, patience=3, seed=args.seed
        )
        ckpt = train_features(train, val, CHANNEL, opts=opts)
        m = evaluate_nights(ckpt.scorer(), test, 5, [19])[19]
        training = ckpt.provenance["training"]
        rows.append(
            {
                "stride": stride,
                "steps": training["steps"],
                "best_step": training["best_step"],
                "seconds": training["seconds"],
                "val_accuracy": ckpt.provenance["metrics"]["val_accuracy"],
                "test_accuracy": m["accuracy"],
                "test_kappa": m["kappa"],
                "test_macro_f1": m["macro_f1"],
            }
        )
        print(rows[-1], flush=True)
    result = {
        "synthetic": True,
        "generator_version": GENERATOR_VERSION,
        "channel": CHANNEL,
        "train_epochs": n_epochs,
        "seed": args.seed,
        "rows": rows,
        "command": "python studies/stride.py",
    }
    lines = [
        "# Training-window stride (SYNTHETIC data)",
        "",
        f"SeqSleepNet on {CHANNEL}, {n_epochs} training epochs of 3 synthetic subjects, "
        "1 validation and 1 test subject; 10 passes, early stopping after 3 passes without "
        "gain; test readout K = 19. Command: `python studies/stride.py`.",
        "",
        "| stride | steps run | best step | seconds | val acc | test acc | test κ | test MF1 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['stride']} | {r['steps']} | {r['best_step']} | {r['seconds']} | "
            f"{r['val_accuracy']:.3f} | {r['test_accuracy']:.3f} | "
            f"{r['test_kappa']:.3f} | {r['test_macro_f1']:.3f} |"
        )
    write_report(args.out, "stride", result, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
