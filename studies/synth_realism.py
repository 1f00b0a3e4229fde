"""Acceptance of the synthetic PSG generator: is it physiological, and is it hard enough?

Run: ``python studies/synth_realism.py [--nights 12] [--seed 0] [--out studies/results]``
(host side: needs scipy and scikit-learn, the ``dev`` extra). Writes ``synth_realism.json``,
``synth_realism.md`` and ``synth_realism.png``. Everything measured here is on SYNTHETIC
signals: it checks the generator, and says nothing about sleep.

Measured:
- per-stage band powers (delta, theta, alpha, sigma, beta) of both EEG derivations, from
  the one STFT, and whether they come in the expected order;
- spindle density per stage from a sigma-band detector run on EEG C4-A1;
- mean heart rate per stage and the respiratory peak of the RR series (RSA);
- difficulty: multinomial logistic regression on per-epoch log band powers,
  leave-one-subject-out, pooled Cohen's kappa per channel.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from edgesleep.dsp import EPOCH_SAMPLES, stft_signal
from edgesleep.io.writers import write_report
from edgesleep.metrics import evaluate
from edgesleep.stages import STAGE_NAMES
from edgesleep.synth.psg import CHANNELS, GENERATOR_VERSION, SynthNight, generate_night
from edgesleep.train.baselines import with_context

BANDS = {"delta": (0.5, 4), "theta": (4, 8), "alpha": (8, 12), "sigma": (12, 16), "beta": (16, 30)}
_FREQS = np.arange(129) * 100 / 256


def band_powers(signal: np.ndarray) -> np.ndarray:
    """Per-epoch log10 band power (µV²) from the one STFT.

    Returns
    -------
    ndarray of shape (n_epochs, 5): delta, theta, alpha, sigma, beta
    """
    power = 10 ** (stft_signal(signal).astype(np.float64) / 10)  # (n_epochs, 29, 129)
    mean = power.mean(axis=1)
    return np.log10(
        np.stack(
            [mean[:, (_FREQS >= lo) & (_FREQS < hi)].sum(axis=1) for lo, hi in BANDS.values()],
            axis=1,
        )
    )


def spindle_count(signal: np.ndarray, sfreq: float) -> np.ndarray:
    """Sigma-band (12-16 Hz) events of 0.5-2 s above 3x the median envelope.

    12 Hz rather than 11 keeps the alpha of the fastest synthetic subjects out.

    Returns
    -------
    ndarray of shape (n_events,), start sample of each detected spindle
    """
    from scipy.signal import butter, hilbert, sosfiltfilt

    sos = butter(4, [12, 16], btype="bandpass", fs=sfreq, output="sos")
    env = np.abs(hilbert(sosfiltfilt(sos, signal)))
    smooth = np.convolve(env, np.ones(int(0.2 * sfreq)) / int(0.2 * sfreq), mode="same")
    above = smooth > 3 * np.median(smooth)
    edges = np.diff(above.astype(np.int8), prepend=0, append=0)
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    dur = (stops - starts) / sfreq
    return starts[(dur >= 0.5) & (dur <= 2.0)]


def rsa_peak(beats_s: np.ndarray, stages: np.ndarray) -> tuple[float, float]:
    """Peak frequency (Hz) of the RR spectrum in 0.1-0.5 Hz over N2/N3, and its share of the
    0.04-0.5 Hz power."""
    fs = 4.0
    rr = np.diff(beats_s)
    t = np.arange(beats_s[1], beats_s[-1], 1 / fs)
    series = np.interp(t, beats_s[1:], rr)
    epoch = np.minimum((t // 30).astype(int), stages.shape[0] - 1)
    nrem = np.isin(stages[epoch], (2, 3))
    seg = series[nrem] - series[nrem].mean()
    n = 256  # 64-s windows
    windows = seg[: seg.shape[0] // n * n].reshape(-1, n) * np.hanning(n)
    spec = (np.abs(np.fft.rfft(windows, axis=1)) ** 2).mean(axis=0)
    freqs = np.fft.rfftfreq(n, 1 / fs)
    hf = (freqs >= 0.1) & (freqs <= 0.5)
    total = (freqs >= 0.04) & (freqs <= 0.5)
    return float(freqs[hf][np.argmax(spec[hf])]), float(spec[hf].sum() / spec[total].sum())


def difficulty(
    features: list[np.ndarray], labels: list[np.ndarray], groups: list[int]
) -> dict[str, float]:
    """Leave-one-subject-out logistic regression on standardised features; pooled metrics."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_all = np.concatenate(features)
    y_all = np.concatenate(labels)
    g_all = np.concatenate([np.full(f.shape[0], g) for f, g in zip(features, groups, strict=True)])
    pred = np.empty_like(y_all)
    for g in np.unique(g_all):
        test = g_all == g
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        model.fit(x_all[~test], y_all[~test])
        pred[test] = model.predict(x_all[test])
    scores = evaluate(y_all, pred, 5)  # W, N1, N2, N3, REM
    return {"kappa": float(scores["kappa"]), "accuracy": float(scores["accuracy"])}  # type: ignore[arg-type]


