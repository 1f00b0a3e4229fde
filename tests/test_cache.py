"""The feature cache: computed once, memory-mapped, refreshed when its source changes,
shardable, the same from several processes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from edgesleep.cli import app
from edgesleep.dsp.stft import stft_signal
from edgesleep.errors import UsageError
from edgesleep.io.dataset import load_night, read_dataset
from edgesleep.stages import to_classes
from edgesleep.train import cache
from edgesleep.train.data import Windows, load_features, norm_stats, normalise

CHANNEL = "EOG horizontal"


@pytest.fixture
def dataset(tiny_dataset: Path, tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    shutil.copytree(tiny_dataset, root, ignore=shutil.ignore_patterns("cache"))
    return root


def computed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records whose features get computed from now on."""
    seen: list[str] = []
    real = cache.compute

    def spy(root: Path, ds: object, entry: object, req: object) -> dict:
        seen.append(entry.record)  # type: ignore[attr-defined]
        return real(root, ds, entry, req)  # type: ignore[arg-type]

    monkeypatch.setattr(cache, "compute", spy)
    return seen


def test_features_are_computed_once_and_memory_mapped(
    dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = read_dataset(dataset)
    seen = computed(monkeypatch)
    first = load_features(ds, CHANNEL, 4)
    assert sorted(seen) == sorted(e.record for e in ds.entries)
    again = load_features(ds, CHANNEL, 4)
    assert len(seen) == len(ds.entries)  # nothing recomputed
    for night, entry in zip(again, ds.entries, strict=True):
        assert isinstance(night.images, np.memmap) and not night.images.flags.writeable
        direct = load_night(ds, entry, CHANNEL)
        np.testing.assert_array_equal(night.images, stft_signal(direct.signal))
        np.testing.assert_array_equal(night.labels, to_classes(direct.stages, 4))
    assert [n.record for n in first] == [n.record for n in again]
    assert (dataset / "cache").is_dir()
    # another crop, channel or class set: its own entries (classes map from cached stages)
    load_features(ds, CHANNEL, 3)
    assert len(seen) == len(ds.entries)
    load_features(ds, CHANNEL, 5, crop="none")
    assert len(seen) == 2 * len(ds.entries)


def test_a_changed_recording_is_recomputed(dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = read_dataset(dataset)
    load_features(ds, CHANNEL, 5)
    seen = computed(monkeypatch)
    psg = dataset / ds.entries[1].psg
    stat = psg.stat()
    os.utime(psg, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    load_features(ds, CHANNEL, 5)
    assert seen == [ds.entries[1].record]


def test_shards_are_disjoint_and_cover_the_nights(dataset: Path) -> None:
    entries = read_dataset(dataset).entries
    parts = [cache.shard(entries, (i, 4)) for i in range(1, 5)]
    records = [e.record for part in parts for e in part]
    assert sorted(records) == sorted(e.record for e in entries)
    assert len(set(records)) == len(records)
    assert cache.parse_shard("2/8") == (2, 8)
    for bad in ("0/2", "3/2", "2", "a/b"):
        with pytest.raises(UsageError, match="I/N"):
            cache.parse_shard(bad)


def test_cli_shards_and_jobs_fill_the_cache_other_verbs_read(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    where = tmp_path / "elsewhere"
    runner = CliRunner()
    for part in ("1/2", "2/2"):
        args = ["data", "features", str(dataset), "--channel", CHANNEL, "--shard", part,
                "--jobs", "2", "--cache", str(where)]  # fmt: skip
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        assert "3 nights" in result.output
    assert not (dataset / "cache").exists()
    seen = computed(monkeypatch)
    ds = read_dataset(dataset)
    from_cli = load_features(ds, CHANNEL, 5, cache=where)
    assert seen == []
    direct = [stft_signal(load_night(ds, e, CHANNEL).signal) for e in ds.entries]
    for night, images in zip(from_cli, direct, strict=True):
        np.testing.assert_array_equal(night.images, images)
    monkeypatch.setenv(cache.ENV, str(where))
    load_features(ds, CHANNEL, 5)
    assert seen == []


def test_cli_names_a_missing_channel(dataset: Path) -> None:
    result = CliRunner().invoke(app, ["data", "features", str(dataset), "--channel", "EMG"])
    assert result.exit_code == 1
    assert "EMG" in result.output and "EOG horizontal" in result.output


def test_windows_normalise_lazily_from_the_maps(dataset: Path) -> None:
    nights = load_features(read_dataset(dataset), CHANNEL, 5)
    mean, std = norm_stats(nights)
    windows = Windows(nights, mean, std, seq_len=20, stride=7)
    night, start = windows.index[3]
    x, y = windows[3]
    np.testing.assert_array_equal(
        x.numpy(), normalise(nights[night].images[start : start + 20], mean, std)
    )
    assert y.dtype == torch.int64 and x.shape == (20, 29, 129)
    assert all(isinstance(image, np.memmap) for image in windows.images)
