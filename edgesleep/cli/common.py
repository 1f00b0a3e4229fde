"""What the verbs share: choices (enums shown in ``--help``, from the registries), tables,
the training progress bar, and the check for an extra."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, get_args

from edgesleep.dsp.inputs import kind_names
from edgesleep.errors import InputError
from edgesleep.io.dataset import Crop as CropLiteral
from edgesleep.io.heart import SOURCES as HEART_SOURCES
from edgesleep.metadata import PRECISIONS, TARGETS
from edgesleep.train.models import STRATEGIES, model_names


def choices(values: Iterable[str]) -> Any:
    """A ``Literal`` of ``values``: typer shows and checks it as a choice; the verb gets the
    chosen string."""
    return Literal[tuple(values)]


if TYPE_CHECKING:  # what the verbs receive
    Crop: TypeAlias = str
    Classes: TypeAlias = str
    Model: TypeAlias = str
    InputKind: TypeAlias = str
    Finetune: TypeAlias = str
    Precision: TypeAlias = str
    Target: TypeAlias = str
    Amp: TypeAlias = str
    HeartSource: TypeAlias = str
else:  # from the registries: what typer offers
    Crop = choices(get_args(CropLiteral))
    Classes = choices(("5", "4", "3"))
    Model = choices(model_names())
    InputKind = choices(kind_names())
    Finetune = choices(STRATEGIES)
    Precision = choices(PRECISIONS)
    Target = choices(TARGETS)
    Amp = choices(("bf16",))
    HeartSource = choices(HEART_SOURCES)

DEVICE_HELP = "auto (CUDA when present, else MPS, else CPU), cpu, cuda, cuda:N or mps."
AMP_HELP = "bf16: bfloat16 autocast while training (CUDA only)."
CROP_HELP = "in-bed (lights-off to lights-on), sleep (±30 min), or none."
CLASSES_HELP = "Class set: 5, 4 (W/Light/Deep/REM) or 3 (W/NREM/REM)."
CACHE_HELP = (
    "Feature cache directory (default: $EDGESLEEP_CACHE, else DATA/cache, else the user's "
    "cache directory)."
)


def need(extra: str) -> None:
    """Refuse a verb whose extra (``train``: torch; ``export``: torch and onnx) is missing."""
    try:
        import torch  # noqa: F401

        if extra == "export":
            import onnx  # noqa: F401
    except ImportError:
        raise InputError(
            f"this verb needs the {extra} extra: pip install torch==2.13.0 'edgesleep[{extra}]'"
        ) from None


def subjects_list(subjects: str | None) -> list[str] | None:
    return [s.strip() for s in subjects.split(",") if s.strip()] if subjects else None


def print_table(title: str, columns: list[str], rows: Iterable[Iterable[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console().print(table)


@contextmanager
def training_progress() -> Iterator[Callable[[int, int, float, float], None]]:
    """A progress bar with loss and best validation accuracy, shown from the first step
    (so a refusal before training prints its one line alone); yields the update callback."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
    )
    bar = Progress(*columns, transient=False)
    task = bar.add_task("training", total=None, status="")

    def show(step: int, total: int, loss: float, val_acc: float) -> None:
        bar.start()  # no-op once started
        status = f"loss {loss:.3f}  val acc {max(val_acc, 0):.3f}"
        bar.update(task, completed=step, total=total, status=status)

    try:
        yield show
    finally:
        bar.stop()
