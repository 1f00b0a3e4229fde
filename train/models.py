"""The model registry: architecture name -> its class (one file per architecture).

Adding an architecture is its file (a subclass of
:class:`edgesleep.train.sequence_model.EpochSequenceModel` with its declarations) plus its line in
``BUILTIN`` (or :func:`register` at run time, as the tests do). Training, transfer, export,
quantization and the readout read the declarations; none looks at the name.

Importing this module imports no torch: the CLI lists the names for ``--help``.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import TYPE_CHECKING, Any

from edgesleep.config import from_mapping
from edgesleep.dsp.inputs import get_kind
from edgesleep.errors import UsageError

if TYPE_CHECKING:
    from edgesleep.train.sequence_model import EpochSequenceModel

# name -> "module:class": one line per built-in architecture
BUILTIN = {
    "seqsleepnet": "edgesleep.train.seqsleepnet:SeqSleepNet",
    "student": "edgesleep.train.student:Student",
}
_MODELS: dict[str, type[EpochSequenceModel]] = {}
# seed 1's finetuning strategies (``--finetune``); each architecture maps them to its parts
STRATEGIES = ("none", "softmax", "softmax+epoch", "softmax+sequence", "all")
DECLARED = ("name", "version", "config_class", "causal", "quantization")


def register(cls: type[EpochSequenceModel]) -> type[EpochSequenceModel]:
    """Add an architecture (replacing one of the same name) after checking its
    declarations; return it.

    Raises
    ------
    TypeError
        If a declaration is missing, or ``finetune_parts`` does not map every strategy.
    """
    missing = [attr for attr in DECLARED if not hasattr(cls, attr)]
    if missing:
        raise TypeError(f"{cls.__name__} does not declare {missing}")
    if cls.quantization not in ("weight-only", "static-qdq"):
        raise TypeError(f"{cls.__name__}.quantization: {cls.quantization!r}")
    if set(cls.finetune_parts) != set(STRATEGIES) or cls.finetune_parts["none"]:
        raise TypeError(
            f"{cls.__name__}.finetune_parts must map each of {STRATEGIES} to parts "
            "('none' to no part)"
        )
    _MODELS[cls.name] = cls
    return cls


def model_names() -> list[str]:
    """Every registered architecture, built-in ones first (imports nothing)."""
    return [*BUILTIN, *(name for name in _MODELS if name not in BUILTIN)]


def model_class(name: str) -> type[EpochSequenceModel]:
    """The class of architecture ``name``.

    Raises
    ------
    UsageError
        If no such architecture is registered (the message lists the known ones).
    """
    if name not in _MODELS and name in BUILTIN:
        module, _, attr = BUILTIN[name].partition(":")
        register(getattr(importlib.import_module(module), attr))
    if name not in _MODELS:
        raise UsageError(f"unknown model {name!r}; choose one of {model_names()}")
    return _MODELS[name]


def make_config(name: str, input_kind: str = "stft", **fields: Any) -> Any:
    """The config of ``name`` for input ``input_kind``, with ``fields`` set (strictly:
    an unknown field is refused, naming the closest one)."""
    cls = model_class(name)
    sized = cls.input_fields(get_kind(input_kind))
    return from_mapping(cls.config_class, {**sized, **fields}, f"model {name!r} config")


def build(name: str, config: Any) -> EpochSequenceModel:
    """A fresh model of ``name`` from its config (the dataclass, or a dict of its fields)."""
    cls = model_class(name)
    if isinstance(config, dict):
        config = from_mapping(cls.config_class, config, f"model {name!r} config")
    return cls(config)


def config_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)
