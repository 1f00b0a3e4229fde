"""Where a stream comes from: sources, each addressed by one spec string.

A spec is ``scheme:target?key=value&key=value`` (``serial:/dev/ttyUSB0?baud=115200``,
``stdin:?sfreq=256``, ``edf:night.edf?speed=10``, ``synthetic:?seed=3&epochs=60``,
``lsl:type=EEG``, ``brainflow:board=synthetic``; a source without a target also takes
``scheme:key=value&...``). Each
scheme is one module of this package and one line of :data:`SOURCES`; the module declares
``DOC`` (one line), ``TARGET`` (what comes before ``?``, or None), ``PARAMS`` (each key's
:class:`~edgesleep.sources.base.Param`) and ``open_spec(target, params, channel)``, where
``channel`` is the model's channel (what a file or generator replays unless the spec says
otherwise). An optional package (pyserial, pylsl, brainflow) is imported only when its
source opens.

Every source yields :class:`Packet` s (device-rate µV with the index of their first sample
since the stream started) and, from the serial protocol and LSL's heart streams,
:class:`BeatPacket` s and :class:`RatePacket` s (see :mod:`edgesleep.sources.base`), one
batch per read.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl

from edgesleep.config import check_keys
from edgesleep.errors import UsageError
from edgesleep.sources.base import (
    PACKET_S,
    ArraySource,
    BeatPacket,
    Packet,
    Param,
    Placer,
    RatePacket,
    Source,
    StreamInfo,
    pick_channel,
)
from edgesleep.sources.edf import edf_source
from edgesleep.sources.serial import SerialSource
from edgesleep.sources.stdin import CsvSource
from edgesleep.sources.synthetic import synthetic_source

# scheme -> the module that opens it (one line per source)
SOURCES = {
    "serial": "edgesleep.sources.serial",
    "stdin": "edgesleep.sources.stdin",
    "edf": "edgesleep.sources.edf",
    "synthetic": "edgesleep.sources.synthetic",
    "lsl": "edgesleep.sources.lsl",
    "brainflow": "edgesleep.sources.brainflow",
}

__all__ = [
    "PACKET_S", "SOURCES", "ArraySource", "BeatPacket", "CsvSource", "Packet", "Param",
    "RatePacket", "SerialSource", "Source", "SourceSpec", "StreamInfo", "edf_source",
    "Placer", "open_source", "parse_spec", "pick_channel", "source_module", "synthetic_source",
]  # fmt: skip


@dataclass(frozen=True)
class SourceSpec:
    """A parsed spec: the scheme, the target (before ``?``) and the typed parameters (every
    key of the source's ``PARAMS``, defaults filled in)."""

    scheme: str
    target: str
    params: dict[str, Any]

    def __str__(self) -> str:
        module = source_module(self.scheme)
        given = "&".join(f"{k}={v}" for k, v in self.params.items()
                         if v != module.PARAMS[k].default)  # fmt: skip
        return f"{self.scheme}:{self.target}" + (f"?{given}" if given else "")


def source_module(scheme: str) -> ModuleType:
    """The module of ``scheme``.

    Raises
    ------
    UsageError
        An unknown scheme (the known ones are named).
    """
    if scheme not in SOURCES:
        raise UsageError(f"unknown source {scheme!r}: use one of " + ", ".join(
            f"{s}:" for s in SOURCES))  # fmt: skip
    return importlib.import_module(SOURCES[scheme])


def parse_spec(text: str) -> SourceSpec:
    """``scheme:target?key=value&...`` -> :class:`SourceSpec`.

    Raises
    ------
    UsageError
        No scheme, an unknown scheme or key, a target where the source takes none (or none
        where it needs one), a value of the wrong type or out of bounds, a missing required
        key, a key given twice.
    """
    scheme, colon, rest = text.partition(":")
    if not colon:
        raise UsageError(
            f"source {text[:60]!r}: say what it is, e.g. serial:/dev/ttyUSB0, stdin:?sfreq=256, "
            "edf:night.edf or synthetic: (see `edgesleep stream --help`)"
        )
    module = source_module(scheme)
    target, _, query = rest.partition("?")
    if module.TARGET is None and "=" in target and not query:  # "scheme:key=value&..."
        target, query = "", target
    where = f"source {scheme}:"
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise UsageError(f"{where} {query[:60]!r} is not key=value&key=value") from None
    keys = [k for k, _ in pairs]
    check_keys(dict(pairs), module.PARAMS, where)
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise UsageError(f"{where} {twice} given more than once")
    if module.TARGET is None and target:
        raise UsageError(f"{where} takes no target before '?' (got {target[:60]!r})")
    if module.TARGET is not None and not target:
        raise UsageError(f"{where} needs {module.TARGET} before '?'")
    given = dict(pairs)
    missing = [k for k, p in module.PARAMS.items() if p.required and k not in given]
    if missing:
        needs = ", ".join(f"{k}= ({module.PARAMS[k].help})" for k in missing)
        raise UsageError(f"{where} needs {needs}")
    params = {k: p.parse(where, k, given[k]) if k in given else p.default
              for k, p in module.PARAMS.items()}  # fmt: skip
    return SourceSpec(scheme, target, params)


def open_source(spec: str | SourceSpec, channel: str = "") -> Source:
    """Open the source that ``spec`` names; ``channel``: the model's channel, replayed by a
    file or the generator unless the spec names another."""
    parsed = spec if isinstance(spec, SourceSpec) else parse_spec(spec)
    module = source_module(parsed.scheme)
    source: Source = module.open_spec(parsed.target, parsed.params, channel)
    return source
