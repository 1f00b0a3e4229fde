"""What the ``train``, ``evaluate`` and ``adapt`` verbs do: train from scratch or from a
pretrained checkpoint on a dataset, score a dataset, re-estimate normalisation."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from edgesleep.dsp.inputs import get_kind
from edgesleep.errors import InputError, UsageError
from edgesleep.io.dataset import Crop, check_crop, read_dataset
from edgesleep.readout import default_delay, readout_for
from edgesleep.stages import CLASS_LABELS
from edgesleep.train import checkpoint as ckpt_io
from edgesleep.train import distributed
from edgesleep.train.checkpoint import Checkpoint, provenance
from edgesleep.train.data import NightFeatures, load_features, norm_stats
from edgesleep.train.evaluate import evaluate_nights
from edgesleep.train.models import STRATEGIES, build, config_dict, make_config, model_class
from edgesleep.train.specs import TrainSpec
from edgesleep.train.training import (
    Progress,
    TrainOptions,
    fit,
    resolve_device,
    split_dataset,
    state_file,
)

log = logging.getLogger("edgesleep")


def init_model(source: Checkpoint, n_classes: int, finetune: str) -> torch.nn.Module:
    """The source model for finetuning; a classifier for a different class set is new and
    must then be trained (any strategy but ``none``)."""
    model = source.build()
    if n_classes != source.n_classes:
        if finetune == "none":
            raise InputError(
                f"source has {source.n_classes} classes, target {n_classes}: direct transfer "
                "(--finetune none) needs the same class set"
            )
        config = {**source.config, "n_classes": n_classes}
        fresh = build(source.model, config)
        classifier = f"{fresh.classifier}."
        state = {k: v for k, v in source.state_dict.items() if not k.startswith(classifier)}
        fresh.load_state_dict(state, strict=False)
        model = fresh
    return model


def check_choices(
    model_name: str,
    n_classes: int,
    input_kind: str,
    opts: TrainOptions,
    crop: str = "in-bed",
    model_fields: dict[str, Any] | None = None,
) -> None:
    """Refuse an unknown model, class set, input kind, strategy, crop or device before any
    data loads.

    Raises
    ------
    UsageError
    """
    model_class(model_name)
    get_kind(input_kind)
    check_crop(crop)
    if model_fields:  # unknown or ill-typed fields, named now rather than after the data
        make_config(model_name, input_kind, n_classes=n_classes, **model_fields)
    if n_classes not in CLASS_LABELS:
        raise UsageError(f"--classes {n_classes}: choose 5, 4 (W/Light/Deep/REM) or 3")
    if opts.finetune not in STRATEGIES:
        raise UsageError(f"--finetune {opts.finetune!r}: choose one of {list(STRATEGIES)}")
    device = resolve_device(opts.device)
    if opts.amp is not None and device.type != "cuda":
        raise UsageError(f"--amp {opts.amp} runs on CUDA only; this run is on {device}")


def train_features(
    train_nights: Sequence[NightFeatures],
    val_nights: Sequence[NightFeatures],
    channel: str,
    model_name: str = "seqsleepnet",
    n_classes: int = 5,
    source: Checkpoint | None = None,
    opts: TrainOptions | None = None,
    model_fields: dict[str, Any] | None = None,
    progress: Progress | None = None,
    input_kind: str = "stft",
    state_path: Path | None = None,
    **provenance_fields: Any,
) -> Checkpoint:
    """Train from scratch, or finetune ``source``, on loaded nights; return the checkpoint.

    Normalisation statistics always come from ``train_nights`` (the target's training
    subjects), also for ``finetune="none"``. ``input_kind``: what the nights' images are
    ("stft" or "beats"); the model's input size follows it.
    """
    opts = opts or TrainOptions()
    mean, std = norm_stats(train_nights)
    torch.manual_seed(opts.seed)
    parent = None
    if source is not None:
        if source.input_kind != input_kind:
            raise InputError(
                f"the pretrained model takes {source.input_kind!r} input, not {input_kind!r}"
            )
        model = init_model(source, n_classes, opts.finetune)
        name, config = source.model, {**source.config, "n_classes": n_classes}
        parent = {"channel": source.channel, "provenance": source.provenance}
    else:
        if opts.finetune != "all":
            raise InputError("--finetune needs --init-from (a pretrained checkpoint)")
        cfg = make_config(model_name, input_kind, n_classes=n_classes, **(model_fields or {}))
        model, name, config = build(model_name, cfg), model_name, config_dict(cfg)
    result = fit(model, train_nights, val_nights, mean, std, opts, progress, state_path=state_path)
    return Checkpoint(
        model=name,
        config=config,
        state_dict=result.state_dict,
        channel=channel,
        norm_mean=mean,
        norm_std=std,
        input_kind=input_kind,
        provenance=result.provenance(
            opts,
            train_nights,
            val_nights,
            finetune=opts.finetune,
            parent=parent,
            **provenance_fields,
        ),  # fmt: skip
    )


def train_model(
    spec: TrainSpec | Path, *args: Any, progress: Progress | None = None, **kwargs: Any
) -> Checkpoint:
    """Run ``spec``: train (or finetune ``spec.init_from``) on the nights of
    ``spec.subjects`` (default: all) of a dataset and save ``spec.out``. Validation
    subjects are drawn from them with ``spec.train.seed``. The training state is kept in
    ``OUT.state`` while training runs; ``spec.resume`` continues from it (after a kill).

    The positional form of 0.1 (``train_model(data, channel, out, model_name, ...)``) still
    works for one release, with a ``DeprecationWarning``.
    """
    if not isinstance(spec, TrainSpec):
        if progress is not None:
            kwargs["progress"] = progress
        spec, progress = _legacy_spec(spec, *args, **kwargs)
    opts = spec.train
    check_choices(spec.model, spec.classes, spec.input, opts, spec.crop, spec.model_config)
    source = ckpt_io.load(spec.init_from) if spec.init_from is not None else None  # first
    distributed.setup(resolve_device(opts.device))  # under torchrun: join the ranks
    split = split_dataset(spec.data, spec.subjects, spec.val_subjects, opts.seed, spec.classes,
                          spec.crop, spec.cache)  # fmt: skip
    with distributed.main_first():  # rank 0 clears an old state, fills the feature cache
        state_path = state_file(spec.out, spec.resume or not distributed.is_main())
        train_nights = split.nights(split.train, spec.channel, spec.input)
        val_nights = split.nights(split.val, spec.channel, spec.input)
    ckpt = train_features(
        train_nights,
        val_nights,
        spec.channel,
        spec.model,
        spec.classes,
        source,
        opts,
        spec.model_config,
        progress,
        spec.input,
        state_path,
        **split.provenance(),
        init_from=str(spec.init_from) if spec.init_from else None,
    )
    if distributed.is_main():
        ckpt.save(spec.out)
    return ckpt


def _legacy_spec(
    data: Path,
    channel: str,
    out: Path,
    model_name: str = "seqsleepnet",
    n_classes: int = 5,
    init_from: Path | None = None,
    n_val_subjects: int = 1,
    subjects: Sequence[str] | None = None,
    crop: Crop = "in-bed",
    opts: TrainOptions | None = None,
    model_fields: dict[str, Any] | None = None,
    progress: Progress | None = None,
    input_kind: str = "stft",
    resume: bool = False,
    cache: Path | None = None,
) -> tuple[TrainSpec, Progress | None]:
    """The spec of 0.1's positional ``train_model`` call (deprecated)."""
    warnings.warn("train_model(data, channel, out, ...) is deprecated; pass a TrainSpec "
                  "(edgesleep.train.specs)", DeprecationWarning, stacklevel=3)  # fmt: skip
    spec = TrainSpec(
        Path(data), channel, Path(out), model_name, n_classes, input_kind, init_from,
        subjects=tuple(subjects) if subjects is not None else None,
        val_subjects=n_val_subjects, crop=crop, resume=resume, cache=cache,
        train=opts or TrainOptions(), model_config=dict(model_fields or {}),
    )  # fmt: skip
    return spec, progress


