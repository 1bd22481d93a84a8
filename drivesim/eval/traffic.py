"""Traffic over a clip: how many vehicles the frame probe's detector finds per frame, and how that count moves.

The crowdedness label (`adherence.predict_conditions`) is a three-way class of the whole clip, and it reads any
car-coloured smear as traffic (docs/results.md, *Crowdedness over whole clips*). Counting detected boxes (the
probe's CenterNet head above its score threshold) per frame, binned over the clip's time, shows whether a generated
clip keeps the vehicles its first frame had, next to real clips of the same labels.

Shapes: videos (n, t, h, w, 3) uint8; counts (n, t) int.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from einops import rearrange

from drivesim.data.atomic import save_figure
from drivesim.eval.frame_probe import FrameProbe
from drivesim.eval.vehicle_keep import detect_frames
from drivesim.world.types import CROWDEDNESS


@torch.no_grad()
def vehicle_counts(probe: FrameProbe, video: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Detected vehicles per frame of (n, t, h, w, 3) uint8 clips -> (n, t) int."""
    if video.ndim != 5:
        raise ValueError(f"video must be (n, t, h, w, 3) uint8 clips, got shape {video.shape}")
    frames = rearrange(video, "n t h w c -> (n t) h w c")
    counts = [len(d.xyxy) for d in detect_frames(probe, frames, batch_size)]
    return rearrange(np.asarray(counts, np.int64), "(n t) -> n t", n=video.shape[0])


def binned_means(counts: np.ndarray, fps: float, bin_seconds: float) -> list[float]:
    """Mean count over clips and the frames of each `bin_seconds` bin from the clip's start: (n, t) -> per bin
    (the last bin may be shorter)."""
    if counts.ndim != 2 or counts.shape[1] < 1:
        raise ValueError(f"counts must be (n, t >= 1), got shape {counts.shape}")
    if not fps > 0 or not bin_seconds > 0:
        raise ValueError(f"fps={fps} and bin_seconds={bin_seconds} must be > 0")
    per_bin = max(1, round(fps * bin_seconds))
    return [float(counts[:, i : i + per_bin].mean()) for i in range(0, counts.shape[1], per_bin)]


@dataclass(frozen=True)
class TrafficCurve:
    """Mean detected vehicles per frame over time (`bin_seconds` bins) for the generated and the real clips, all
    clips and per requested crowdedness level (levels no clip asked for are left out)."""

    bin_seconds: float
    generated: list[float]
    real: list[float]
    generated_by_level: dict[str, list[float]]
    real_by_level: dict[str, list[float]]


def traffic_curve(
    generated: np.ndarray, real: np.ndarray, crowdedness: Sequence[str | None], fps: float, bin_seconds: float = 0.8
) -> TrafficCurve:
    """`TrafficCurve` of per-frame counts (n, t) of generated clips and the real clips they started from (the same
    n; t may differ), each clip's requested crowdedness in `crowdedness` (None: not asked)."""
    if generated.shape[0] != real.shape[0] or len(crowdedness) != generated.shape[0]:
        raise ValueError(f"generated ({generated.shape[0]}), real ({real.shape[0]}) and crowdedness "
                         f"({len(crowdedness)}) must have one entry per clip")  # fmt: skip
    levels = np.asarray([c if c is not None else "" for c in crowdedness])
    by_gen, by_real = {}, {}
    for level in CROWDEDNESS:
        rows = levels == level
        if rows.any():
            by_gen[level] = binned_means(generated[rows], fps, bin_seconds)
            by_real[level] = binned_means(real[rows], fps, bin_seconds)
    return TrafficCurve(bin_seconds, binned_means(generated, fps, bin_seconds), binned_means(real, fps, bin_seconds),
                        by_gen, by_real)  # fmt: skip


def plot_traffic(curve: TrafficCurve, path: str | Path) -> Path:
    """One panel per requested crowdedness level (and all clips): detected vehicles per frame against the clip's
    time, generated (solid) and real (dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("all clips", curve.generated, curve.real)] + [
        (level, curve.generated_by_level[level], curve.real_by_level[level]) for level in curve.generated_by_level
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.0 * len(panels), 2.6), squeeze=False, sharey=True)
    for ax, (name, gen, real) in zip(axes[0], panels):
        for values, style, label in ((gen, "-", "generated"), (real, "--", "real")):
            ax.plot([(i + 0.5) * curve.bin_seconds for i in range(len(values))], values, style, marker="o", label=label)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("clip time (s)")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("vehicles detected per frame")
    axes[0, 0].legend(fontsize=7)
    return save_figure(fig, path)
