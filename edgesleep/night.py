"""Deprecated (removed in the release after 0.2): ``edgesleep.night`` is
:mod:`edgesleep.night_file`."""

from edgesleep._moved import moved

__getattr__ = moved(__name__, "edgesleep.night_file")
