"""Temporal self-attention over frames (a temporal layer l_phi of the Video LDM).

Input and output are frames flattened into the batch, `(b t) c h w`, as the spatial
layers of the image UNet see them. Inside, every spatial position becomes one sequence
of `t` tokens (`(b t) c h w -> (b h w) t c`), so attention mixes frames and never mixes
positions. Frame positions enter as sinusoidal features (paper Sec. 3.1) through a small
MLP; an optional per-frame embedding (diffusion time, ego action, ...) is added the same
way. Both are added to the normalised tokens inside the residual branch, and the output
projections of the attention and the feed-forward start at zero: a new block is the
identity, so a model with blocks inserted starts out equal to the image model.

Normalisation is LayerNorm per token, so a frame's output depends on other frames only
through attention.
"""

from __future__ import annotations

import torch
from einops import rearrange, repeat
from torch import Tensor, nn

from drivesim.nn.attention import FeedForwardBlock, MultiHeadAttention
from drivesim.nn.embeddings import sinusoidal_embedding
from drivesim.nn.resblock import zero_module


def default_frame_positions(batch: int, num_frames: int, device: torch.device) -> Tensor:
    """Frame indices 0..t-1 for every sample: (b, t) float."""
    return repeat(torch.arange(num_frames, dtype=torch.float32, device=device), "t -> b t", b=batch)


class TemporalAttentionBlock(nn.Module):
    """x + Attn_t(LN(x) + pos + emb), then x + FF(LN(x)), attention over the frame axis.

    channels: feature channels c of the input `(b t) c h w`.
    emb_dim: width of the optional per-frame embedding `(b t, emb_dim)`; None for none.
    position_dim: even number of sinusoidal frequencies for the frame position.
    """

    def __init__(
        self,
        channels: int,
        heads: int = 4,
        head_dim: int = 32,
        emb_dim: int | None = None,
        position_dim: int = 64,
        ff_mult: int = 2,
        zero_init: bool = True,
    ) -> None:
        super().__init__()
        if channels < 1:
            raise ValueError(f"TemporalAttentionBlock channels={channels} must be >= 1")
        if position_dim < 2 or position_dim % 2:
            raise ValueError(f"TemporalAttentionBlock position_dim={position_dim} must be even and >= 2")
        self.channels = channels
        self.position_dim = position_dim
        self.position_mlp = nn.Sequential(
            nn.Linear(position_dim, channels), nn.SiLU(), nn.Linear(channels, channels)
        )
        self.emb_proj = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, channels)) if emb_dim else None
        self.norm = nn.LayerNorm(channels)
        self.attn = MultiHeadAttention(channels, None, heads, head_dim)
        self.ff = FeedForwardBlock(channels, mult=ff_mult)
        if zero_init:
            zero_module(self.attn.to_out)
            zero_module(self.ff.proj_out)

    def forward(
        self,
        x: Tensor,
        num_frames: int,
        emb: Tensor | None = None,
        frame_positions: Tensor | None = None,
    ) -> Tensor:
        """x (b t) c h w; emb (b t, emb_dim) or None; frame_positions (b, t) or None (0..t-1)."""
        if num_frames < 1 or x.shape[0] % num_frames != 0:
            raise ValueError(
                f"num_frames={num_frames} must be >= 1 and divide the flattened batch size {x.shape[0]}"
            )
        if x.shape[1] != self.channels:
            raise ValueError(f"TemporalAttentionBlock expects {self.channels} channels, got {x.shape[1]}")
        b = x.shape[0] // num_frames
        height, width = x.shape[-2:]
        if frame_positions is None:
            frame_positions = default_frame_positions(b, num_frames, x.device)
        if frame_positions.shape != (b, num_frames):
            raise ValueError(
                f"frame_positions has shape {tuple(frame_positions.shape)}; "
                f"expected (b, t) = ({b}, {num_frames})"
            )
        pos = sinusoidal_embedding(rearrange(frame_positions, "b t -> (b t)"), self.position_dim)  # (b t) p
        frame_feat = self.position_mlp(pos.to(x.dtype))  # (b t) c
        if self.emb_proj is not None:
            if emb is None:
                raise ValueError("TemporalAttentionBlock with emb_dim needs `emb` of shape (b t, emb_dim)")
            if emb.shape[0] != x.shape[0]:
                raise ValueError(f"emb has {emb.shape[0]} rows; expected (b t) = {x.shape[0]}")
            frame_feat = frame_feat + self.emb_proj(emb.to(x.dtype))  # (b t) c
        frame_feat = repeat(frame_feat, "(b t) c -> (b h w) t c", t=num_frames, h=height, w=width)
        tokens = rearrange(x, "(b t) c h w -> (b h w) t c", t=num_frames)
        tokens = tokens + self.attn(self.norm(tokens) + frame_feat)  # (b h w) t c
        tokens = self.ff(tokens)  # (b h w) t c
        return rearrange(tokens, "(b h w) t c -> (b t) c h w", b=b, h=height, w=width)
