"""Several sampling seeds of one benchmark point: per-seed values, mean and standard error.

Used by benchmarks/image_ldm_quality.py --seeds: the adherence targets are claims about the
mean over sampling seeds, and one seed's box recall moves by ~0.05, so the spread is reported
beside the mean (and drawn: `seeds.png`, one panel per metric, dots per seed, mean ± standard
error, the target as a dashed line).
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def seed_summary(values: dict[int, dict[str, float]], metrics: tuple[str, ...]) -> dict[str, dict]:
    """values: seed -> {metric: value} -> metric -> {values (per seed), mean, standard_error}.
    The standard error is std (n - 1) / sqrt(n); None for a single seed."""
    if not values:
        raise ValueError("seed_summary needs at least one seed")
    out: dict[str, dict] = {}
    for name in metrics:
        per_seed = {seed: float(v[name]) for seed, v in sorted(values.items())}
        xs = list(per_seed.values())
        mean = sum(xs) / len(xs)
        se = None
        if len(xs) > 1:
            var = sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)
            se = math.sqrt(var / len(xs))
        out[name] = {"values": per_seed, "mean": mean, "standard_error": se}
    return out


def plot_seeds(summary: dict[str, dict], targets: dict[str, float], path: Path) -> Path:
    """One panel per metric: per-seed dots, mean ± standard error, the target (if any) dashed."""
    names = list(summary)
    fig, axes = plt.subplots(1, len(names), figsize=(3.0 * len(names), 3.0), squeeze=False)
    for ax, name in zip(axes[0], names):
        s = summary[name]
        seeds = list(s["values"])
        ax.scatter(range(len(seeds)), list(s["values"].values()), color="tab:blue", zorder=3)
        ax.axhline(s["mean"], color="tab:orange", label="mean")
        if s["standard_error"] is not None:
            lo, hi = s["mean"] - s["standard_error"], s["mean"] + s["standard_error"]
            ax.axhspan(lo, hi, color="tab:orange", alpha=0.2, label="± s.e.")
        if name in targets:
            ax.axhline(targets[name], color="black", linestyle="--", label="target")
        ax.set_xticks(range(len(seeds)), [str(x) for x in seeds])
        ax.set_xlabel("seed")
        ax.set_title(name, fontsize=9)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
