import numpy as np
import pytest

from edgesleep import stages


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("Sleep stage W", 0),
        ("Sleep stage 1", 1),
        ("Sleep stage 2", 2),
        ("Sleep stage 3", 3),
        ("Sleep stage 4", 3),
        ("Sleep stage R", 4),
        ("Sleep stage ?", -2),
        ("Movement time", -2),
        ("MT", -2),
        ("M", -2),
        ("4", 3),
        ("R", 4),
        ("N3", 3),
        ("REM", 4),
    ],
)
def test_stage_from_string(label: str, expected: int) -> None:
    assert stages.stage_from_string(label) == expected


def test_unknown_label_names_the_options() -> None:
    with pytest.raises(ValueError, match="unknown stage annotation 'Sleep stage X'"):
        stages.stage_from_string("Sleep stage X")


def test_class_sets_collapse_and_keep_negative_codes() -> None:
    hyp = np.array([0, 1, 2, 3, 4, -1, -2])
    np.testing.assert_array_equal(stages.to_classes(hyp, 5), hyp)
    np.testing.assert_array_equal(stages.to_classes(hyp, 4), [0, 1, 1, 2, 3, -1, -2])
    np.testing.assert_array_equal(stages.to_classes(hyp, 3), [0, 1, 1, 1, 2, -1, -2])
    assert len(stages.class_labels(4)) == 4


def test_bad_class_set_and_codes() -> None:
    with pytest.raises(ValueError, match="n_classes"):
        stages.to_classes(np.array([0]), 2)
    with pytest.raises(ValueError, match="stage codes"):
        stages.to_classes(np.array([5]), 5)
