"""Writing evaluation results: JSON (NaN/inf become null), drift plot (metric vs rollout time) and a
storyboard PNG of real vs generated clips."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from drivesim.data.atomic import atomic_write_text, save_figure
from drivesim.eval.results import EvalReport
from drivesim.eval.video_sets import VideoSet


def to_plain(obj: Any) -> Any:
    """Dataclasses / numpy / nested containers to JSON-safe Python (non-finite floats -> None)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_plain(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def write_json(path: str | Path, obj: Any) -> Path:
    path = Path(path)
    atomic_write_text(path, json.dumps(to_plain(obj), indent=2, allow_nan=False) + "\n")
    return path


def _series(report: EvalReport) -> dict[str, list[float | None]]:
    def get(fn: Any) -> list[float | None]:
        out = []
        for w in report.drift:
            try:
                out.append(fn(w))
            except AttributeError:
                out.append(None)
        return out

    return {
        "FID-probe": get(lambda w: w.fid_probe),
        "condition adherence (both)": get(lambda w: w.condition.both),
        "box recall": get(lambda w: w.box.recall),
        "steer Pearson r": get(lambda w: w.action.steer.pearson),
        "accel Pearson r": get(lambda w: w.action.accel.pearson),
        "flicker": get(lambda w: w.flicker),
        "PSNR (dB)": get(lambda w: w.psnr),
        "SSIM": get(lambda w: w.ssim),
    }


def plot_drift(report: EvalReport, path: str | Path) -> Path:
    """One panel per metric that has values: metric vs rollout time (window centre, seconds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    centres = [(w.start_s + w.end_s) / 2 for w in report.drift]
    series = {k: v for k, v in _series(report).items() if any(x is not None for x in v)}
    fig, axes = plt.subplots(len(series) or 1, 1, figsize=(7, 2.0 * max(1, len(series))), squeeze=False, sharex=True)
    for ax, (name, values) in zip(axes[:, 0], series.items()):
        pts = [(t, v) for t, v in zip(centres, values) if v is not None]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", lw=1)
        ax.set_ylabel(name, fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("rollout time (s)")
    fig.suptitle("metrics per rollout window (long-horizon drift)")
    return save_figure(fig, path)


def plot_storyboard(
    real: VideoSet, generated: VideoSet, path: str | Path, num_clips: int = 3, num_frames: int = 6
) -> Path:
    """Rows alternate real / generated (paired by id when ids match, else by order); columns are
    evenly spaced frames."""
    real_by_id = real.by_id()
    rows: list[tuple[str, np.ndarray]] = []
    for i, gen in enumerate(generated.clips[:num_clips]):
        ref = real_by_id.get(gen.id, real.clips[i % len(real.clips)])
        rows.append((f"real {ref.id}", ref.frames))
        rows.append((f"generated {gen.id}", gen.frames))
    return plot_frame_grid(rows, path, num_frames)


def plot_frame_grid(
    rows: list[tuple[str, np.ndarray]], path: str | Path, columns: int, titles: list[str] | None = None
) -> Path:
    """One labelled row per (label, frames (t, h, w, 3) uint8), `columns` evenly spaced frames
    each; column titles `titles` or the frame index."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), columns, figsize=(1.9 * columns, 1.2 * len(rows)), squeeze=False)
    for r, (label, frames) in enumerate(rows):
        idx = np.linspace(0, len(frames) - 1, columns).round().astype(int)
        for c, k in enumerate(idx):
            ax = axes[r, c]
            ax.imshow(frames[k])
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(titles[c] if titles else f"frame {k}", fontsize=7)
        axes[r, 0].set_ylabel(label, fontsize=6)
    return save_figure(fig, path)
