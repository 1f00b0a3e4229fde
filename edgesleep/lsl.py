"""Lab Streaming Layer: the optional ``pylsl`` import, a configuration that keeps discovery on
this machine, and the outlet that publishes the night's stages (``stream --lsl-out NAME``).

LSL finds streams by multicast and broadcast on the local network unless told otherwise.
:func:`machine_config` writes a liblsl configuration (the file that ``LSLAPICFG`` names)
that resolves on this machine only: ``ResolveScope = machine``, IPv6 disabled, 127.0.0.1 as
the only machine address, known peer and listen address. Every test and experiment of this
project runs under it; a user who wants stages on the lab's network runs without it.

The outlet (:class:`LslOutlet`) is one irregular-rate stream of double64 samples, one per
scored epoch (a revision re-sends an epoch, marked), whose channels are :data:`CHANNELS` then
one probability per class. Each sample is stamped on LSL's clock (``local_clock()``) at the
epoch's onset: device time is mapped to LSL time when the first packet arrives. A result
reaches the outlet K epochs after its epoch ended (K: the readout delay, in channel
``delay``); closed-loop use (stimulating in N3 or REM) wants a causal model read at K = 0.
The outlet runs inline in the scoring loop (liblsl's push never blocks: a slow reader's
queue drops its oldest samples); the first epochs are held until a first reader connects or
``WAIT_FOR_CONSUMER_S`` have passed, so a reader started with the stream misses none.
"""

from __future__ import annotations

import configparser
import logging
import os
import time
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from edgesleep.errors import InputError
from edgesleep.stages import class_labels

if TYPE_CHECKING:
    from edgesleep.stager import EpochResult

log = logging.getLogger("edgesleep")
EXTRA = "pip install 'edgesleep[lsl]'"
# the epoch's channels before the class probabilities
CHANNELS = ("epoch", "onset_s", "delay", "stage", "revision", "flags")
# bit i of channel "flags" is FLAGS[i] (the epoch's quality flags, edgesleep.stager)
FLAGS = ("gap", "segment", "nonfinite", "implausible", "clipped", "stuck", "flat")
STREAM_TYPE = "SleepStages"
WAIT_FOR_CONSUMER_S = 10.0  # an outlet holds its first epoch this long for a first reader
LINGER_S = 1.0  # at the end, readers get this long to take the last epochs before it goes

MACHINE_CONFIG = """\
; liblsl configuration written by edgesleep: discovery and data stay on this machine
[ports]
IPv6 = disable
[multicast]
ResolveScope = machine
MachineAddresses = {127.0.0.1}
ListenAddress = 127.0.0.1
[lab]
KnownPeers = {127.0.0.1}
SessionID = {session}
[log]
level = -2
"""


def machine_config(path: str | Path, session: str = "edgesleep") -> Path:
    """Write a liblsl configuration that keeps LSL on this machine (see the module
    docstring); point ``LSLAPICFG`` at it before pylsl is first used. ``session``: liblsl's
    SessionID (streams of other sessions are invisible)."""
    path = Path(path)
    path.write_text(MACHINE_CONFIG.replace("{session}", session))
    return path


def machine_only() -> bool:
    """True when ``LSLAPICFG`` names a file that keeps LSL on this machine (every key of
    :func:`machine_config` as written there)."""
    name = os.environ.get("LSLAPICFG", "")
    if not name or not Path(name).is_file():
        return False
    cfg = configparser.ConfigParser(strict=False, inline_comment_prefixes=(";",))
    try:
        cfg.read(name)
    except configparser.Error:
        return False

    def get(section: str, key: str) -> str:
        return cfg.get(section, key, fallback="").replace(" ", "").lower()

    return (get("ports", "ipv6") in ("disable", "disabled")
            and get("multicast", "resolvescope") == "machine"
            and get("multicast", "machineaddresses") == "{127.0.0.1}"
            and get("multicast", "listenaddress") == "127.0.0.1"
            and get("lab", "knownpeers") == "{127.0.0.1}")  # fmt: skip


def import_pylsl() -> ModuleType:
    """``pylsl`` with its native library.

    Raises
    ------
    InputError
        pylsl is not installed, or liblsl cannot be loaded (no wheel for this platform:
        the Raspberry Pi guide says how to build it); one line naming the extra.
    """
    try:
        import pylsl
    except ImportError:
        raise InputError(f"LSL needs pylsl: {EXTRA}") from None
    except (RuntimeError, OSError):  # pylsl present, liblsl not found or not loadable
        raise InputError("LSL needs liblsl, which pylsl could not find or load: install it "
                         "(conda-forge's liblsl, or built; docs/guides/raspberry-pi.md) or "
                         "point PYLSL_LIB at it") from None  # fmt: skip
    return pylsl


