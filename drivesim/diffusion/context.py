"""Masked context frames: m_S, c_S = (m_S ∘ z, m_S) and its learnable downsampling.

Prediction model (paper Sec. 3.2, Eq. (3)): a binary mask m_S over the t frames of a clip
marks S given context frames (the first S); the model is conditioned on
c_S = (m_S ∘ z, m_S), the masked clean latents with the mask as one extra channel,
through a learnable downsampling into every temporal layer. S is drawn per sample from a
categorical p_S over {0, 1, 2, ...}; S = 0 (an all-zero mask) is the unconditional model
used by context guidance. Interpolation (Sec. 3.3) uses the same mechanism with the
keyframes as the given frames (`keyframe_mask`).

Context-noise augmentation (beyond the paper): the given latents may be noised to a level
tau_c with the diffusion schedule before masking (`noise_context`); the model is told tau_c.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from einops import rearrange, repeat
from torch import Tensor, nn

from drivesim.diffusion.schedule import NoiseSchedule
from drivesim.nn.resblock import zero_module
from drivesim.nn.value_checks import value_checks_on


def check_context_probs(probs: Sequence[float]) -> tuple[float, ...]:
    """p_S as a tuple; ValueError unless non-empty, non-negative and summing to 1."""
    values = tuple(float(p) for p in probs)
    if not values or any(p < 0 for p in values) or abs(sum(values) - 1.0) > 1e-6:
        raise ValueError(
            f"context_probs={list(values)} must be non-negative probabilities of S = 0, 1, ... summing to 1"
        )
    return values


def sample_num_context(batch: int, probs: Sequence[float], generator: torch.Generator) -> Tensor:
    """S ~ p_S per sample: (b,) long on the generator's device."""
    p = torch.tensor(check_context_probs(probs), dtype=torch.float64, device=generator.device)
    return torch.multinomial(p, batch, replacement=True, generator=generator)  # (b,)


def prediction_mask(num_context: Tensor, num_frames: int) -> Tensor:
    """m_S: 1 on the first S frames of each sample. num_context (b,) -> (b, t) float."""
    if num_context.ndim != 1:
        raise ValueError(f"num_context must have shape (b,), got {tuple(num_context.shape)}")
    if num_context.numel() and (int(num_context.min()) < 0 or int(num_context.max()) > num_frames):
        raise ValueError(
            f"num_context has values in [{int(num_context.min())}, {int(num_context.max())}]; "
            f"allowed 0..num_frames={num_frames}"
        )
    frames = torch.arange(num_frames, device=num_context.device)  # (t,)
    return (rearrange(frames, "t -> 1 t") < rearrange(num_context, "b -> b 1")).float()  # (b, t)


def keyframe_mask(
    batch: int, num_frames: int, spacing: int = 4, device: torch.device | str = "cpu"
) -> Tensor:
    """Interpolation mask: 1 on frames 0, spacing, 2*spacing, ... (b, t) float.

    num_frames must be k*spacing + 1 (k >= 1), so the clip starts and ends on a keyframe.
    """
    if spacing < 2 or num_frames < spacing + 1 or (num_frames - 1) % spacing:
        raise ValueError(
            f"num_frames={num_frames} with keyframe spacing={spacing}: need spacing >= 2 and "
            f"num_frames = k * spacing + 1 with k >= 1"
        )
    frames = torch.arange(num_frames, device=device)  # (t,)
    return repeat((frames % spacing == 0).float(), "t -> b t", b=batch)  # (b, t)


def check_mask(mask: Tensor, batch: int, num_frames: int) -> None:
    if mask.shape != (batch, num_frames):
        raise ValueError(
            f"context mask has shape {tuple(mask.shape)}; expected (b, t) = ({batch}, {num_frames})"
        )
    if value_checks_on() and not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError("context mask must hold only 0 and 1")


def noise_context(
    latents: Tensor, tau_c: Tensor, schedule: NoiseSchedule, generator: torch.Generator
) -> Tensor:
    """alpha_{tau_c} z + sigma_{tau_c} eps per sample (context-noise augmentation).

    latents (b, t, c, h, w); tau_c (b,) long; noise drawn from `generator`.
    """
    eps = torch.randn(latents.shape, generator=generator, device=generator.device, dtype=latents.dtype)
    return schedule.add_noise(latents, eps.to(latents.device), tau_c.to(latents.device))


def context_condition(latents: Tensor, mask: Tensor) -> Tensor:
    """c_S = (m_S ∘ z, m_S) per frame (Eq. (3)): (b, t, c, h, w), (b, t) -> (b, t, c + 1, h, w)."""
    b, t, _, h, w = latents.shape
    check_mask(mask, b, t)
    m = rearrange(mask.to(latents.dtype), "b t -> b t 1 1 1")  # b t 1 1 1
    planes = repeat(mask.to(latents.dtype), "b t -> b t 1 h w", h=h, w=w)  # b t 1 h w
    return torch.cat([latents * m, planes], dim=2)  # b t (c+1) h w


@dataclass(frozen=True)
class ContextSite:
    """Where the context feeds in: a temporal layer with `channels` at 1/2**level resolution."""

    channels: int
    level: int


class ContextEncoder(nn.Module):
    """The learnable downsampling of c_S to every temporal layer's resolution and channels.

    A 3x3 stem, then one stride-2 3x3 convolution per resolution level (the same geometry
    as the UNet's downsampling, so sizes match for odd sizes too), then per site a 1x1
    convolution to the site's channels. The 1x1 convolutions start at zero (`zero_init`): a
    new encoder adds nothing, so the video model starts as the image model. Works per frame: input
    `(b t) (c+1) h w`, outputs one `(b t) c_i h_i w_i` tensor per site.
    """

    def __init__(
        self, latent_channels: int, sites: Sequence[ContextSite], hidden_channels: int = 64, zero_init: bool = True
    ) -> None:
        super().__init__()
        if not sites:
            raise ValueError("ContextEncoder needs at least one ContextSite")
        if any(s.level < 0 or s.channels < 1 for s in sites):
            raise ValueError(f"ContextEncoder sites {list(sites)} need level >= 0 and channels >= 1")
        self.in_channels = latent_channels + 1
        self.sites = tuple(sites)
        self.num_levels = max(s.level for s in sites) + 1
        self.stem = nn.Sequential(
            nn.Conv2d(self.in_channels, hidden_channels, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(hidden_channels, hidden_channels, 3, padding=1),
            nn.SiLU(),
        )
        self.down = nn.ModuleList(
            nn.Sequential(nn.Conv2d(hidden_channels, hidden_channels, 3, stride=2, padding=1), nn.SiLU())
            for _ in range(self.num_levels - 1)
        )
        self.out = nn.ModuleList(nn.Conv2d(hidden_channels, s.channels, 1) for s in self.sites)
        if zero_init:
            zero_module(self.out)

    def forward(self, c_s: Tensor) -> list[Tensor]:
        """c_S (b t) (c+1) h w -> per-site features [(b t) c_i h_i w_i]."""
        if c_s.ndim != 4 or c_s.shape[1] != self.in_channels:
            raise ValueError(
                f"ContextEncoder expects (b t, {self.in_channels}, h, w) (latents + mask), "
                f"got {tuple(c_s.shape)}"
            )
        levels = [self.stem(c_s)]  # (b t) hidden h w
        for down in self.down:
            levels.append(down(levels[-1]))  # (b t) hidden h/2 w/2
        return [proj(levels[site.level]) for proj, site in zip(self.out, self.sites)]

