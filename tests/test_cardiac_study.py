"""Pieces of the slpdb study (the study itself runs as a benchmark, not here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgesleep.io import slpdb
from edgesleep.train.cardiac_study import hrv_features, metrics, subject_of, with_context


def test_subjects_of_records() -> None:
    assert [subject_of(r) for r in ("slp01a", "slp01b", "slp02b", "slp03", "slp67x")] == [
        "slp01", "slp01", "slp02", "slp03", "slp67x",
    ]  # fmt: skip


def test_three_classes_sum_light_and_deep() -> None:
    truth = np.array([0, 1, 2, 3, -2])
    # Light 0.3 + Deep 0.3 beats W 0.4 once merged into NREM
    proba = np.array([[0.4, 0.3, 0.3, 0.0]] * 5)
    out = metrics(truth, proba)
    assert out["4"]["accuracy"] == 0.25  # only the W epoch is right with 4 classes
    assert out["3"]["accuracy"] == 0.5  # NREM is right for the Light and Deep epochs


def test_hrv_features_of_a_real_record(data_dir: Path) -> None:
    rec = slpdb.read_record(data_dir / "slpdb", "slp01a")
    features = hrv_features(rec.beat_times_s, rec.stages.shape[0])
    assert features.shape == (rec.stages.shape[0], 9)
    assert np.isfinite(features).all()
    np.testing.assert_allclose(features.mean(axis=0), 0, atol=1e-6)  # z-scored per night
    assert with_context(features).shape == (rec.stages.shape[0], 45)
