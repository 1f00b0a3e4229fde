"""edgesleep: single-channel sleep staging for wearables, measured honestly."""

__version__ = "0.1.0"
