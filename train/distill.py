"""Knowledge distillation from a frozen teacher (e.g. EEG SeqSleepNet) to a student on
another channel of the same nights (e.g. ECG), after seed 2.

Loss per batch of paired windows (same epochs, teacher channel and student channel):

- soft targets: ``alpha * T**2 * KL(p_teacher(T) || p_student(T))``, teacher probabilities
  collapsed onto the student's class set; ``reduction="batchmean"`` over epochs (seed 2's
  code uses "mean", which divides by the number of classes too);
- feature transfer: mean squared error between the L2-normalised teacher epoch vector and
  the L2-normalised, linearly projected student epoch vector (normalised per sample, not
  over the batch as seed 2's code does for its attention maps); the projection trains with
  the student and is dropped afterwards;
- hard labels: ``(1 - alpha) *`` cross-entropy, class-weighted by inverse frequency
  (``1 *`` when soft targets are off).

Each term is switchable, for ablations (class weighting through
``TrainOptions.class_weighting``).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgesleep.errors import InputError, UsageError
from edgesleep.io.dataset import Crop
from edgesleep.stages import collapse_matrix
from edgesleep.train import checkpoint as ckpt_io
from edgesleep.train import distributed
from edgesleep.train.checkpoint import Checkpoint
from edgesleep.train.data import NightFeatures, Windows, class_weights
from edgesleep.train.data import norm_stats as compute_norm_stats
from edgesleep.train.models import build, config_dict, make_config
from edgesleep.train.sequence_model import EpochSequenceModel
from edgesleep.train.specs import DistillOptions, DistillSpec
from edgesleep.train.training import (
    TrainOptions,
    align_to_delay,
    fit,
    resolve_device,
    split_dataset,
    state_file,
    weighted_cross_entropy,
)
from edgesleep.train.transfer import check_choices

log = logging.getLogger("edgesleep")


class PairedWindows(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """Items (x_student, x_teacher, y): the same windows seen through two channels."""

    def __init__(self, student: Windows, teacher: Windows) -> None:
        if student.index != teacher.index:
            raise ValueError("student and teacher nights are not the same epochs")
        self.student, self.teacher = student, teacher

    def __len__(self) -> int:
        return len(self.student)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        xs, y = self.student[item]
        xt, _ = self.teacher[item]
        return xs, xt, y


def distill_loss(
    teacher: EpochSequenceModel,
    teacher_classes: int,
    n_classes: int,
    opts: DistillOptions,
    weight: torch.Tensor | None,
    head: nn.Module | None,
) -> Any:
    """The batch loss for :func:`edgesleep.train.training.fit`."""
    device = next(teacher.parameters()).device
    collapse = torch.from_numpy(collapse_matrix(teacher_classes, n_classes)).to(device)
    temp = opts.temperature

    def loss(student: nn.Module, batch: Sequence[torch.Tensor]) -> torch.Tensor:
        assert isinstance(student, EpochSequenceModel)
        xs, xt, y = batch
        zs = student.epoch_vectors(xs)  # (batch, L, dim)
        s_logits, y = align_to_delay(student, student.sequence(zs), y)
        logits = s_logits.reshape(-1, n_classes)
        hard = weighted_cross_entropy(logits, y.reshape(-1), weight)
        n_rows = distributed.global_sum(logits.new_tensor(logits.shape[0]))  # epochs, all ranks
        total = hard if not opts.soft_targets else (1 - opts.alpha) * hard
        if opts.soft_targets or opts.feature_transfer:
            with torch.no_grad():
                zt = teacher.epoch_vectors(xt)
                # the teacher's outputs at the epochs the student's outputs stage
                t_logits = align_to_delay(student, zt, teacher.sequence(zt))[1]
        if opts.soft_targets:
            p_teacher = (
                torch.softmax(t_logits.reshape(-1, teacher_classes) / temp, dim=1) @ collapse
            )
            log_student = torch.log_softmax(logits / temp, dim=1)
            kl = nn.functional.kl_div(log_student, p_teacher, reduction="sum") / n_rows
            total = total + opts.alpha * temp**2 * kl
        if opts.feature_transfer and head is not None:
            target = nn.functional.normalize(zt.reshape(-1, zt.shape[-1]), dim=1)
            mapped = nn.functional.normalize(head(zs.reshape(-1, zs.shape[-1])), dim=1)
            n_vectors = distributed.global_sum(zs.new_tensor(zs.shape[0] * zs.shape[1]))
            total = (
                total + opts.feature_weight * ((mapped - target) ** 2).sum(dim=1).sum() / n_vectors
            )
        return total

    return loss


def distill_features(
    teacher_ckpt: Checkpoint,
    train_s: Sequence[NightFeatures],
    val_s: Sequence[NightFeatures],
    train_t: Sequence[NightFeatures],
    student_channel: str,
    teacher_channel: str | None = None,
    n_classes: int = 4,
    model_name: str = "student",
    opts: TrainOptions | None = None,
    dopts: DistillOptions | None = None,
    model_fields: dict[str, Any] | None = None,
    progress: Any = None,
    input_kind: str = "stft",
    state_path: Path | None = None,
    **provenance_fields: Any,
) -> Checkpoint:
    """Distil a frozen teacher into a fresh student on loaded, paired nights (training
    state in ``state_path``, see :func:`edgesleep.train.training.fit`).

    ``train_s`` and ``train_t`` are the same nights seen through the student's and the
    teacher's channel; normalisation statistics come from ``train_s``, whose images are
    the student's ``input_kind`` (the teacher's nights are its own kind).
    """
    opts, dopts = opts or TrainOptions(), dopts or DistillOptions()
    if n_classes > teacher_ckpt.n_classes:
        raise InputError(
            f"the teacher predicts {teacher_ckpt.n_classes} classes; a student can learn that "
            f"many or fewer, not {n_classes}"
        )
    teacher = teacher_ckpt.build()
    for p in teacher.parameters():
        p.requires_grad_(False)
    mean, std = compute_norm_stats(train_s)
    torch.manual_seed(opts.seed)
    cfg = make_config(model_name, input_kind, n_classes=n_classes, **(model_fields or {}))
    student = build(model_name, cfg)
    seq_len, stride = cfg.seq_len, opts.stride
    windows = PairedWindows(
        Windows(train_s, mean, std, seq_len, stride),
        Windows(train_t, teacher_ckpt.norm_mean, teacher_ckpt.norm_std, seq_len, stride),
    )
    head = None
    if dopts.feature_transfer:
        teacher_dim = teacher.encoder(torch.zeros(1, *train_t[0].images.shape[1:])).shape[1]
        student_dim = student.encoder(torch.zeros(1, *train_s[0].images.shape[1:])).shape[1]
        head = nn.Linear(student_dim, teacher_dim)
    device = distributed.setup(resolve_device(opts.device))
    teacher.to(device)
    if head is not None:
        head.to(device)
    weight = torch.from_numpy(class_weights(train_s, n_classes)) if opts.class_weighting else None
    weight = weight.to(device) if weight is not None else None
    loss = distill_loss(teacher, teacher_ckpt.n_classes, n_classes, dopts, weight, head)
    result = fit(
        student,
        train_s,
        val_s,
        mean,
        std,
        opts,
        progress,
        windows=windows,
        batch_loss=loss,
        extra_params=list(head.parameters()) if head else (),
        state_path=state_path,
    )
    return Checkpoint(
        model=model_name,
        config=config_dict(cfg),
        state_dict=result.state_dict,
        channel=student_channel,
        norm_mean=mean,
        norm_std=std,
        input_kind=input_kind,
        provenance=result.provenance(
            opts,
            train_s,
            val_s,
            teacher={
                "channel": teacher_channel or teacher_ckpt.channel,
                "model": teacher_ckpt.model,
                "classes": teacher_ckpt.n_classes,
            },
            distillation=asdict(dopts),
            **provenance_fields,
        ),
    )


def distill_model(
    spec: DistillSpec | Path, *args: Any, progress: Any = None, **kwargs: Any
) -> Checkpoint:
    """Run ``spec``: distil the teacher checkpoint ``spec.teacher`` into a fresh student
    trained on ``spec.student_channel`` of a dataset's nights (paired: the teacher sees
    ``spec.teacher_channel`` of the same nights) and save ``spec.out``; ``spec.resume``
    continues a killed run from ``OUT.state``.

    The positional form of 0.1 (``distill_model(teacher_path, data, student_channel, out,
    ...)``) still works for one release, with a ``DeprecationWarning``.
    """
    if not isinstance(spec, DistillSpec):
        if progress is not None:
            kwargs["progress"] = progress
        spec, progress = _legacy_spec(spec, *args, **kwargs)
    opts = spec.train
    check_choices(spec.model, spec.classes, "stft", opts, spec.crop, spec.model_config)
    teacher_ckpt = ckpt_io.load(spec.teacher)
    if spec.classes > teacher_ckpt.n_classes:
        raise UsageError(
            f"--classes {spec.classes}: the teacher has {teacher_ckpt.n_classes}; a student "
            "can only have the teacher's class set or a coarser one"
        )
    split = split_dataset(spec.data, spec.subjects, spec.val_subjects, opts.seed, spec.classes,
                          spec.crop, spec.cache)  # fmt: skip
    t_channel = spec.teacher_channel or teacher_ckpt.channel
    distributed.setup(resolve_device(opts.device))  # under torchrun: join the ranks
    with distributed.main_first():  # rank 0 clears an old state, fills the feature cache
        state_path = state_file(spec.out, spec.resume or not distributed.is_main())
        train_s = split.nights(split.train, spec.student_channel)
        val_s = split.nights(split.val, spec.student_channel)
        train_t = split.nights(split.train, t_channel)
    ckpt = distill_features(
        teacher_ckpt,
        train_s,
        val_s,
        train_t,
        spec.student_channel,
        t_channel,
        spec.classes,
        spec.model,
        opts,
        spec.distill,
        spec.model_config,
        progress,
        "stft",
        state_path,
        **split.provenance(),
        teacher_path=str(spec.teacher),
    )
    if distributed.is_main():
        ckpt.save(spec.out)
    return ckpt


def _legacy_spec(
    teacher_path: Path,
    data: Path,
    student_channel: str,
    out: Path,
    teacher_channel: str | None = None,
    n_classes: int = 4,
    model_name: str = "student",
    subjects: Sequence[str] | None = None,
    n_val_subjects: int = 1,
    crop: Crop = "in-bed",
    opts: TrainOptions | None = None,
    dopts: DistillOptions | None = None,
    model_fields: dict[str, Any] | None = None,
    progress: Any = None,
    resume: bool = False,
    cache: Path | None = None,
) -> tuple[DistillSpec, Any]:
    """The spec of 0.1's positional ``distill_model`` call (deprecated)."""
    warnings.warn("distill_model(teacher_path, data, ...) is deprecated; pass a DistillSpec "
                  "(edgesleep.train.specs)", DeprecationWarning, stacklevel=3)  # fmt: skip
    spec = DistillSpec(
        Path(teacher_path), Path(data), student_channel, Path(out), teacher_channel,
        n_classes, model_name, dopts or DistillOptions(),
        subjects=tuple(subjects) if subjects is not None else None,
        val_subjects=n_val_subjects, crop=crop, resume=resume, cache=cache,
        train=opts or TrainOptions(), model_config=dict(model_fields or {}),
    )  # fmt: skip
    return spec, progress
