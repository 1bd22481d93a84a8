"""Spatial blocks of the latent UNet, all with one call signature.

Every block is a `UNetBlock`: ``forward(h, emb, context) -> h`` with h (b, c, H, W), emb
(b, emb_dim) the timestep+label embedding and context the box tokens (or None). Blocks
that do not need emb or context ignore them. The uniform signature lets the UNet run a
flat list of blocks and call a temporal hook after each one (see `drivesim.diffusion.unet`).
"""

from __future__ import annotations

import abc

import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from drivesim.nn.attention import CrossAttentionBlock, FeedForwardBlock, SelfAttentionBlock
from drivesim.nn.embeddings import BoxTokens
from drivesim.nn.group_norm import ContiguousGroupNorm


def zero_(module: nn.Module) -> nn.Module:
    """Zero a module's parameters in place (residual branches start as the identity)."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


def group_norm(channels: int, groups: int) -> nn.GroupNorm:
    if channels % groups:
        raise ValueError(f"GroupNorm: channels={channels} is not divisible by norm_groups={groups}")
    return ContiguousGroupNorm(groups, channels, eps=1e-6)  # NCHW inside (drivesim.nn.group_norm)


class UNetBlock(nn.Module, abc.ABC):
    """Abstract base: forward(h, emb, context) -> h."""

    @abc.abstractmethod
    def forward(self, h: Tensor, emb: Tensor, context: BoxTokens | None) -> Tensor:
        """h (b, c_in, H, W), emb (b, emb_dim), context box tokens or None -> (b, c_out, H', W')."""


class ResBlock(UNetBlock):
    """GroupNorm-SiLU-conv, then GroupNorm scaled and shifted by the embedding, SiLU-dropout-conv.

    h' = skip(h) + conv2(dropout(silu(norm2(conv1(silu(norm1(h)))) * (1 + scale) + shift)))
    """

    def __init__(
        self, in_channels: int, out_channels: int, emb_dim: int, groups: int, dropout: float, zero_init: bool
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.norm1 = group_norm(in_channels, groups)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.emb_proj = nn.Linear(emb_dim, 2 * out_channels)
        self.norm2 = group_norm(out_channels, groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        if zero_init:
            zero_(self.conv2)
        self.skip = nn.Identity() if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, h: Tensor, emb: Tensor, context: BoxTokens | None) -> Tensor:
        x = self.conv1(F.silu(self.norm1(h)))  # (b, out, H, W)
        scale, shift = rearrange(self.emb_proj(F.silu(emb)), "b (two c) -> two b c 1 1", two=2)
        x = self.norm2(x) * (1 + scale) + shift
        x = self.conv2(self.dropout(F.silu(x)))
        return self.skip(h) + x


class SpatialTransformer(UNetBlock):
    """Self-attention over the H*W positions, optional cross-attention to box tokens, feed-forward.

    GroupNorm -> 1x1 conv -> tokens -> [self-attn, cross-attn, FF] -> 1x1 conv -> + h.
    """

    def __init__(
        self, channels: int, head_dim: int, context_dim: int | None, groups: int, zero_init: bool
    ) -> None:
        super().__init__()
        if channels % head_dim:
            raise ValueError(
                f"attention: channels={channels} is not divisible by attention_head_dim={head_dim}"
            )
        heads = channels // head_dim
        self.channels = channels
        self.norm = group_norm(channels, groups)
        self.proj_in = nn.Conv2d(channels, channels, 1)
        self.self_attn = SelfAttentionBlock(channels, heads, head_dim)
        self.cross_attn = (
            CrossAttentionBlock(channels, context_dim, heads, head_dim) if context_dim is not None else None
        )
        self.ff = FeedForwardBlock(channels)
        self.proj_out = nn.Conv2d(channels, channels, 1)
        if zero_init:
            zero_(self.proj_out)

    def forward(self, h: Tensor, emb: Tensor, context: BoxTokens | None) -> Tensor:
        height, width = h.shape[-2:]
        x = rearrange(self.proj_in(self.norm(h)), "b c h w -> b (h w) c")  # (b, h*w, c)
        x = self.self_attn(x)
        if self.cross_attn is not None:
            if context is None:
                raise ValueError("SpatialTransformer with cross-attention needs box tokens as context")
            x = self.cross_attn(x, context.tokens.to(x.dtype), key_padding_mask=context.mask)
        x = self.ff(x)
        x = rearrange(x, "b (h w) c -> b c h w", h=height, w=width)  # (b, c, h, w)
        return h + self.proj_out(x)


class Downsample(UNetBlock):
    """Stride-2 3x3 convolution: (b, c, H, W) -> (b, c, H/2, W/2)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, h: Tensor, emb: Tensor, context: BoxTokens | None) -> Tensor:
        return self.conv(h)


class Upsample(UNetBlock):
    """Nearest-neighbour x2 then 3x3 convolution: (b, c, H, W) -> (b, c, 2H, 2W)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, h: Tensor, emb: Tensor, context: BoxTokens | None) -> Tensor:
        return self.conv(F.interpolate(h, scale_factor=2.0, mode="nearest"))
