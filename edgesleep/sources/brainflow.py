"""``brainflow:board=cyton&serial_port=/dev/ttyUSB0``: a board through BrainFlow (needs
brainflow: the ``brainflow`` extra).

``board`` is any BoardShim id, by number or by name (``synthetic``, ``cyton``,
``cyton_daisy``, ``ganglion``, ``muse_s``, ...: BoardIds without ``_BOARD``, any case);
the connection keys are BrainFlowInputParams' own. The rate and the channels come from
BrainFlow's board descriptor: every ExG channel (EEG, EOG, ECG, EMG), named by the board's
EEG names where it has them (``EOG1``, ``ECG1``, ... otherwise, or ``names=`` for what is
wired), in µV (BrainFlow's unit for ExG). One read a second takes what the board buffered
(``get_board_data``); sample indices count from the first sample and are placed from the
board's timestamp channel (:class:`~edgesleep.sources.base.Placer`), so a radio dropout is a
gap. ``board=synthetic`` needs no hardware. With ``seconds`` > 0 the stream ends after that
much signal (a scheduled recording, a test); with 0 it runs until Ctrl-C.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from edgesleep.errors import InputError, UsageError
from edgesleep.sources.base import Packet, Param, Placer, StreamInfo

log = logging.getLogger("edgesleep")
DOC = "a board through BrainFlow (OpenBCI, Muse, ... and board=synthetic)"
TARGET = None
EXTRA = "pip install 'edgesleep[brainflow]'"
READ_S = 1.0
CONNECTION = ("serial_port", "mac_address", "ip_address", "other_info", "serial_number", "file")
PARAMS = {
    "board": Param(
        str, None, "the BoardShim id: a number or a name (synthetic, cyton, ...)", required=True
    ),  # fmt: skip
    **{key: Param(str, "", f"BrainFlowInputParams.{key}") for key in CONNECTION},
    "ip_port": Param(int, 0, "BrainFlowInputParams.ip_port", 0, 65535),
    "ip_protocol": Param(int, 0, "BrainFlowInputParams.ip_protocol (0 none, 1 UDP, 2 TCP)", 0, 2),
    "timeout": Param(int, 0, "BrainFlowInputParams.timeout, s (0: the board's default)", 0, 600),
    "names": Param(str, "", "labels of the ExG channels, comma-separated, in order"),
    "seconds": Param(float, 0.0, "end after this much signal, s (0: never)", 0.0, 604_800.0),
    "gap": Param(float, 0.5, "a silence longer than this (s) is a gap", 0.01, 60.0),
}


def open_spec(target: str, params: dict[str, Any], channel: str) -> BrainFlowSource:
    connection = {k: params[k] for k in (*CONNECTION, "ip_port", "ip_protocol", "timeout")}
    names = [n.strip() for n in params["names"].split(",") if n.strip()] or None
    return BrainFlowSource(params["board"], connection, names, params["seconds"], params["gap"])


def import_brainflow() -> Any:
    """``brainflow.board_shim`` with its native library.

    Raises
    ------
    InputError
        brainflow is not installed or its library cannot be loaded (one line, the extra).
    """
    try:
        with warnings.catch_warnings():  # brainflow's own use of pkg_resources
            warnings.simplefilter("ignore", UserWarning)
            from brainflow import board_shim

            board_shim.BoardShim.get_version()  # loads the native library now
    except ImportError as err:
        if "pkg_resources" in str(err):  # brainflow < 6 on Python 3.11 with setuptools >= 82
            raise InputError(f"brainflow needs pkg_resources here: pip install 'setuptools<82' "
                             f"(or {EXTRA}, which pins it)") from None  # fmt: skip
        raise InputError(f"BrainFlow needs brainflow: {EXTRA}") from None
    except (OSError, RuntimeError) as err:
        raise InputError(f"BrainFlow's library could not be loaded ({err}); see "
                         "docs/guides/raspberry-pi.md for ARM boards") from None  # fmt: skip
    return board_shim


def board_id(shim: Any, board: str) -> int:
    """A BoardShim id from a number or a name (``synthetic``, ``CYTON_BOARD``, ...).

    Raises
    ------
    UsageError
        An unknown board (the closest names are listed).
    """
    ids = {b.name.lower().removesuffix("_board"): b.value for b in shim.BoardIds}
    key = board.strip().lower().removesuffix("_board")
    if key.lstrip("-").isdigit() and int(key) in ids.values():
        return int(key)
    if key in ids:
        return ids[key]
    import difflib

    close = difflib.get_close_matches(key, ids, n=5, cutoff=0.5)
    raise UsageError(f"source brainflow: unknown board {board!r}"
                     + (f"; did you mean {', '.join(close)}?" if close else
                        "; see BrainFlow's BoardIds (a number or a name)"))  # fmt: skip


class BrainFlowSource:
    """A BrainFlow board's ExG channels (see the module docstring).

    Raises
    ------
    InputError
        brainflow missing, the board not found or not answering (BrainFlow's reason), a
        ``names`` list of the wrong length.
    """

    def __init__(
        self,
        board: str,
        connection: dict[str, Any] | None = None,
        names: list[str] | None = None,
        seconds: float = 0.0,
        gap_s: float = 0.5,
    ) -> None:
        shim = import_brainflow()
        self.board_id = board_id(shim, board)
        params = shim.BrainFlowInputParams()
        for key, value in (connection or {}).items():
            setattr(params, key, value)
        shim.BoardShim.disable_board_logger()
        descr = shim.BoardShim.get_board_descr(self.board_id)
        rate = float(descr["sampling_rate"])
        self.rows = shim.BoardShim.get_exg_channels(self.board_id)
        self.ts_row = int(descr["timestamp_channel"])
        labels = _labels(descr, self.rows)
        if names is not None:
            if len(names) != len(labels):
                raise InputError(f"brainflow: names= has {len(names)} labels, the board has "
                                 f"{len(labels)} ExG channels ({labels})")  # fmt: skip
            labels = names
        self.board = shim.BoardShim(self.board_id, params)
        try:
            self.board.prepare_session()
            self.board.start_stream(int(rate * 600))  # BrainFlow's ring: 10 min
        except shim.BrainFlowError as err:
            self._release()
            raise InputError(
                f"BrainFlow board {descr.get('name', board)!r}: {err}; check "
                "the connection keys (serial_port=, mac_address=, ...)"
            ) from None
        self.seconds, self.placer = seconds, Placer(rate, gap_s)
        self.stats: dict[str, float] = {"reads": 0, "samples": 0, "gaps": 0}
        device = f"brainflow {descr.get('name', board)} ({self.board_id})"
        synthetic = self.board_id == shim.BoardIds.SYNTHETIC_BOARD.value
        clock = "BrainFlow timestamps: samples since the first read"
        self._info = StreamInfo(rate, tuple(labels), None, device, synthetic, clock=clock)
        log.info("BrainFlow: %s, %d ExG channels at %g Hz", self._info.device_id, len(labels), rate)

    def info(self) -> StreamInfo:
        return self._info

    def packets(self) -> Iterator[Packet]:
        limit = int(round(self.seconds * self._info.sfreq)) if self.seconds else None
        due = time.monotonic()
        while True:
            due += READ_S
            time.sleep(max(0.0, due - time.monotonic()))
            data = self.board.get_board_data()
            if not data.shape[1]:
                continue
            self.stats["reads"] += 1
            self.stats["samples"] += data.shape[1]
            gaps = self.placer.gaps
            placed = self.placer.place_read(data[self.ts_row])
            self.stats["gaps"] += self.placer.gaps - gaps
            samples = np.ascontiguousarray(data[self.rows].T)
            for first, part in placed:
                run = samples[part]
                if limit is not None and first + run.shape[0] >= limit:
                    if first < limit:
                        yield Packet(first, run[: limit - first])
                    return
                yield Packet(first, run)

    def _release(self) -> None:
        try:
            if self.board.is_prepared():
                self.board.release_session()
        except Exception as err:  # noqa: BLE001 (closing: nothing left to lose)
            log.warning("BrainFlow: releasing the session failed (%s)", err)

    def close(self) -> None:
        try:
            self.board.stop_stream()
        except Exception as err:  # noqa: BLE001
            log.info("BrainFlow: stop_stream: %s", err)
        self._release()


def _labels(descr: dict[str, Any], rows: list[int]) -> list[str]:
    """Names of the ExG rows: the board's EEG names, else EOG1, ECG1, EMG1, ... by kind."""
    eeg = descr.get("eeg_channels", [])
    eeg_names = [n.strip() for n in str(descr.get("eeg_names", "")).split(",") if n.strip()]
    named = dict(zip(eeg, eeg_names, strict=False)) if len(eeg_names) == len(eeg) else {}
    labels = []
    for row in rows:
        if row in named:
            labels.append(named[row])
            continue
        for kind in ("eeg", "eog", "ecg", "emg"):
            members = descr.get(f"{kind}_channels", [])
            if row in members:
                labels.append(f"{kind.upper()}{members.index(row) + 1}")
                break
        else:
            labels.append(f"EXG{row}")
    return labels