def measure(nights: list[SynthNight]) -> dict[str, object]:
    stage_ids = list(range(5))
    names = [STAGE_NAMES[s] for s in stage_ids]
    result: dict[str, object] = {
        "generator_version": GENERATOR_VERSION,
        "n_nights": len(nights),
        "n_subjects": len({n.subject for n in nights}),
        "synthetic": True,
    }
    # band powers per stage
    powers: dict[str, dict[str, list[float]]] = {}
    feats: dict[str, list[np.ndarray]] = {c: [] for c in CHANNELS}
    labels, groups = [], []
    for night in nights:
        keep = night.stages >= 0
        labels.append(night.stages[keep])
        groups.append(night.subject)
        for channel in CHANNELS:
            bp = band_powers(night.signals[channel])[: night.stages.shape[0]]
            feats[channel].append(with_context(bp, 1)[keep])
    for channel in CHANNELS[:2]:
        x = np.concatenate([f[:, 5:10] for f in feats[channel]])  # the centre epoch
        y = np.concatenate(labels)
        powers[channel] = {
            band: [float(x[y == s, b].mean()) for s in stage_ids] for b, band in enumerate(BANDS)
        }
    result["log10_band_power_uv2"] = {"stages": names, **powers}
    checks = {}
    for channel, table in powers.items():
        d, th, a, sg = (np.array(table[k]) for k in ("delta", "theta", "alpha", "sigma"))
        checks[channel] = {
            "delta: N3 > N2 > N1, W, REM": bool(d[3] > d[2] > max(d[0], d[1], d[4])),
            "alpha: W highest": bool(a[0] == a.max()),
            "sigma: N2 above W, N1, REM": bool(sg[2] > max(sg[0], sg[1], sg[4])),
            "theta: N1 and REM above W": bool(min(th[1], th[4]) > th[0]),
        }
    result["band_order_checks"] = checks
    # spindles
    per_stage_events = np.zeros(5)
    per_stage_minutes = np.zeros(5)
    for night in nights:
        starts = spindle_count(night.signals["EEG C4-A1"], night.sfreq)
        epoch = np.minimum(starts // int(30 * night.sfreq), night.stages.shape[0] - 1)
        for s in stage_ids:
            per_stage_events[s] += np.count_nonzero(night.stages[epoch] == s)
            per_stage_minutes[s] += np.count_nonzero(night.stages == s) / 2
    density = per_stage_events / np.maximum(per_stage_minutes, 1)
    result["spindles_per_min_detected"] = dict(zip(names, density.round(2).tolist(), strict=True))
    # heart
    hr = np.zeros(5)
    n_hr = np.zeros(5)
    rsa = []
    for night in nights:
        rr = np.diff(night.beat_times_s)
        epoch = np.minimum((night.beat_times_s[1:] // 30).astype(int), night.stages.shape[0] - 1)
        for s in stage_ids:
            sel = night.stages[epoch] == s
            hr[s] += (60 / rr[sel]).sum()
            n_hr[s] += sel.sum()
        rsa.append(rsa_peak(night.beat_times_s, night.stages))
    result["mean_heart_rate_bpm"] = dict(zip(names, (hr / n_hr).round(1).tolist(), strict=True))
    result["rsa"] = {
        "peak_hz_mean": float(np.mean([r[0] for r in rsa])),
        "hf_share_mean": float(np.mean([r[1] for r in rsa])),
        "note": "RR spectrum over N2/N3; breathing rates are drawn in 0.2-0.3 Hz",
    }
    result["difficulty_logreg_loso"] = {
        channel: difficulty(feats[channel], labels, groups) for channel in CHANNELS
    }
    return result


def to_markdown(r: dict[str, object]) -> str:
    bp = r["log10_band_power_uv2"]
    lines = [
        "# Synthetic PSG generator: realism and difficulty (SYNTHETIC data)",
        "",
        f"Generator {r['generator_version']}, {r['n_nights']} nights of {r['n_subjects']} "
        "subjects. Command: `python studies/synth_realism.py`. These numbers check the "
        "generator; they say nothing about sleep.",
        "",
        "## log10 band power per stage (unnormalised STFT |X|², µV² x window energy)",
        "",
    ]
    for channel in CHANNELS[:2]:
        lines += [
            f"**{channel}**",
            "",
            "| band | " + " | ".join(bp["stages"]) + " |",  # type: ignore[index]
            "|---" * 6 + "|",
        ]
        for band in BANDS:
            vals = bp[channel][band]  # type: ignore[index]
            lines.append(f"| {band} | " + " | ".join(f"{v:.2f}" for v in vals) + " |")
        lines.append("")
    lines += ["## Expected orders", ""]
    for channel, checks in r["band_order_checks"].items():  # type: ignore[attr-defined]
        for name, ok in checks.items():
            lines.append(f"- {channel}: {name}: {'yes' if ok else 'NO'}")
    lines += [
        "",
        "## Events and heart",
        "",
        f"- spindles / min detected on EEG C4-A1: {r['spindles_per_min_detected']}",
        f"- mean heart rate (bpm): {r['mean_heart_rate_bpm']}",
        f"- RSA: {r['rsa']}",
        "",
        "## Difficulty: logistic regression on log band powers (epochs t-1, t, t+1), "
        "leave-one-subject-out, 5 classes",
        "",
        "| channel | kappa | accuracy |",
        "|---|---|---|",
    ]
    for channel, m in r["difficulty_logreg_loso"].items():  # type: ignore[attr-defined]
        lines.append(f"| {channel} | {m['kappa']:.3f} | {m['accuracy']:.3f} |")
    return "\n".join(lines) + "\n"


def figure(night: SynthNight, path: Path) -> None:
    """Hypnogram, one example epoch per stage and channel, mean spectra per stage."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(14, 13))
    grid = fig.add_gridspec(7, 4, height_ratios=[1.2, 1, 1, 1, 1, 1, 1.6])
    ax = fig.add_subplot(grid[0, :])
    order = {0: 0, 4: -1, 1: -2, 2: -3, 3: -4}
    hours = np.arange(night.stages.shape[0]) / 120
    ax.step(hours, [order.get(int(s), np.nan) for s in night.stages], where="post", color="k")
    ax.set_yticks([0, -1, -2, -3, -4], ["W", "REM", "N1", "N2", "N3"])
    ax.set_title(f"SYNTHETIC night {night.record} (hypnogram {night.hypnogram_source}); time (h)")
    per_epoch = EPOCH_SAMPLES
    t = np.arange(per_epoch) / 100
    for row, stage in enumerate(range(5), start=1):
        idx = np.flatnonzero(night.stages == stage)
        if idx.size == 0:
            continue
        e = int(idx[idx.size // 2])
        for col, channel in enumerate(CHANNELS):
            a = fig.add_subplot(grid[row, col])
            a.plot(t, night.signals[channel][e * per_epoch : (e + 1) * per_epoch], lw=0.4)
            a.set_title(f"{STAGE_NAMES[stage]} - {channel}", fontsize=8)
            a.tick_params(labelsize=6)
    for col, channel in enumerate(CHANNELS):
        a = fig.add_subplot(grid[6, col])
        images = stft_signal(night.signals[channel])[: night.stages.shape[0]]
        for stage in range(5):
            sel = night.stages == stage
            if sel.any():
                a.plot(_FREQS, images[sel].mean(axis=(0, 1)), label=STAGE_NAMES[stage], lw=1)
        a.set_title(f"mean spectrum (dB) - {channel}", fontsize=8)
        a.set_xlabel("Hz", fontsize=7)
        a.tick_params(labelsize=6)
        if col == 0:
            a.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nights", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("studies/results"))
    args = parser.parse_args()
    nights = [generate_night(args.seed, i) for i in range(args.nights)]
    result = measure(nights)
    result["command"] = f"python studies/synth_realism.py --nights {args.nights} --seed {args.seed}"
    markdown = to_markdown(result)
    write_report(args.out, "synth_realism", result, markdown)
    figure(nights[0], args.out / "synth_realism.png")
    print(markdown)


if __name__ == "__main__":
    main()
