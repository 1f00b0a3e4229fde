"""Add the step graph to an export made before it (``readout.streaming`` "window").

A causal model's step graph is its encoder and sequence graphs and a few glue nodes, so it
is composed from the exported files alone, int8 included, with no checkpoint: the stream
then computes what the old two-call stream computed, in one call. A non-causal model's
step (SeqSleepNet's readout tail) is built from its torch weights: export its checkpoint
again instead.

Run: ``python -m edgesleep.export.upgrade MODEL_DIR...`` (each an ``edgesleep export``
folder; every precision in it is upgraded in place, the graphs re-saved with the new
metadata and their new SHA-256).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import onnx

from edgesleep.errors import InputError
from edgesleep.export.graphs import compose_step, graph_flops, graph_metadata, save
from edgesleep.metadata import GRAPHS, PRECISIONS
from edgesleep.ort import ExportedModel

log = logging.getLogger("edgesleep")


def add_step(folder: Path) -> list[Path]:
    """Add ``step.onnx`` to every precision of the export in ``folder`` (or to ``folder``
    itself when it holds the graphs); return the variant folders upgraded (none when each
    already has one).

    Raises
    ------
    InputError
        The model is not causal (its step needs the checkpoint), or the folder is not an
        export.
    """
    done = []
    variants = [folder] if (folder / "encoder.onnx").is_file() else [folder / p for p in PRECISIONS]
    for variant in variants:
        if not (variant / "encoder.onnx").is_file() or (variant / "step.onnx").is_file():
            continue
        info = ExportedModel(variant).info  # verifies the files
        readout = info.raw["readout"]
        if not readout["causal"]:
            raise InputError(
                f"{variant}: {info.model} is not causal; its step graph is built from the "
                "checkpoint: run `edgesleep export CHECKPOINT.pt` again"
            )
        field = readout.get("receptive_field_epochs") or info.seq_len
        context = min(info.seq_len, int(field)) - 1
        protos = {
            name: onnx.load(variant / f"{name}.onnx")
            for name in GRAPHS
            if name != "step" and (variant / f"{name}.onnx").is_file()
        }
        step = compose_step(protos["encoder"], protos["sequence"], context, False, info.n_classes)
        protos["step"] = step
        flops = graph_flops(step, {"past": context})
        meta = {
            **info.raw,
            "readout": {**readout, "streaming": "step", "stream_context": context},
            "flops": {**info.raw["flops"], "step_per_new_epoch_delay_0": flops,
                      "step_per_new_epoch_delay_max": flops},
        }  # fmt: skip
        for name, proto in protos.items():
            save(proto, graph_metadata(meta, name), variant / f"{name}.onnx")
        log.info("%s: step.onnx added (%d cached epochs)", variant, context)
        done.append(variant)
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="edgesleep export folders")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for folder in args.folders:
        for variant in add_step(folder):
            print(f"{variant}: step.onnx added")


if __name__ == "__main__":
    main()
