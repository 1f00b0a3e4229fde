"""The heart-rate floor (train/baselines.py), slpdb subjects and the class collapse."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgesleep.io import slpdb
from edgesleep.stages import collapse_labels, collapse_matrix
from edgesleep.train.baselines import floor_probabilities, hrv_features, with_context


def test_subjects_of_records() -> None:
    records = ("slp01a", "slp01b", "slp02b", "slp03", "slp67x")
    assert [slpdb.subject_of(r) for r in records] == [
        "slp01", "slp01", "slp02", "slp03", "slp67x",
    ]  # fmt: skip


def test_three_classes_sum_light_and_deep() -> None:
    # Light 0.3 + Deep 0.3 beats W 0.4 once merged into NREM
    proba = np.array([[0.4, 0.3, 0.3, 0.0]])
    np.testing.assert_allclose(proba @ collapse_matrix(4, 3), [[0.4, 0.6, 0.0]])
    assert collapse_labels(np.array([0, 1, 2, 3, -2]), 4, 3).tolist() == [0, 1, 1, 2, -2]
    assert collapse_labels(np.array([0, 1, 2, 3, 4, -1]), 5, 4).tolist() == [0, 1, 1, 2, 3, -1]


def test_hrv_features_of_a_real_record(data_dir: Path) -> None:
    rec = slpdb.read_record(data_dir / "slpdb", "slp01a")
    features = hrv_features(rec.beat_times_s, rec.stages.shape[0])
    assert features.shape == (rec.stages.shape[0], 9)
    assert np.isfinite(features).all()
    np.testing.assert_allclose(features.mean(axis=0), 0, atol=1e-6)  # z-scored per night
    assert with_context(features).shape == (rec.stages.shape[0], 45)


def test_floor_learns_a_separable_feature() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    features = labels[:, None] + rng.normal(0, 0.1, (300, 2))
    proba = floor_probabilities([features], [labels], features, 4)
    assert proba.shape == (300, 4) and np.all(proba[:, 3] == 0)
    assert (proba.argmax(axis=1) == labels).mean() > 0.95
