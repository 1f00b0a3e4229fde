"""edgesleep: single-channel sleep staging for wearables, measured honestly.

What a user calls, from the top level (each imported on first use, so ``import edgesleep``
stays cheap: numpy and onnxruntime load with the first model):

>>> import edgesleep
>>> hyp = edgesleep.score_file("night.edf", "exported/")          # doctest: +SKIP
>>> hyp = edgesleep.score_heart_rate(time_s, bpm, edgesleep.default_model())  # doctest: +SKIP
>>> hyp.summary()["TST"], hyp.stages[:10]                           # doctest: +SKIP

Scoring: :func:`score_file`, :func:`score_array`, :func:`score_beats`,
:func:`score_heart_rate`, :func:`score_series_file`, :func:`stage_night`, :func:`compare`
(:class:`Hypnogram`). Models: :class:`ExportedModel`, :func:`default_model`,
:func:`shipped_model`. Streaming: :class:`Stager`, :class:`SeriesStager`. Files:
:func:`read_series`, :func:`read_hypnogram`, :func:`sleep_statistics`. Stage codes:
:data:`W`, :data:`N1`, :data:`N2`, :data:`N3`, :data:`REM`, :data:`ARTEFACT`,
:data:`UNSCORED`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "Hypnogram": "edgesleep.api",
    "score_file": "edgesleep.api",
    "score_array": "edgesleep.api",
    "score_beats": "edgesleep.api",
    "score_heart_rate": "edgesleep.api",
    "score_series_file": "edgesleep.api",
    "stage_night": "edgesleep.api",
    "compare": "edgesleep.api",
    "ExportedModel": "edgesleep.ort",
    "default_model": "edgesleep.shipped",
    "shipped_model": "edgesleep.shipped",
    "Stager": "edgesleep.stager",
    "SeriesStager": "edgesleep.stager",
    "EpochResult": "edgesleep.stager",
    "read_series": "edgesleep.io.heart",
    "read_hypnogram": "edgesleep.io.hypnogram",
    "sleep_statistics": "edgesleep.io.stats",
    "InputError": "edgesleep.errors",
    "UsageError": "edgesleep.errors",
    **{
        name: "edgesleep.stages" for name in ("W", "N1", "N2", "N3", "REM", "ARTEFACT", "UNSCORED")
    },  # fmt: skip
}
__all__ = [
    "ARTEFACT", "N1", "N2", "N3", "REM", "UNSCORED", "W", "EpochResult", "ExportedModel",
    "Hypnogram", "InputError", "SeriesStager", "Stager", "UsageError", "__version__",
    "compare", "default_model", "read_hypnogram", "read_series", "score_array",
    "score_beats", "score_file", "score_heart_rate", "score_series_file", "shipped_model",
    "sleep_statistics", "stage_night",
]  # fmt: skip

if TYPE_CHECKING:  # for type checkers and IDEs; at run time each loads on first use
    from edgesleep.api import (
        Hypnogram,
        compare,
        score_array,
        score_beats,
        score_file,
        score_heart_rate,
        score_series_file,
        stage_night,
    )
    from edgesleep.errors import InputError, UsageError
    from edgesleep.io.heart import read_series
    from edgesleep.io.hypnogram import read_hypnogram
    from edgesleep.io.stats import sleep_statistics
    from edgesleep.ort import ExportedModel
    from edgesleep.shipped import default_model, shipped_model
    from edgesleep.stager import EpochResult, SeriesStager, Stager
    from edgesleep.stages import ARTEFACT, N1, N2, N3, REM, UNSCORED, W


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'edgesleep' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
