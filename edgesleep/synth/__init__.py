"""Synthetic PSG: whole labelled nights of EEG, EOG and ECG (numpy only)."""
