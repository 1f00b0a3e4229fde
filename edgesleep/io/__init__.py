"""File formats: EDF in, hypnograms in and out, night statistics, datasets, fetch."""
