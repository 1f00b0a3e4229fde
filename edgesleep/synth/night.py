"""Deprecated (removed in the release after 0.2): ``edgesleep.synth.night`` is
:mod:`edgesleep.synth.psg`."""

from edgesleep._moved import moved

__getattr__ = moved(__name__, "edgesleep.synth.psg")
