"""Run specs: everything one training or distillation run needs, in one frozen dataclass
each, built once from a TOML file and the command line (:func:`train_spec`,
:func:`distill_spec`) with the precedence decided in one place
(:func:`edgesleep.config.layered`): an option given on the command line wins over the
file, the file over the option's default. The CLI parses and calls these; the library takes
the spec.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from edgesleep.config import check_keys, from_mapping, layered
from edgesleep.io.dataset import Crop
from edgesleep.train.training import TrainOptions, read_toml


@dataclass(frozen=True)
class DistillOptions:
    """The distillation loss: ``alpha`` x T² x KL(teacher/T || student/T) (``soft_targets``)
    plus (1 - ``alpha``) x cross-entropy, and ``feature_weight`` x the epoch vectors'
    match to the teacher's (``feature_transfer``)."""

    soft_targets: bool = True
    feature_transfer: bool = True
    temperature: float = 1.0
    alpha: float = 0.5
    feature_weight: float = 1.0


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """What every run (training, distillation) shares, by keyword.

    Attributes
    ----------
    subjects : subject ids to use (None: all); val_subjects : how many validate
    crop : in-bed (lights-off to lights-on), sleep (±30 min) or none
    resume : continue a killed run from ``OUT.state``; cache : feature cache directory
    train : how to train; model_config : fields of the architecture's config
    """

    subjects: tuple[str, ...] | None = None
    val_subjects: int = 1
    crop: Crop = "in-bed"
    resume: bool = False
    cache: Path | None = None
    train: TrainOptions = field(default_factory=TrainOptions)
    model_config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainSpec(RunOptions):
    """One training run (``edgesleep train``): train (or finetune ``init_from``) a model on
    one channel of a dataset's nights and save the checkpoint ``out`` (the training state
    is kept in ``OUT.state`` meanwhile); and the :class:`RunOptions`.

    Attributes
    ----------
    data : dataset directory; channel : the channel to train on (label or alias)
    model : architecture name; classes : 5, 4 or 3; input : input kind
    init_from : a checkpoint to finetune (``train.finetune`` says which parts)
    """

    data: Path
    channel: str
    out: Path = Path("model.pt")
    model: str = "seqsleepnet"
    classes: int = 5
    input: str = "stft"
    init_from: Path | None = None


@dataclass(frozen=True)
class DistillSpec(RunOptions):
    """One distillation run (``edgesleep distill``): a frozen teacher checkpoint into a
    fresh student trained on another channel of the same nights, saved as ``out``; and the
    :class:`RunOptions` (the student's).

    Attributes
    ----------
    teacher : the teacher's checkpoint; teacher_channel : its channel (None: its own)
    data : dataset with both channels in every night; student_channel : the student's
    distill : the loss (soft targets, feature transfer, temperature, alpha)
    """

    teacher: Path
    data: Path
    student_channel: str
    out: Path = Path("student.pt")
    teacher_channel: str | None = None
    classes: int = 4
    model: str = "student"
    distill: DistillOptions = field(default_factory=DistillOptions)


def _names(cls: type) -> set[str]:
    return {f.name for f in fields(cls)}


def _sections(config: Path | None, allowed: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """The TOML file's sections (each checked against what it configures)."""
    if config is None:
        return {}
    raw = read_toml(config, "config file")
    check_keys(raw, allowed, str(config))
    check_keys(raw.get("train", {}), _names(TrainOptions), f"{config} [train]")
    if "distill" in raw:
        check_keys(raw["distill"], _names(DistillOptions), f"{config} [distill]")
    return {k: dict(v) for k, v in raw.items()}


def _spec(
    cls: type[Any],
    values: Mapping[str, Any],
    given: Collection[str],
    config: Path | None,
    nested: dict[str, type],
) -> Any:
    """``cls`` from the command line's ``values`` (``given``: the names the user typed)
    and the ``config`` file's sections, one nested options dataclass per section."""
    sections = _sections(config, ("model", *nested))
    where = str(config) if config is not None else "the command line"
    spec: dict[str, Any] = {k: v for k, v in values.items()
                            if not any(k in _names(t) for t in nested.values())}  # fmt: skip
    for section, options in nested.items():
        # an option left at None on the command line means the field's own default
        line = {k: v for k, v in values.items() if k in _names(options) and v is not None}
        merged = layered(sections.get(section, {}), line, given)
        spec[section] = from_mapping(options, merged, f"{where} [{section}]")
    spec["model_config"] = sections.get("model", {})
    return from_mapping(cls, spec, cls.__name__)


def train_spec(
    values: Mapping[str, Any], given: Collection[str] = (), config: Path | None = None
) -> TrainSpec:
    """A :class:`TrainSpec` from the command line and a TOML file.

    Parameters
    ----------
    values : field names of :class:`TrainSpec` and of :class:`TrainOptions` -> values (the
        command line's, defaults included)
    given : the names among them that the user gave (they win over the file)
    config : TOML with ``[model]`` (the architecture's config fields) and ``[train]``

    Raises
    ------
    UsageError
        An unknown key or section (the closest valid one named), a value of the wrong type.
    """
    return _spec(TrainSpec, values, given, config, {"train": TrainOptions})  # type: ignore[no-any-return]


def distill_spec(
    values: Mapping[str, Any], given: Collection[str] = (), config: Path | None = None
) -> DistillSpec:
    """A :class:`DistillSpec` from the command line and a TOML file with ``[model]``,
    ``[train]`` and ``[distill]`` (see :func:`train_spec`)."""
    nested = {"train": TrainOptions, "distill": DistillOptions}
    return _spec(DistillSpec, values, given, config, nested)  # type: ignore[no-any-return]
