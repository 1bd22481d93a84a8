"""Frame-independent latent perturbations: what a temporal decoder must hide in generated video.

Video LDM Sec. 3.1.1 fine-tunes the decoder on video because latents that a diffusion model
samples are not consistent from frame to frame; encoded real clips are, so a decoder fine-tuned
on reconstructions alone never sees the inconsistency it is there for. This module adds it: each
frame of a latent clip gets its own noise, scaled per clip by a level drawn from U[0, max_std]
(in units of the *scaled*, unit-variance latents diffusion works in), while the training target
stays the clean clip. With `lowres_factor` > 1 the noise is drawn on a grid that much coarser and
upsampled bilinearly, so it changes whole regions rather than single latent pixels (sampled
details that differ between frames are spatially correlated, not white).

Used by the temporal-decoder stage (`latent_noise.*` in conf/train/temporal_decoder.yaml) and by
`benchmarks/decoder_noise.py`, which scores decoders on held-out clips perturbed this way.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange


@dataclass
class LatentNoiseConfig:
    max_std: float = 0.0  # per-clip level ~ U[0, max_std], scaled-latent units; 0 = off
    lowres_factor: int = 1  # noise drawn on an (h / f, w / f) grid, upsampled bilinearly
    prob: float = 1.0  # fraction of training clips perturbed (the rest stay clean)

    def __post_init__(self) -> None:
        if not self.max_std >= 0.0:
            raise ValueError(f"LatentNoiseConfig.max_std={self.max_std} must be >= 0")
        if self.lowres_factor < 1:
            raise ValueError(f"LatentNoiseConfig.lowres_factor={self.lowres_factor} must be >= 1")
        if not 0.0 <= self.prob <= 1.0:
            raise ValueError(f"LatentNoiseConfig.prob={self.prob} must be in [0, 1]")

    @property
    def enabled(self) -> bool:
        return self.max_std > 0.0 and self.prob > 0.0


def frame_noise(shape: torch.Size | tuple[int, ...], lowres_factor: int, generator: torch.Generator) -> torch.Tensor:
    """Unit-variance noise (b, t, c, h, w), independent per frame; spatially smooth when
    `lowres_factor` > 1 (re-normalised to unit variance after the upsampling)."""
    b, t, c, h, w = shape
    if lowres_factor == 1:
        return torch.randn(b, t, c, h, w, generator=generator)
    gh, gw = max(1, -(-h // lowres_factor)), max(1, -(-w // lowres_factor))
    coarse = torch.randn(b * t, c, gh, gw, generator=generator)
    fine = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    fine = fine / fine.std().clamp_min(1e-6)
    return rearrange(fine, "(b t) c h w -> b t c h w", b=b)


def perturb_latents(
    z: torch.Tensor,
    latent_scale: float,
    cfg: LatentNoiseConfig,
    generator: torch.Generator,
    level: torch.Tensor | None = None,
) -> torch.Tensor:
    """z: (b, t, c, h, w) *unscaled* latents -> z plus frame-independent noise.

    `level` (b,) fixes each clip's noise level in scaled units (evaluation); by default it is
    drawn from U[0, max_std], and a clip is left clean with probability 1 - prob."""
    if z.ndim != 5:
        raise ValueError(f"perturb_latents expects (b, t, c, h, w) latents, got shape {tuple(z.shape)}")
    b = z.shape[0]
    if level is None:
        if not cfg.enabled:
            return z
        level = cfg.max_std * torch.rand(b, generator=generator)
        level = torch.where(torch.rand(b, generator=generator) < cfg.prob, level, torch.zeros_like(level))
    elif level.shape != (b,):
        raise ValueError(f"level has shape {tuple(level.shape)}; expected ({b},), one per clip")
    noise = frame_noise(z.shape, cfg.lowres_factor, generator).to(z.dtype)
    std = rearrange(level.to(z.dtype) / float(latent_scale), "b -> b 1 1 1 1")
    return z + std * noise
