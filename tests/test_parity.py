"""Parity of this machine with the host that exported the models (marker ``parity``).

With ``EDGESLEEP_PARITY_BUNDLE=DIR`` (a bundle written on the host by
``python -m edgesleep.bench.parity write``; ``bench/arm/run.sh`` does this) the tests run the
bundle's exported models on this machine (an emulated or real aarch64) and compare with the
host's outputs on the bundle's SYNTHETIC 50-epoch night. Without it they write a bundle of
the tiny exports here and check it against itself (the bundle code, and streaming against
offline scoring on this machine), with the shipped heart models. Only the runtime is
imported: no torch on the device.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import TINY_EXPORTS

from edgesleep.bench.parity import compare, load_manifest, write_bundle
from edgesleep.metadata import PRECISIONS
from edgesleep.shipped import HEART_MODELS, SHIPPED_DIR

pytestmark = pytest.mark.parity
BUNDLE_ENV = "EDGESLEEP_PARITY_BUNDLE"

# Host (x86) against this machine. fp32 and SeqSleepNet's weight-only int8 (dequantized at
# load) run float kernels: only the summation order and the activation approximations differ.
FLOAT_PROB_ATOL = 1e-3
# The student's static int8 runs integer kernels whose requantisation rounds differently
# per ISA; an epoch near a class boundary may flip.
INT8_PROB_ATOL = 0.1
INT8_MIN_AGREEMENT = 0.95
IMAGE_ATOL = 1e-3  # dB (STFT) or beats/min (beat intervals)
STREAM_ATOL = 1e-5  # stream against offline on the same machine


def _variants() -> list[tuple[str, str]]:
    bundle = os.environ.get(BUNDLE_ENV)
    if bundle:
        models = load_manifest(Path(bundle))["models"]
        return [(name, p) for name, entry in sorted(models.items()) for p in entry["precisions"]]
    shipped = [(name, "int8") for name in HEART_MODELS.values()]
    return [(name, p) for name in sorted(TINY_EXPORTS) for p in PRECISIONS] + shipped


@pytest.fixture(scope="session")
def bundle(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get(BUNDLE_ENV):
        return Path(os.environ[BUNDLE_ENV])
    tiny_export: Callable[[str], dict] = request.getfixturevalue("tiny_export")
    root = tmp_path_factory.mktemp("parity")
    folders = []
    for key in sorted(TINY_EXPORTS):  # the bundle names models after their folders
        folders.append(root / "src" / key)
        folders[-1].parent.mkdir(exist_ok=True)
        folders[-1].symlink_to(tiny_export(key)["root"] / "out")
    folders += [SHIPPED_DIR / name for name in HEART_MODELS.values()]  # step.onnx alone
    write_bundle(root / "bundle", folders)
    return root / "bundle"


@pytest.mark.parametrize(("name", "precision"), _variants())
def test_matches_the_host(bundle: Path, name: str, precision: str) -> None:
    got = compare(bundle, name, precision)
    manifest = load_manifest(bundle)
    entry = manifest["models"][name]
    assert got["epochs"] == manifest["epochs"], got
    assert got["image_max_abs"] <= IMAGE_ATOL, got
    assert got["stream_vs_offline_max_abs"] <= STREAM_ATOL, got
    integer = precision == "int8" and entry["int8_integer_kernels"]
    for key in ("offline", "stream"):
        if integer:
            assert got[f"{key}_max_abs"] <= INT8_PROB_ATOL, got
            assert got[f"{key}_agreement"] >= INT8_MIN_AGREEMENT, got
        else:
            assert got[f"{key}_max_abs"] <= FLOAT_PROB_ATOL, got
            assert got[f"{key}_agreement"] == 1.0, got


def test_a_folder_that_is_no_bundle_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="parity write"):
        load_manifest(tmp_path)