def flag_bits(flags: tuple[str, ...]) -> int:
    """The epoch's flags as the bits of :data:`FLAGS` (a flag not listed there: bit 31)."""
    bits = 0
    for f in flags:
        bits |= 1 << FLAGS.index(f) if f in FLAGS else 1 << 31
    return bits


class LslOutlet:
    """The sink behind ``stream --lsl-out NAME`` (see the module docstring); runs inline
    (:class:`edgesleep.sinks.Inline`): nothing here waits but :meth:`close`.

    Parameters
    ----------
    name : str
        The stream's name (what an inlet resolves, ``name=...``).
    n_classes : int
        The model's classes (one probability channel each).
    wait_s : float
        How long the first epochs are held for a first reader (nothing waits for it).
    """

    inline = True

    def __init__(self, name: str, n_classes: int, wait_s: float = WAIT_FOR_CONSUMER_S) -> None:
        self.pylsl = import_pylsl()
        self.name = f"lsl-out {name}"
        self.stream_name, self.n_classes = name, n_classes
        self.outlet: Any = None
        self.anchor: float | None = None  # LSL time of device time 0
        self._offset = self.pylsl.local_clock() - time.monotonic()
        self._held: list[tuple[list[float], float]] | None = []  # until a reader or wait_s
        self._hold_until = time.monotonic() + wait_s

    def start(self, meta: dict[str, Any]) -> None:
        pylsl = self.pylsl
        labels = [*CHANNELS, *(f"p_{c}" for c in class_labels(self.n_classes))]
        source_id = f"edgesleep-{meta.get('export_id', '')}-{meta.get('device_id', '')}"
        info = pylsl.StreamInfo(self.stream_name, STREAM_TYPE, len(labels),
                                pylsl.IRREGULAR_RATE, "double64", source_id[:200])  # fmt: skip
        desc = info.desc()
        channels = desc.append_child("channels")
        for label in labels:
            ch = channels.append_child("channel")
            ch.append_child_value("label", label)
            ch.append_child_value("unit", "s" if label == "onset_s" else "")
        desc.append_child_value("flags", ",".join(FLAGS))
        desc.append_child_value("delay_epochs", str(meta.get("delay", "")))
        desc.append_child_value("epoch_s", "30")
        desc.append_child_value("stages", "YASA: W=0 N1=1 N2=2 N3=3 REM=4, -1 unusable; "
                                          "3/4 classes: their index")  # fmt: skip
        for key in ("device_id", "channel", "export_id"):
            desc.append_child_value(key, str(meta.get(key, "")))
        self.outlet = pylsl.StreamOutlet(info)
        self.delay = float(meta.get("delay", -1))

    def arrived(self, when: tuple[float, float]) -> None:
        """The first packet: device time ``device_s`` (its end) arrived at ``at_monotonic``
        (``time.monotonic()``): the mapping of device time to LSL time."""
        device_s, at_monotonic = when
        if self.anchor is None:
            self.anchor = at_monotonic + self._offset - device_s

    def epoch(self, result: EpochResult) -> None:
        row = [float(result.index), result.onset_s, self.delay, float(result.stage),
               float(result.revision), float(flag_bits(result.flags)),
               *result.probabilities.tolist()]  # fmt: skip
        stamp = (self.anchor + result.onset_s if self.anchor is not None
                 else self.pylsl.local_clock())  # fmt: skip
        if self._held is not None:
            self._held.append((row, stamp))
            if self.outlet.have_consumers() or time.monotonic() > self._hold_until:
                self._release()
            return
        self.outlet.push_sample(row, stamp)

    def _release(self) -> None:
        for sample, stamp in self._held or []:
            self.outlet.push_sample(sample, stamp)
        self._held = None

    def close(self) -> None:
        """Hand over what is held (to a reader that comes within what is left of
        ``wait_s``), give readers ``LINGER_S`` to take what was pushed last (liblsl has no
        flush), then destroy the outlet (readers see it lost)."""
        if self.outlet is None:
            return
        if self._held:
            self.outlet.wait_for_consumers(max(0.0, self._hold_until - time.monotonic()))
            self._release()
        if self.outlet.have_consumers():
            time.sleep(LINGER_S)
        self.outlet = None
