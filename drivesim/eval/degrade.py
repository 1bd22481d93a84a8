"""Controlled degradations of real video for the sanity baselines: each takes a strength, and a
metric worth trusting must get worse monotonically as the strength grows.

All operate on `b t c h w` float videos in [-1, 1] and return a new tensor of the same shape.
Randomness comes from a passed `torch.Generator`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from drivesim.eval.checks import check_video


def _check_strength(name: str, value: float, lo: float, hi: float = math.inf) -> None:
    if not (lo <= value <= hi):
        raise ValueError(f"{name}={value} must be in [{lo}, {hi}]")


def gaussian_blur(video: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of every frame with standard deviation `sigma` pixels (0 = unchanged)."""
    check_video("video", video)
    _check_strength("sigma", sigma, 0.0)
    if sigma == 0:
        return video.clone()
    radius = max(1, int(math.ceil(3 * sigma)))
    coords = torch.arange(-radius, radius + 1, dtype=video.dtype)
    kernel = torch.exp(-(coords**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    b, c = video.shape[0], video.shape[2]
    x = rearrange(video, "b t c h w -> 1 (b t c) h w")  # every plane its own channel (grouped conv)
    n = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, rearrange(kernel, "k -> 1 1 1 k").expand(n, 1, 1, -1), groups=n)  # horizontal pass
    x = F.conv2d(x, rearrange(kernel, "k -> 1 1 k 1").expand(n, 1, -1, 1), groups=n)  # vertical, (1, n, h, w)
    return rearrange(x, "1 (b t c) h w -> b t c h w", b=b, c=c)


def add_noise(video: torch.Tensor, std: float, generator: torch.Generator) -> torch.Tensor:
    """Additive Gaussian noise with standard deviation `std` in [-1, 1] units, clamped."""
    check_video("video", video)
    _check_strength("std", std, 0.0)
    noise = torch.randn(video.shape, generator=generator, dtype=video.dtype)
    return (video + std * noise).clamp(-1.0, 1.0)


def darken(video: torch.Tensor, factor: float) -> torch.Tensor:
    """Scale brightness: pixel in [0, 1] units times (1 − factor); factor 1 is black."""
    check_video("video", video)
    _check_strength("factor", factor, 0.0, 1.0)
    return (video + 1.0) * (1.0 - factor) - 1.0


def shuffle_frames(video: torch.Tensor, fraction: float, generator: torch.Generator) -> torch.Tensor:
    """Move round(fraction · t) frames of each clip to other positions (a cyclic shift among
    randomly chosen positions, so every chosen frame really moves). The chosen positions for a
    smaller fraction are a prefix of those for a larger one, so strength is nested."""
    check_video("video", video)
    _check_strength("fraction", fraction, 0.0, 1.0)
    b, t = video.shape[:2]
    k = int(round(fraction * t))
    out = video.clone()
    if k < 2:
        return out
    for i in range(b):
        order = torch.randperm(t, generator=generator)
        chosen = order[:k]
        out[i, chosen] = video[i, torch.roll(chosen, 1)]
    return out


def swap_labels(labels: list[str], fraction: float, allowed: tuple[str, ...], generator: torch.Generator) -> list[str]:
    """Replace round(fraction · n) labels by a different allowed label (wrong requests)."""
    _check_strength("fraction", fraction, 0.0, 1.0)
    if len(allowed) < 2:
        raise ValueError(f"allowed={list(allowed)} needs at least two labels to swap between")
    for i, label in enumerate(labels):
        if label not in allowed:
            raise ValueError(f"labels[{i}]={label!r} is not one of {list(allowed)}")
    n = len(labels)
    k = int(round(fraction * n))
    order = torch.randperm(n, generator=generator).tolist()[:k]
    out = list(labels)
    for i in order:
        others = [a for a in allowed if a != labels[i]]
        out[i] = others[int(torch.randint(len(others), (1,), generator=generator))]
    return out


def jitter_boxes(boxes: list[np.ndarray], shift: float, generator: torch.Generator) -> list[np.ndarray]:
    """Shift every normalised box by `shift` times its own width/height in a random direction
    (wrong box requests)."""
    _check_strength("shift", shift, 0.0)
    out = []
    for frame_boxes in boxes:
        fb = np.asarray(frame_boxes, np.float32).reshape(-1, 4)
        angle = torch.rand(len(fb), generator=generator).numpy() * 2 * np.pi
        w, h = fb[:, 2] - fb[:, 0], fb[:, 3] - fb[:, 1]
        dx, dy = shift * w * np.cos(angle), shift * h * np.sin(angle)
        moved = fb + np.stack([dx, dy, dx, dy], axis=1)
        out.append(np.clip(moved, 0.0, 1.0).astype(np.float32))
    return out
