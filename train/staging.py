"""Deprecated (removed in the release after 0.2): ``edgesleep.train.staging`` is
:mod:`edgesleep.train.sequence_model`."""

from edgesleep._moved import moved

__getattr__ = moved(__name__, "edgesleep.train.sequence_model")
