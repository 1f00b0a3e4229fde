"""Parity bundles: check another machine (a Raspberry Pi, an emulated aarch64) against the host.

``python -m edgesleep.bench.parity write OUT MODEL_DIR...`` runs on the host (x86, the
machine the models were exported and tested on). It copies each exported model folder to
``OUT/models/NAME/``, makes a labelled SYNTHETIC night of ``N_EPOCHS`` epochs at 100 Hz on
the model's channel, and stores in ``OUT/models/NAME/reference.npz``: the night, the images
of the runtime's front end (1-s packets) and, per precision, the stage probabilities of
offline scoring (the model's default delay) and of the stream (1-s packets, delay 0), with
``OUT/manifest.json`` (host CPU and versions).

``python -m edgesleep.bench.parity check BUNDLE`` runs on the other machine and prints, per
model and precision, how far its outputs are from the host's (:func:`compare`); the
``parity``-marked tests (``tests/test_parity.py``) assert the same numbers against fixed
tolerances. Runtime dependencies only (numpy, onnxruntime; scipy for the synthetic night).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edgesleep import __version__
from edgesleep.metadata import PRECISIONS
from edgesleep.ort import ExportedModel, cpu_info, is_variant
from edgesleep.stager import FrontEnd, Stager, score_signal

N_EPOCHS = 50
SFREQ = 100.0
MANIFEST = "manifest.json"
REFERENCE = "reference.npz"


def front_images(kind: str, signal: np.ndarray) -> np.ndarray:
    """The front end's images of ``signal`` (100 Hz) fed in 1-s packets, (n_epochs, ...)."""
    front, packet = FrontEnd(SFREQ, kind=kind), int(SFREQ)
    done = []
    for start in range(0, signal.shape[0], packet):
        done += front.push(signal[start : start + packet])
    done += front.flush()
    return np.stack([image for _, image, _ in done])


def probabilities(model: ExportedModel, signal: np.ndarray) -> dict[str, np.ndarray]:
    """Stage probabilities, (n_epochs, n_classes): ``offline`` (batched, default delay) and
    ``stream`` (1-s packets through the stager, delay 0)."""
    stager, packet = Stager(model, SFREQ, delay=0), int(SFREQ)
    streamed = []
    for start in range(0, signal.shape[0], packet):
        streamed += stager.push(signal[start : start + packet])
    streamed += stager.flush()
    return {
        "offline": np.stack([r.probabilities for r in score_signal(model, signal, SFREQ)]),
        "stream": np.stack([r.probabilities for r in streamed]),
    }


def write_bundle(out: Path, folders: list[Path]) -> dict[str, Any]:
    """Copy the model folders to ``out/models`` with this machine's outputs; return the
    manifest (also written to ``out/manifest.json``)."""
    from edgesleep.bench.runtime import synthetic_night

    models = {}
    for folder in folders:
        name = folder.name
        if name in models:
            raise ValueError(f"{folder}: two model folders named {name!r}; rename one")
        variants = {p: ExportedModel(folder, p) for p in PRECISIONS
                    if is_variant(folder / p)}  # fmt: skip
        if not variants and is_variant(folder):  # one variant's graphs (a shipped model)
            flat = ExportedModel(folder)
            variants = {flat.info.precision: flat}
        if not variants:
            raise ValueError(f"{folder}: no exported model (fp32/ or int8/) here")
        info = next(iter(variants.values())).info
        dest = out / "models" / name
        shutil.copytree(folder, dest, dirs_exist_ok=True)
        night = synthetic_night(SFREQ, N_EPOCHS, info.signal_channel)
        arrays = {
            "signal": night["signal"],
            "stages": night["stages"],
            "images": front_images(info.input["kind"], night["signal"]),
        }
        for precision, model in variants.items():
            for key, value in probabilities(model, night["signal"]).items():
                arrays[f"{precision}/{key}"] = value
        np.savez_compressed(dest / REFERENCE, **arrays)  # type: ignore[arg-type]
        quant = variants["int8"].info.raw["quantization"] if "int8" in variants else {}
        models[name] = {
            "model": info.model,
            "kind": info.input["kind"],
            "precisions": list(variants),
            # static QDQ runs integer kernels; weight-only int8 is dequantized at load
            "int8_integer_kernels": str(quant.get("method", "")).startswith("static"),
        }
    manifest = {
        "edgesleep": __version__,
        "host": cpu_info(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "epochs": N_EPOCHS,
        "synthetic": True,
        "models": models,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def load_manifest(bundle: Path) -> dict[str, Any]:
    """The bundle's manifest; a clear error when ``bundle`` is not one."""
    path = bundle / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(
            f"{bundle}: no {MANIFEST}; write a bundle on the host with "
            "`python -m edgesleep.bench.parity write OUT MODEL_DIR...`"
        )
    return dict(json.loads(path.read_text()))


def compare(bundle: Path, name: str, precision: str) -> dict[str, Any]:
    """This machine against the host on one model and precision.

    Returns
    -------
    dict
        ``image_max_abs``: largest front-end image difference (dB, or beats/min);
        ``offline_max_abs`` / ``stream_max_abs``: largest probability difference;
        ``offline_agreement`` / ``stream_agreement``: fraction of epochs with the same argmax;
        ``stream_vs_offline_max_abs``: this machine's stream (delay 0) against its offline
        scoring at delay 0 (must agree to rounding); ``epochs``.
    """
    folder = bundle / "models" / name
    with np.load(folder / REFERENCE) as ref:
        host = {key: ref[key] for key in ref.files}
    model = ExportedModel(folder, precision)
    images = front_images(model.info.input["kind"], host["signal"])
    got = probabilities(model, host["signal"])
    delay0 = np.stack([r.probabilities for r in score_signal(model, host["signal"], SFREQ, 0)])
    out: dict[str, Any] = {
        "image_max_abs": float(np.abs(images - host["images"]).max()),
        "stream_vs_offline_max_abs": float(np.abs(got["stream"] - delay0).max()),
        "epochs": int(images.shape[0]),
    }
    for key in ("offline", "stream"):
        mine, theirs = got[key], host[f"{precision}/{key}"]
        out[f"{key}_max_abs"] = float(np.abs(mine - theirs).max())
        out[f"{key}_agreement"] = float((mine.argmax(1) == theirs.argmax(1)).mean())
    return out


def main(argv: list[str]) -> None:
    if len(argv) >= 3 and argv[0] == "write":
        write_bundle(Path(argv[1]), [Path(a) for a in argv[2:]])
    elif len(argv) == 2 and argv[0] == "check":
        bundle = Path(argv[1])
        result = {
            f"{name}/{precision}": compare(bundle, name, precision)
            for name, entry in load_manifest(bundle)["models"].items()
            for precision in entry["precisions"]
        }
        print(json.dumps({"cpu": cpu_info(), "numpy": np.__version__, "parity": result}))
    else:
        sys.exit("usage: python -m edgesleep.bench.parity write OUT MODEL_DIR... | check BUNDLE")


if __name__ == "__main__":
    main(sys.argv[1:])
