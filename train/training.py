"""Training: Adam, batches of sequences, validation by subject, early stopping, finetuning.

Finetuning strategies (seed 1): which parts of a pretrained model train on the target
(each architecture's ``finetune_parts``); the rest stays bit-identical. For SeqSleepNet:

- ``none``: direct transfer, nothing trains (normalisation still from the target);
- ``softmax``: the classifier;
- ``softmax+epoch``: the classifier, the filterbank and the epoch encoder;
- ``softmax+sequence``: the classifier and the sequence RNN;
- ``all``: everything (also what training from scratch does).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from edgesleep.config import check_keys
from edgesleep.errors import InputError, UsageError
from edgesleep.io.dataset import Crop, Dataset, read_dataset
from edgesleep.readout import default_delay
from edgesleep.train import distributed
from edgesleep.train.checkpoint import provenance
from edgesleep.train.data import (
    IGNORE,
    Chunks,
    NightFeatures,
    Windows,
    class_weights,
    collate_chunks,
    load_features,
)
from edgesleep.train.evaluate import TorchScorer, evaluate_nights
from edgesleep.train.models import STRATEGIES
from edgesleep.train.sequence_model import EpochSequenceModel

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

log = logging.getLogger("edgesleep")

DEFAULT_STRIDE = 5  # measured: bench/results/stride.md


@dataclass(frozen=True)
class TrainOptions:
    """How to train. ``passes`` counts passes over the training windows."""

    passes: float = 10.0
    max_steps: int | None = None
    batch_size: int = 32
    lr: float = 1e-4
    stride: int = DEFAULT_STRIDE
    eval_every: int = 100
    patience: int = 5
    seed: int = 0
    class_weighting: bool = False
    finetune: str = "all"
    device: str = "auto"  # auto (CUDA when present, else MPS, else CPU), cpu, cuda[:N], mps
    amp: Literal["bf16"] | None = None  # bfloat16 autocast, CUDA only
    workers: int = 0  # DataLoader processes reading windows from the feature cache
    # windows per chunk of consecutive epochs encoded once per step (0: every window
    # encodes its own epochs); needs stride < seq_len. See train.data.Chunks.
    shared_windows: int = 0


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """A TOML file as a dict.

    Raises
    ------
    InputError
        No such file (``what`` says what was expected), or not TOML.
    """
    if not path.is_file():
        raise InputError(f"{path}: no such {what}")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"{path}: not valid TOML ({err})") from None


def load_run_config(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """A run's TOML: ``[model]`` (fields of the architecture's config, e.g. ``dilations``,
    ``dropout``, ``weight_decay``) and ``[train]`` (fields of :class:`TrainOptions`, e.g.
    ``lr``, ``batch_size``, ``passes``). Keys are checked here (the closest valid one is
    named); model fields when the model is made, before any data loads.

    Raises
    ------
    InputError
        No such file, or not TOML.
    UsageError
        An unknown section or training key.
    """
    raw = read_toml(path, "config file")
    check_keys(raw, ("model", "train"), str(path))
    train = raw.get("train", {})
    check_keys(train, [f.name for f in fields(TrainOptions)], f"{path} [train]")
    return dict(raw.get("model", {})), dict(train)


def per_pass_options(
    n_epochs: int, seed: int, lr: float, passes: float = 10, patience: int = 3,
    stride: int = DEFAULT_STRIDE, batch_size: int = TrainOptions.batch_size,
) -> TrainOptions:  # fmt: skip
    """Class-weighted, windows every ``stride`` epochs (5 by default), validation once per
    pass over ``n_epochs`` training epochs: the studies' setting."""
    per_pass = max(1, n_epochs // stride // batch_size)
    return TrainOptions(
        passes=passes, eval_every=per_pass, patience=patience, seed=seed, lr=lr,
        class_weighting=True, stride=stride, batch_size=batch_size,
    )  # fmt: skip


@dataclass
class TrainResult:
    state_dict: dict[str, torch.Tensor]
    best_val_accuracy: float
    best_step: int
    steps: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)

    def provenance(
        self,
        opts: TrainOptions,
        train_nights: Sequence[NightFeatures],
        val_nights: Sequence[NightFeatures],
        **fields: Any,
    ) -> dict[str, Any]:
        """A trained checkpoint's provenance: subjects, how training went, ``fields``."""
        return provenance(
            train_subjects=sorted({n.subject for n in train_nights}),
            val_subjects=sorted({n.subject for n in val_nights}),
            training=self.record(opts),
            metrics={"val_accuracy": self.best_val_accuracy},
            **fields,
        )

    def record(self, opts: TrainOptions) -> dict[str, Any]:
        """How the run went, for a checkpoint's provenance."""
        return {
            "steps": self.steps,
            "seconds": round(self.seconds, 1),
            "best_step": self.best_step,
            "stride": opts.stride,
            "seed": opts.seed,
            "class_weighting": opts.class_weighting,
        }