def evaluate_model(
    model_path: Path,
    data: Path,
    delays: Sequence[int] | None = None,
    subjects: Sequence[str] | None = None,
    crop: Crop = "in-bed",
    channel: str | None = None,
    device: str = "auto",
    cache: Path | None = None,
) -> tuple[Checkpoint, dict[int, dict[str, Any]]]:
    """The checkpoint and its pooled metrics on a dataset (optionally some subjects), per
    delay (default: L - 1), computed on ``device``."""
    torch_device = resolve_device(device)
    ckpt = ckpt_io.load(model_path)
    scorer = ckpt.scorer(torch_device)
    delays = list(delays or [default_delay(scorer)])
    for k in delays:  # refused before any data loads
        try:
            readout_for(scorer, k)
        except ValueError as err:
            raise UsageError(f"--delay {err}") from None
    dataset = read_dataset(data)
    entries = [e for e in dataset.entries if subjects is None or e.subject in subjects]
    if not entries:
        raise InputError(f"{data}: no nights for subjects {subjects}")
    nights = load_features(
        dataset, channel or ckpt.channel, ckpt.n_classes, crop, entries, kind=ckpt.input_kind,
        cache=cache,
    )  # fmt: skip
    return ckpt, evaluate_nights(scorer, nights, ckpt.n_classes, delays)


def adapt_model(
    model_path: Path,
    data: Path,
    out: Path,
    channel: str | None = None,
    cache: Path | None = None,
) -> Checkpoint:
    """Re-estimate the normalisation statistics on unlabelled nights of a new device."""
    ckpt = ckpt_io.load(model_path)
    dataset = read_dataset(data)
    nights = load_features(
        dataset, channel or ckpt.channel, ckpt.n_classes, "none", labelled=False,
        kind=ckpt.input_kind, cache=cache,
    )  # fmt: skip
    ckpt.norm_mean, ckpt.norm_std = norm_stats(nights)
    ckpt.provenance = {
        **ckpt.provenance,
        "adapted": provenance(
            dataset=str(dataset.info.get("name", data)),
            synthetic=dataset.synthetic,
            nights=[n.record for n in nights],
        ),
    }
    ckpt.save(out)
    return ckpt
