"""Registry of architectures: name -> (config dataclass, module)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from edgesleep.train.seqsleepnet import SeqSleepNet, SeqSleepNetConfig
from torch import nn

MODELS: dict[str, tuple[type, type[nn.Module]]] = {
    "seqsleepnet": (SeqSleepNetConfig, SeqSleepNet),
}


def make_config(name: str, **fields: Any) -> Any:
    """The config dataclass of ``name`` with ``fields`` set."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; registered: {sorted(MODELS)}")
    return MODELS[name][0](**fields)


def build(name: str, config: Any) -> nn.Module:
    """A fresh model of ``name`` from its config (dataclass or dict)."""
    cfg = config if not isinstance(config, dict) else make_config(name, **config)
    return MODELS[name][1](cfg)


def config_dict(config: Any) -> dict[str, Any]:
    return asdict(config)