Progress = Callable[[int, int, float, float], None]
# (model, batch from the loader) -> loss; the default is cross-entropy on (x, y) batches
BatchLoss = Callable[[nn.Module, Sequence[torch.Tensor]], torch.Tensor]


def set_trainable(model: EpochSequenceModel, finetune: str) -> list[nn.Parameter]:
    """Freeze every part the strategy does not train (the model's ``finetune_parts``);
    return the trainable parameters."""
    if finetune not in STRATEGIES:
        raise UsageError(f"--finetune {finetune!r}: choose one of {list(STRATEGIES)}")
    parts = model.finetune_parts[finetune]
    trainable = []
    for part, params in model.parameter_groups().items():
        train_it = part in parts
        for p in params:
            p.requires_grad_(train_it)
            if train_it:
                trainable.append(p)
    return trainable


def resolve_device(name: str) -> torch.device:
    """The torch device ``--device`` names: ``auto`` (CUDA when present, else Apple's MPS,
    else the CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.

    Raises
    ------
    UsageError
        An unknown name, or a device this machine does not have (the message says which
        it has).
    """
    mps = torch.backends.mps.is_available()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if mps else "cpu"
    if name == "cpu" or (name == "mps" and mps):
        return torch.device(name)
    if re.fullmatch(r"cuda(:\d+)?", name):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if int(name.partition(":")[2] or 0) < count:
            return torch.device(name)
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU build"
        raise UsageError(
            f"--device {name}: this machine has {count} CUDA device(s) (torch "
            f"{torch.__version__}, {build}); use --device cpu or auto"
        )
    if name == "mps":
        raise UsageError("--device mps: no Apple GPU here; use --device cpu or auto")
    raise UsageError(f"--device {name!r}: choose auto, cpu, cuda, cuda:N or mps")


def cross_entropy(
    train_nights: Sequence[NightFeatures],
    n_classes: int,
    class_weighting: bool,
    device: torch.device | None = None,
) -> BatchLoss:
    """Cross-entropy on (x, y) batches, optionally with inverse-frequency class weights."""
    weight = torch.from_numpy(class_weights(train_nights, n_classes)) if class_weighting else None
    weight = weight.to(device) if weight is not None and device is not None else weight

    def batch_loss(model: nn.Module, batch: Sequence[torch.Tensor]) -> torch.Tensor:
        if getattr(model, "clocked", False):  # windows with their clocks (Windows)
            x, clock, y = batch
            logits = model(x, clock)
        elif len(batch) == 3:  # chunks: epochs, window starts, labels (Chunks)
            x, starts, y = batch
            logits = model.shared_forward(x, starts)  # type: ignore[operator]
        else:
            x, y = batch
            logits = model(x)
        logits, y = align_to_delay(model, logits, y)
        return weighted_cross_entropy(logits.reshape(-1, n_classes), y.reshape(-1), weight)

    return batch_loss


