"""Models shipped inside the package, and the one ``stage`` and ``stream`` use when no
``--model`` is given.

The heart models (``heart-4class``: W / Light / Deep / REM, ``heart-3class``: W / NREM /
REM) are built by ``python -m edgesleep.workflows.heart_models`` from the real heart cohorts
(the int8 step graph alone, with a model card in its metadata: one file that streams, and
scores a night offline epoch by epoch). They are exports like any other: a change of the
export format or of the streaming graphs means building them again (the runtime refuses
graphs of another format version).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgesleep.dsp.inputs import get_kind
from edgesleep.errors import UsageError
from edgesleep.ort import ExportedModel

SHIPPED_DIR = Path(__file__).parent / "data" / "models"
HEART_MODELS = {4: "heart-4class", 3: "heart-3class"}  # classes -> shipped name


def shipped_names() -> list[str]:
    """Names of the shipped models (folders holding ``step.onnx``)."""
    if not SHIPPED_DIR.is_dir():
        return []
    return sorted(p.name for p in SHIPPED_DIR.iterdir() if (p / "step.onnx").is_file())


def shipped_model(name: str, threads: int = 1) -> ExportedModel:
    """A shipped model by name.

    Raises
    ------
    UsageError
        No such shipped model (the shipped ones are named).
    """
    if name not in shipped_names():
        raise UsageError(f"no shipped model {name!r}; there are {shipped_names()}")
    return ExportedModel(SHIPPED_DIR / name, threads=threads)


def default_model(n_classes: int | None = None, threads: int = 1) -> ExportedModel:
    """The model used without ``--model``: the shipped heart model of ``n_classes`` (4 by
    default; 3 for W / NREM / REM).

    Raises
    ------
    UsageError
        A class count no shipped model has.
    """
    n = 4 if n_classes is None else n_classes
    if n not in HEART_MODELS:
        raise UsageError(
            f"--classes {n}: the shipped heart models have {sorted(HEART_MODELS)} classes; "
            "for another class set pass --model with a model of your own"
        )
    return shipped_model(HEART_MODELS[n], threads)


def card_summary(model: ExportedModel) -> dict[str, Any]:
    """One row about a shipped or installed model: classes, input, size, data,
    cross-validated κ, the night summary's agreement (each stage's fraction bias in points,
    TST bias in minutes with 95 % limits of agreement; "-" when the card has none)."""
    card = model.info.card or {}
    data = card.get("data", {})
    both = card.get("evaluation", {}).get("both", {})
    size = sum(p.stat().st_size for p in model.folder.glob("*.onnx"))

    def num(value: Any, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    kappa = (f"{both['kappa']:.2f} (subject {num(both.get('subject_kappa_mean'), '.2f')} ± "
             f"{num(both.get('subject_kappa_sd'), '.2f')})" if both else "-")  # fmt: skip
    fractions = both.get("fraction_bias", {})
    tst = both.get("TST_bias_min") or {}
    loa = tst.get("loa") or [None, None]
    return {
        "classes": " / ".join(model.info.labels),
        "input": ", ".join([model.info.signal_channel, *get_kind(model.info.input["kind"]).series]),
        "KB": f"{size / 1024:.0f}",
        "data": ", ".join(
            f"{k} {v['subjects']} subjects" if "subjects" in v else str(k) for k, v in data.items()
        )
        or "-",  # fmt: skip
        "kappa": kappa,
        # in the model's class order (the metadata's JSON sorts the card's keys)
        "fraction_bias": " / ".join(
            f"{c} {fractions[c]['mean']:+.1f}"
            for c in model.info.labels
            if fractions.get(c, {}).get("mean") is not None
        )
        or "-",
        "TST_bias": f"{num(tst.get('mean'), '+.0f')} [{num(loa[0], '+.0f')}, {num(loa[1], '+.0f')}]"
        if tst
        else "-",
    }
