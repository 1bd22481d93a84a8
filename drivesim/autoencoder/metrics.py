"""Reconstruction metrics on images in [-1, 1]: PSNR, SSIM, temporal flicker."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange


def psnr(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of (n, c, H, W) images in [-1, 1] (peak-to-peak range 2): shape (n,)."""
    mse = rearrange((x_hat.clamp(-1, 1) - x).pow(2), "n c h w -> n (c h w)").mean(dim=1)
    return 10.0 * torch.log10(4.0 / mse.clamp_min(1e-12))


def _gaussian_window(size: int, sigma: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    coords = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2.0
    g = torch.exp(-(coords**2) / (2.0 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]  # size size


def ssim(x_hat: torch.Tensor, x: torch.Tensor, window: int = 7, sigma: float = 1.5) -> torch.Tensor:
    """Per-image SSIM (Wang et al. 2004, Gaussian window, on [0, 1] intensities, averaged over
    channels and valid positions) of (n, c, H, W) images in [-1, 1]: shape (n,)."""
    a = (x_hat.clamp(-1, 1) + 1.0) / 2.0
    b = (x + 1.0) / 2.0
    c = a.shape[1]
    kernel = _gaussian_window(window, sigma, a.device, a.dtype)[None, None].repeat(c, 1, 1, 1)  # c 1 k k

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, kernel, groups=c)  # n c H-k+1 W-k+1

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return rearrange(s, "n c h w -> n (c h w)").mean(dim=1)


def flicker(video_hat: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
    """Temporal flicker of (b, t, c, H, W) reconstructions in [-1, 1]: mean over pixels and frame
    pairs of |(x_hat[t+1] - x_hat[t]) - (x[t+1] - x[t])|, on a 0..255 scale; shape (b,)."""
    if video.ndim != 5 or video.shape[1] < 2:
        raise ValueError(f"flicker needs videos (b, t>=2, c, h, w), got {tuple(video.shape)}")
    d_hat = video_hat.clamp(-1, 1)[:, 1:] - video_hat.clamp(-1, 1)[:, :-1]
    d = video[:, 1:] - video[:, :-1]
    return rearrange((d_hat - d).abs() * 127.5, "b t c h w -> b (t c h w)").mean(dim=1)
