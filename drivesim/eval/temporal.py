"""Temporal consistency: flicker against real video, and PSNR / SSIM against a ground-truth future.

All quantities are in [0, 1] pixel units (videos in [-1, 1] are halved).
- change: mean |x_{t+1} − x_t| per pixel, how much the picture moves per frame;
- jitter: mean |x_{t+1} − 2 x_t + x_{t−1}|, the frame-to-frame acceleration that
  flicker and popping produce but smooth motion does not;
- flicker: |change_gen − change_real| + |jitter_gen − jitter_real| (unpaired sets),
  and, when generated and real are paired clip by clip, the mean |Δgen − Δreal|.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange

from drivesim.eval.checks import check_same_shape, check_video


@dataclass(frozen=True)
class MotionStats:
    change: float
    jitter: float


@dataclass(frozen=True)
class FlickerResult:
    generated: MotionStats
    real: MotionStats
    flicker: float
    paired_delta_error: float | None


def motion_stats(video: torch.Tensor, name: str = "video") -> MotionStats:
    """Mean first and second temporal differences of a `b t c h w` video (t >= 3 for jitter)."""
    check_video(name, video)
    if video.shape[1] < 2:
        raise ValueError(f"{name} needs at least 2 frames for temporal metrics, got t={video.shape[1]}")
    x = video.double() * 0.5
    first = x[:, 1:] - x[:, :-1]  # (b, t-1, c, h, w)
    change = float(first.abs().mean())
    jitter = float((first[:, 1:] - first[:, :-1]).abs().mean()) if video.shape[1] >= 3 else 0.0
    return MotionStats(change=change, jitter=jitter)


def flicker(generated: torch.Tensor, real: torch.Tensor, paired: bool = False) -> FlickerResult:
    """Flicker of `generated` relative to `real` (both `b t c h w`).

    paired=True means clip i of `generated` should reproduce clip i of `real` (same world
    state and actions); then shapes must match and the per-pixel delta error is reported.
    """
    gen = motion_stats(generated, "generated")
    ref = motion_stats(real, "real")
    delta_error = None
    if paired:
        check_same_shape("generated", generated, "real", real)
        d_gen = generated[:, 1:].double() - generated[:, :-1].double()  # (b, t-1, c, h, w)
        d_real = real[:, 1:].double() - real[:, :-1].double()  # (b, t-1, c, h, w)
        delta_error = float((d_gen - d_real).abs().mean() * 0.5)
    value = abs(gen.change - ref.change) + abs(gen.jitter - ref.jitter)
    return FlickerResult(generated=gen, real=ref, flicker=value, paired_delta_error=delta_error)


def psnr(generated: torch.Tensor, target: torch.Tensor, max_db: float = 100.0) -> float:
    """Mean per-frame PSNR in dB between paired `b t c h w` videos (capped at `max_db`)."""
    check_video("generated", generated)
    check_video("target", target)
    check_same_shape("generated", generated, "target", target)
    diff = (generated.float() - target.float()) * 0.5
    mse = rearrange(diff**2, "b t c h w -> (b t) (c h w)").double().mean(dim=1)  # (b*t,)
    values = 10.0 * torch.log10(1.0 / mse.clamp_min(10 ** (-max_db / 10.0)))
    return float(values.mean())


def _gaussian_kernel(size: int, sigma: float) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float32) - (size - 1) / 2.0
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()  # (size,)


def ssim(generated: torch.Tensor, target: torch.Tensor, window: int = 11, sigma: float = 1.5) -> float:
    """Mean SSIM (Wang et al. 2004, Gaussian window, per channel) over all frames of paired videos.
    The Gaussian filter is applied separably in float32; the mean is accumulated in float64."""
    check_video("generated", generated)
    check_video("target", target)
    check_same_shape("generated", generated, "target", target)
    size = min(window, generated.shape[-1], generated.shape[-2])
    if size % 2 == 0:
        size -= 1
    g = _gaussian_kernel(size, sigma * size / window)
    # every plane is its own channel of one grouped convolution (much faster on CPU than a batch)
    x = rearrange(generated.float() * 0.5 + 0.5, "b t c h w -> 1 (b t c) h w")
    y = rearrange(target.float() * 0.5 + 0.5, "b t c h w -> 1 (b t c) h w")
    n = x.shape[1]
    row = rearrange(g, "k -> 1 1 1 k").expand(n, 1, 1, size)
    col = rearrange(g, "k -> 1 1 k 1").expand(n, 1, size, 1)

    def blur(z: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(z, row, groups=n), col, groups=n)  # (1, n, h-k+1, w-k+1)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    value = float(ssim_map.double().mean())
    if math.isnan(value):
        raise ValueError("SSIM is NaN; check the inputs for constant or invalid frames")
    return value
