"""Convolutional residual blocks (GroupNorm + SiLU + 3x3 conv) and 2x resampling.

Shared by the autoencoder, the diffusion UNets and the upsampler. Spatial layers see
images or frames flattened into the batch: `(b t) c h w`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from drivesim.nn.group_norm import ContiguousGroupNorm


def num_groups_for(channels: int, max_groups: int = 32) -> int:
    """The largest group count <= max_groups that divides `channels`."""
    if channels < 1:
        raise ValueError(f"channels={channels} must be >= 1")
    for groups in range(min(max_groups, channels), 0, -1):
        if channels % groups == 0:
            return groups
    return 1


def group_norm(channels: int, max_groups: int = 32) -> nn.GroupNorm:
    """GroupNorm with affine parameters and eps=1e-6 (normalises each sample on its own; NCHW inside,
    `drivesim.nn.group_norm`)."""
    return ContiguousGroupNorm(num_groups_for(channels, max_groups), channels, eps=1e-6, affine=True)


def zero_module(module: nn.Module) -> nn.Module:
    """Zero every parameter of `module` (used so a new residual branch starts as identity)."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResBlock(nn.Module):
    """x + conv(silu(norm(conv(silu(norm(x)))))), with a 1x1 skip when channels change.

    With `emb_channels`, an embedding (b, emb_channels) modulates the second norm by a
    learned scale and shift (FiLM). `zero_init_last` makes the block start as identity.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int | None = None,
        dropout: float = 0.0,
        emb_channels: int | None = None,
        zero_init_last: bool = False,
    ) -> None:
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout={dropout} must be in [0, 1)")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.norm1 = group_norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.emb_proj = nn.Linear(emb_channels, 2 * out_channels) if emb_channels else None
        self.norm2 = group_norm(out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        if zero_init_last:
            zero_module(self.conv2)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # b c_out h w
        h = self.norm2(h)
        if self.emb_proj is not None:
            if emb is None:
                raise ValueError("ResBlock built with emb_channels needs an `emb` tensor (b, emb_channels)")
            scale, shift = self.emb_proj(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
            h = h * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class Downsample(nn.Module):
    """Halve height and width with a stride-2 3x3 convolution."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)  # b c h/2 w/2


class Upsample(nn.Module):
    """Double height and width: nearest-neighbour interpolation then a 3x3 convolution."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")  # b c 2h 2w
        return self.conv(x)
