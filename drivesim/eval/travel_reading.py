"""How far the ego car moves between two frames of a video, read against the true travel.

A travel reader (`drivesim.rollout.odometry.TravelReader`, or `ego_warp.fit_travel`) reads the metres between
frame i and frame i + stride of a clip; the truth is the trapezoid of the clip's per-frame ego speed. Used to
train and score readers (`benchmarks/travel_odometry.py`) and to read the motion of generated keyframes
(`benchmarks/action_pipeline.py --travel-reader`): a rollout that follows the commanded accel moves further
per keyframe as it speeds up, so its read travel follows the true one *within* each clip, not only across clips.
"""

from __future__ import annotations

import numpy as np
import torch

from drivesim.diffusion.ego_warp import GroundCamera, fit_travel
from drivesim.eval.adherence import pearson
from drivesim.eval.checks import uint8_to_video
from drivesim.rollout.odometry import TravelReader
from drivesim.rollout.travel_anchor import TRAVEL_GRID


def travel_pairs(speed: np.ndarray, stride: int, fps: float, every: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Clips' per-frame ego speeds (n, t) m/s -> index pairs (p, 2) of (clip, start frame), start frames 0,
    every, 2 every, ... up to t - stride - 1, and the true travel (p,) m from each start to start + stride."""
    if speed.ndim != 2 or stride < 1 or every < 1 or fps <= 0:
        raise ValueError(f"speed {speed.shape} must be (n, t); stride {stride} and every {every} >= 1; fps {fps} > 0")
    n, t = speed.shape
    step = (speed[:, :-1] + speed[:, 1:]) / (2.0 * fps)  # n (t - 1): metres between neighbouring frames
    cum = np.concatenate([np.zeros((n, 1)), np.cumsum(step, axis=1)], axis=1)  # n t
    idx = np.array([(c, i) for c in range(n) for i in range(0, t - stride, every)], dtype=np.int64).reshape(-1, 2)
    return idx, (cum[idx[:, 0], idx[:, 1] + stride] - cum[idx[:, 0], idx[:, 1]]).astype(np.float32)


def frame_pairs(frames: np.ndarray, idx: np.ndarray, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips (n, t, h, w, 3) uint8 and pairs (p, 2) -> the frames before / after, each (p, 3, h, w) in [-1, 1]."""
    before = uint8_to_video(frames[idx[:, 0], idx[:, 1]][:, None])[:, 0]
    after = uint8_to_video(frames[idx[:, 0], idx[:, 1] + stride][:, None])[:, 0]
    return before, after


@torch.no_grad()
def read_travel(reader: TravelReader | None, frames: np.ndarray, idx: np.ndarray, stride: int) -> np.ndarray:
    """(p,) metres read by `reader` (None: the fitted warp, `ego_warp.fit_travel`) for every pair."""
    out = [torch.zeros(0)]
    for i in range(0, len(idx), 256):
        before, after = frame_pairs(frames, idx[i : i + 256], stride)
        out.append(fit_travel(before, after, TRAVEL_GRID, GroundCamera()) if reader is None else reader(before, after))
    return torch.cat(out).float().numpy()


def travel_score(read: np.ndarray, true: np.ndarray, clip: np.ndarray | None = None) -> dict:
    """Read against true travel (p,): MAE, bias, error spread, R^2, slope and Pearson r; with `clip` (p,) the
    clip of each pair also `within_clip_pearson`, r of both after taking out each clip's mean (does the read
    travel follow the changes of speed inside a clip, the part an accel moves)."""
    if read.shape != true.shape or read.ndim != 1 or len(read) < 2:
        raise ValueError(f"read {read.shape} and true {true.shape} must be the same (p,) with p >= 2")
    err = read - true
    out = {
        "mae_m": float(np.abs(err).mean()), "bias_m": float(err.mean()), "error_std_m": float(err.std()),
        "r2": 1.0 - float(np.mean(err**2) / max(float(np.var(true)), 1e-12)),
        "slope": float(np.polyfit(true, read, 1)[0]) if true.std() > 0 else None,
        "pearson": pearson(read, true), "read_mean_m": float(read.mean()), "true_mean_m": float(true.mean()),
        "pairs": len(true),
    }  # fmt: skip
    if clip is not None:
        centred = [(read[clip == c] - read[clip == c].mean(), true[clip == c] - true[clip == c].mean())
                   for c in np.unique(clip)]  # fmt: skip
        out["within_clip_pearson"] = pearson(np.concatenate([r for r, _ in centred]),
                                              np.concatenate([t for _, t in centred]))  # fmt: skip
    return out
