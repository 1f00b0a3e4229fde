"""Registry of architectures: name -> (config dataclass, module)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from edgesleep.dsp.beats import N_BEAT_FRAMES, SAMPLES_PER_FRAME
from edgesleep.train.seqsleepnet import SeqSleepNet, SeqSleepNetConfig
from edgesleep.train.staging import EpochSequenceModel
from edgesleep.train.student import Student, StudentConfig

MODELS: dict[str, tuple[type, type[EpochSequenceModel]]] = {
    "seqsleepnet": (SeqSleepNetConfig, SeqSleepNet),
    "student": (StudentConfig, Student),
}


def make_config(name: str, **fields: Any) -> Any:
    """The config dataclass of ``name`` with ``fields`` set."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; registered: {sorted(MODELS)}")
    return MODELS[name][0](**fields)


def build(name: str, config: Any) -> EpochSequenceModel:
    """A fresh model of ``name`` from its config (dataclass or dict)."""
    if isinstance(config, dict):  # lists (from TOML or JSON) become the dataclass's tuples
        config = make_config(
            name, **{k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
        )
    return MODELS[name][1](config)


def input_fields(name: str, kind: str) -> dict[str, Any]:
    """Config fields that fit model ``name`` to input ``kind`` ("stft": the defaults)."""
    if kind == "stft":
        return {}
    if kind != "beats":
        raise ValueError(f"unknown input kind {kind!r}; choose stft or beats")
    fields: dict[str, Any] = {"n_frames": N_BEAT_FRAMES, "n_freqs": SAMPLES_PER_FRAME}
    if name == "seqsleepnet":
        fields["n_filters"] = 16  # triangular masks over the 20 positions of a 10-s frame
    return fields


def config_dict(config: Any) -> dict[str, Any]:
    return asdict(config)