def align_to_delay(
    model: nn.Module, outputs: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pair each output with the epoch it stages: for a causal model trained for a delay of
    K epochs (``fixed_delay``), position t of (batch, L, ...) outputs with position t - K of the
    targets (the first K outputs and last K targets of a window drop out)."""
    k = int(getattr(model, "fixed_delay", 0))
    if k == 0:
        return outputs, targets
    return outputs[:, k:], targets[:, : targets.shape[1] - k]


def weighted_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor | None
) -> torch.Tensor:
    """Cross-entropy averaged over the scored epochs of the *global* batch (weighted as
    torch's weighted mean: divided by the sum of the labels' weights); in a distributed
    run, this rank's share, so that the ranks' gradients add up to the single-process one.

    Parameters
    ----------
    logits : (n, n_classes)
    labels : (n,), IGNORE for unscored epochs
    weight : (n_classes,) or None
    """
    if distributed.world()[1] == 1:  # torch's own weighted mean (bit for bit as before)
        return nn.functional.cross_entropy(logits, labels, weight=weight, ignore_index=IGNORE)
    total = nn.functional.cross_entropy(
        logits, labels, weight=weight, ignore_index=IGNORE, reduction="sum"
    )
    scored = labels[labels != IGNORE]
    count = weight[scored].sum() if weight is not None else total.new_tensor(scored.numel())
    return total / distributed.global_sum(count)


def _optimizer(model: EpochSequenceModel, opts: TrainOptions) -> torch.optim.Optimizer:
    """Adam; L2 (as weight decay) on every trainable weight but the ``no_decay`` parts."""
    groups = model.parameter_groups()
    decay = float(model.cfg.weight_decay)
    param_groups = [
        {
            "params": [p for p in params if p.requires_grad],
            "weight_decay": 0.0 if part in model.no_decay else decay,
        }
        for part, params in groups.items()
    ]
    return torch.optim.Adam([g for g in param_groups if g["params"]], lr=opts.lr)


def fit(
    model: EpochSequenceModel,
    train_nights: Sequence[NightFeatures],
    val_nights: Sequence[NightFeatures],
    mean: np.ndarray,
    std: np.ndarray,
    opts: TrainOptions,
    progress: Progress | None = None,
    windows: torch.utils.data.Dataset | None = None,  # type: ignore[type-arg]
    batch_loss: BatchLoss | None = None,
    extra_params: Sequence[nn.Parameter] = (),
    state_path: Path | None = None,
) -> TrainResult:
    """Train ``model`` in place; return the best state by validation accuracy (paper's
    readout, K = L - 1), evaluated every ``eval_every`` steps, with early stopping.

    ``windows`` and ``batch_loss`` replace the default (x, y) windows of ``train_nights``
    and cross-entropy (distillation uses both); ``extra_params`` train alongside the model
    (e.g. a projection head) without being part of it.

    ``state_path``: the training state (weights, optimiser, RNG states, position in the
    pass, early stopping) is saved there at every validation; if the file exists when
    training starts, training continues from it (the same options are required) and ends
    as the uninterrupted run would have (on the CPU, bit for bit). It is removed at the end.
    """
    cfg: Any = model.cfg
    device, rank, n_ranks = _join_ranks(model, opts, extra_params)
    start = time.perf_counter()
    trainable = set_trainable(model, opts.finetune)
    validate = _validator(TorchScorer(model, mean, std), val_nights, cfg.n_classes, rank, device)
    if not trainable:
        return TrainResult(_cpu_state(model), validate(), 0, 0, time.perf_counter() - start)
    generator = torch.Generator().manual_seed(opts.seed)  # the same order on every rank
    loader = _loader(_windows(train_nights, mean, std, model, opts, windows), opts, generator,
                     device)  # fmt: skip
    total = _total_steps(opts, len(loader))
    loss = batch_loss or cross_entropy(train_nights, cfg.n_classes, opts.class_weighting, device)
    autocast = partial(torch.autocast, "cuda", dtype=torch.bfloat16) if opts.amp else nullcontext
    optimizer = _optimizer(model, opts)
    if extra_params:
        optimizer.add_param_group({"params": list(extra_params), "weight_decay": 0.0})
    stepped = [p for group in optimizer.param_groups for p in group["params"]]
    best = TrainResult(_cpu_state(model), -1.0, 0, 0, 0.0)
    loop = _Loop(pass_start=generator.get_state())
    fingerprint = _fingerprint(opts, cfg, n_ranks)
    if state_path is not None and state_path.is_file():
        best, loop = _load_state(state_path, fingerprint, model, optimizer, extra_params)

    def train_step(batch: Sequence[torch.Tensor]) -> float:
        """One optimiser step on a batch; the loss summed over the ranks."""
        model.train()
        optimizer.zero_grad()
        with autocast():
            value_t = loss(model, [b.to(device, non_blocking=True) for b in batch])
        value_t.backward()
        distributed.sum_gradients(stepped)
        optimizer.step()
        return float(distributed.global_sum(value_t).item())

    while loop.step < total and loop.since_best < opts.patience:
        generator.set_state(loop.pass_start)  # the pass's order (and where a resumed one was)
        for i, batch in enumerate(loader):
            if i < loop.skip:
                continue
            loop.stepped(train_step(batch))
            if loop.step % opts.eval_every == 0 or loop.step == total:
                loop.validated(validate(), best, model)
                rngs = distributed.gather_objects(torch.get_rng_state())
                if state_path is not None and rank == 0:
                    _save_state(state_path, fingerprint, model, optimizer, extra_params, rngs,
                                {"best": asdict(best), **loop.saved(i)})  # fmt: skip
            if progress is not None:
                progress(loop.step, total, loop.running, best.best_val_accuracy)
            if loop.step >= total or loop.since_best >= opts.patience:
                break
        else:  # the pass ended: the next one draws its order from here
            loop.pass_start, loop.skip = generator.get_state(), 0
            continue
        break
    if state_path is not None and rank == 0:
        state_path.unlink(missing_ok=True)
    return _finish(model, best, loop.step, time.perf_counter() - start)


@dataclass
class _Loop:
    """Where the training loop is: steps done, validations without gain, the running loss,
    and the pass being drawn (the generator state at its start, batches already done)."""

    pass_start: torch.Tensor
    step: int = 0
    since_best: int = 0
    running: float = float("nan")
    skip: int = 0

    def stepped(self, value: float) -> None:
        self.step += 1
        self.running = value if np.isnan(self.running) else 0.95 * self.running + 0.05 * value

    def validated(self, acc: float, best: TrainResult, model: nn.Module) -> None:
        """Early stopping's bookkeeping: keep the model when it validates best."""
        best.history.append({"step": self.step, "loss": self.running, "val_accuracy": acc})
        if acc > best.best_val_accuracy:
            best.state_dict = _cpu_state(model)
            best.best_val_accuracy, best.best_step, self.since_best = acc, self.step, 0
        else:
            self.since_best += 1

    def saved(self, batch_in_pass: int) -> dict[str, Any]:
        """The loop's fields of the training state (after batch ``batch_in_pass``)."""
        return {"step": self.step, "since_best": self.since_best, "running": self.running,
                "pass_start": self.pass_start, "batch_in_pass": batch_in_pass + 1}  # fmt: skip


def _join_ranks(
    model: nn.Module, opts: TrainOptions, extra_params: Sequence[nn.Parameter]
) -> tuple[torch.device, int, int]:
    """Set the device up, join the ranks (torchrun) and give them the same weights."""
    device = distributed.setup(resolve_device(opts.device))
    rank, n_ranks = distributed.world()
    if opts.amp is not None and device.type != "cuda":
        raise UsageError(f"--amp {opts.amp} runs on CUDA only; this run is on {device}")
    model.to(device)
    distributed.broadcast_params([*model.parameters(), *extra_params])
    torch.manual_seed(opts.seed + rank)  # dropout differs between ranks
    return device, rank, n_ranks


def _validator(
    scorer: TorchScorer,
    val_nights: Sequence[NightFeatures],
    n_classes: int,
    rank: int,
    device: torch.device,
) -> Callable[[], float]:
    """Rank 0's validation accuracy at the default delay, on every rank (one early-stopping
    decision)."""

    def validate() -> float:
        acc = 0.0
        if rank == 0:
            k = default_delay(scorer)
            metrics = evaluate_nights(scorer, val_nights, n_classes, [k])
            acc = float(metrics[k]["accuracy"])  # type: ignore[arg-type]
        return distributed.broadcast_float(acc, device)

    return validate


def _windows(
    train_nights: Sequence[NightFeatures],
    mean: np.ndarray,
    std: np.ndarray,
    model: EpochSequenceModel,
    opts: TrainOptions,
    windows: torch.utils.data.Dataset | None,  # type: ignore[type-arg]
) -> tuple[torch.utils.data.Dataset, int, Callable[..., Any] | None]:  # type: ignore[type-arg]
    """The training windows, the batch size in items and the collate function: the given
    windows, chunks of windows sharing their epochs' encodings, or plain windows (a causal
    model's include nights shorter than a window, padded: see :class:`Windows`)."""
    cfg = model.cfg
    if (windows is not None or opts.shared_windows) and model.clocked:
        raise UsageError(
            "a model with a clock trains on plain windows: drop shared_windows (and it "
            "cannot be distilled yet)"
        )
    if windows is not None and opts.shared_windows:
        raise UsageError("shared encodings (shared_windows) are for plain training only")
    if windows is not None:
        return windows, opts.batch_size, None
    if opts.shared_windows:
        if opts.stride >= cfg.seq_len:
            raise UsageError(
                f"shared_windows {opts.shared_windows}: windows share epochs only when the "
                f"stride ({opts.stride}) is below the window length ({cfg.seq_len})"
            )
        chunks = Chunks(train_nights, mean, std, cfg.seq_len, opts.stride, opts.shared_windows)
        return chunks, max(1, opts.batch_size // opts.shared_windows), collate_chunks
    windows = Windows(train_nights, mean, std, cfg.seq_len, opts.stride, pad_short=model.causal,
                      clock=model.clocked)  # fmt: skip
    return windows, opts.batch_size, None


def _loader(
    made: tuple[torch.utils.data.Dataset, int, Callable[..., Any] | None],  # type: ignore[type-arg]
    opts: TrainOptions,
    generator: torch.Generator,
    device: torch.device,
) -> torch.utils.data.DataLoader:  # type: ignore[type-arg]
    """Batches of windows in the generator's order, this rank's share of each."""
    windows, batch_size, collate = made
    return torch.utils.data.DataLoader(
        windows,
        batch_sampler=distributed.RankBatches(
            torch.utils.data.RandomSampler(windows, generator=generator),  # type: ignore[arg-type]
            batch_size,
            drop_last=len(windows) > batch_size,  # type: ignore[arg-type]
        ),
        collate_fn=collate,
        generator=generator,
        pin_memory=device.type == "cuda",
        num_workers=opts.workers,
        persistent_workers=opts.workers > 0,
    )


def _total_steps(opts: TrainOptions, batches_per_pass: int) -> int:
    total = max(1, int(opts.passes * batches_per_pass))
    return total if opts.max_steps is None else min(total, opts.max_steps)


def _fingerprint(opts: TrainOptions, cfg: Any, n_ranks: int) -> str:
    """What a resumed run must share with the killed one (not where it runs)."""
    run = {**asdict(opts), "device": None, "amp": None, "workers": None}
    return json.dumps({"opts": run, "config": asdict(cfg), "ranks": n_ranks}, sort_keys=True)


def _finish(model: nn.Module, best: TrainResult, steps: int, seconds: float) -> TrainResult:
    """Load the best weights into the model and say how training went."""
    best.steps, best.seconds = steps, seconds
    model.load_state_dict(best.state_dict)
    log.info("trained %d steps in %.0f s; best validation accuracy %.3f at step %d",
             steps, seconds, best.best_val_accuracy, best.best_step)  # fmt: skip
    return best


def state_file(out: Path, resume: bool) -> Path:
    """Where a run writing ``out`` keeps its training state (``OUT.state``); a run that
    does not resume starts without one."""
    path = out.with_name(out.name + ".state")
    if not resume:
        path.unlink(missing_ok=True)
    return path


def _save_state(
    path: Path,
    fingerprint: str,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    extra_params: Sequence[nn.Parameter],
    rngs: list[Any],
    loop: dict[str, Any],
) -> None:
    """The training state, written atomically (a kill while writing leaves the last one);
    ``rngs``: every rank's torch RNG state."""
    state = {
        "fingerprint": fingerprint,
        "model": _cpu_state(model),
        "optimizer": optimizer.state_dict(),
        "extra": [p.detach().cpu().clone() for p in extra_params],
        "torch_rngs": rngs,
        **loop,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _load_state(
    path: Path,
    fingerprint: str,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    extra_params: Sequence[nn.Parameter],
) -> tuple[TrainResult, _Loop]:
    """Restore what :func:`_save_state` wrote (tensors and plain types only, loaded with
    ``weights_only=True``: a planted file runs no code): the weights, the optimiser, the
    RNG; return the best result and the loop where the saved state left them.

    Raises
    ------
    UsageError
        Not a training state of this run (unreadable, foreign, another run's).
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 (torch raises many kinds for a foreign file)
        raise UsageError(
            f"{path}: not a training state edgesleep can load ({type(err).__name__}: "
            f"{str(err).splitlines()[0][:200]}); delete it to start again"
        ) from None
    if not isinstance(state, dict) or state.get("fingerprint") != fingerprint:
        raise UsageError(
            f"{path}: a training state of another run (other options or model); train with "
            "the same options to continue it, or delete it to start again"
        )
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    with torch.no_grad():
        for p, saved in zip(extra_params, state["extra"], strict=True):
            p.copy_(saved)
    torch.set_rng_state(state["torch_rngs"][distributed.world()[0]])
    loop = _Loop(state["pass_start"], state["step"], state["since_best"], state["running"],
                 state["batch_in_pass"])  # fmt: skip
    log.info("%s: training continues at step %d", path, loop.step)
    return TrainResult(**state["best"]), loop


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the model's state on the CPU (checkpoints never hold device tensors)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def split_subjects(subjects: Sequence[str], n_val: int, seed: int) -> tuple[list[str], list[str]]:
    """Shuffle subjects with ``seed``; the first ``n_val`` validate, the rest train."""
    if len(subjects) < 2:
        raise InputError(
            f"validation is by subject and needs at least 2 subjects, got {list(subjects)}: "
            "add nights of another subject (or choose more with --subjects)"
        )
    n_val = min(max(1, n_val), len(subjects) - 1)
    order = [str(s) for s in np.random.default_rng(seed).permutation(sorted(subjects))]
    return sorted(order[n_val:]), sorted(order[:n_val])


@dataclass(frozen=True)
class DatasetSplit:
    """A dataset's subjects split into training and validation subjects."""

    path: Path
    dataset: Dataset
    train: list[str]
    val: list[str]
    n_classes: int
    crop: Crop
    cache: Path | None = None  # the feature cache (default: next to the dataset)

    def nights(self, ids: Sequence[str], channel: str, kind: str = "stft") -> list[NightFeatures]:
        """The nights of subjects ``ids`` through ``channel``, as input ``kind``."""
        chosen = [e for e in self.dataset.entries if e.subject in ids]
        return load_features(
            self.dataset, channel, self.n_classes, self.crop, chosen, kind=kind, cache=self.cache
        )

    def provenance(self) -> dict[str, Any]:
        """Where the training data came from, for a checkpoint."""
        return {
            "dataset": str(self.dataset.info.get("name", self.path)),
            "synthetic": self.dataset.synthetic,
            "generator_version": self.dataset.info.get("generator_version"),
            "crop": self.crop,
        }


def split_dataset(
    data: Path,
    subjects: Sequence[str] | None,
    n_val: int,
    seed: int,
    n_classes: int,
    crop: Crop,
    cache: Path | None = None,
) -> DatasetSplit:
    """Read a dataset and split ``subjects`` (default: all) with :func:`split_subjects`."""
    dataset = read_dataset(data)
    pool = list(subjects) if subjects is not None else dataset.subjects
    train, val = split_subjects(pool, n_val, seed)
    return DatasetSplit(data, dataset, train, val, n_classes, crop, cache)
