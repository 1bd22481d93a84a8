"""Multi-head attention and pre-norm transformer blocks over token sequences (b, n, d).

`MultiHeadAttention` is self-attention when no context is given and cross-attention
otherwise, computed by `attend`: `torch.nn.functional.scaled_dot_product_attention`, or explicit matmuls
and a softmax for bfloat16 on a CPU over short sequences (temporal attention over frames), where PyTorch's CPU
kernel is 2-3x slower (`benchmarks/attention_speed.py`). A
``key_padding_mask`` (b, m) bool marks the context tokens to attend to (True = attend,
False = padding); every row must keep at least one key. The residual blocks
(`SelfAttentionBlock`, `CrossAttentionBlock`, `FeedForwardBlock`) are shared by the
spatial transformer of the UNet and by temporal attention over frames.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from drivesim.nn.value_checks import value_checks_on

# Queries and keys both up to this many take the explicit path in bfloat16 on a CPU; with longer sequences
# (spatial self-attention, 128 queries over 16 boxes) the fused kernel is as fast or faster.
SHORT_SEQUENCE = 16


def explicit_attention(q: Tensor, k: Tensor, v: Tensor, attn_mask: Tensor | None = None) -> Tensor:
    """softmax(q k^T / sqrt(d)) v with two matmuls and a softmax; shapes as `attend`."""
    scores = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5  # (b, h, n, m)
    if attn_mask is not None:
        scores = scores.masked_fill(~attn_mask, float("-inf"))
    return scores.softmax(dim=-1) @ v


def attend(q: Tensor, k: Tensor, v: Tensor, attn_mask: Tensor | None = None) -> Tensor:
    """softmax(q k^T / sqrt(d)) v over (b, h, n, d) queries and (b, h, m, d) keys / values -> (b, h, n, d);
    attn_mask (b, 1, 1, m) bool, True = attend. Equal to `F.scaled_dot_product_attention` up to rounding."""
    short = q.shape[-2] <= SHORT_SEQUENCE and k.shape[-2] <= SHORT_SEQUENCE
    if short and q.dtype == torch.bfloat16 and q.device.type == "cpu":
        return explicit_attention(q, k, v, attn_mask)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)


class MultiHeadAttention(nn.Module):
    """softmax(q k^T / sqrt(d)) v with `heads` heads of size `head_dim`."""

    def __init__(
        self, query_dim: int, context_dim: int | None = None, heads: int = 4, head_dim: int = 32
    ) -> None:
        super().__init__()
        if heads < 1 or head_dim < 1:
            raise ValueError(f"attention heads={heads} and head_dim={head_dim} must be >= 1")
        inner = heads * head_dim
        kv_dim = context_dim if context_dim is not None else query_dim
        self.heads = heads
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_k = nn.Linear(kv_dim, inner, bias=False)
        self.to_v = nn.Linear(kv_dim, inner, bias=False)
        self.to_out = nn.Linear(inner, query_dim)

    def forward(
        self, x: Tensor, context: Tensor | None = None, key_padding_mask: Tensor | None = None
    ) -> Tensor:
        """x (b, n, query_dim), context (b, m, context_dim) or None, mask (b, m) -> (b, n, query_dim)."""
        ctx = x if context is None else context
        q = rearrange(self.to_q(x), "b n (h d) -> b h n d", h=self.heads)  # (b, h, n, d)
        k = rearrange(self.to_k(ctx), "b m (h d) -> b h m d", h=self.heads)  # (b, h, m, d)
        v = rearrange(self.to_v(ctx), "b m (h d) -> b h m d", h=self.heads)  # (b, h, m, d)
        attn_mask = None
        if key_padding_mask is not None:
            if key_padding_mask.shape != (ctx.shape[0], ctx.shape[1]) or key_padding_mask.dtype != torch.bool:
                raise ValueError(
                    f"key_padding_mask must be bool of shape {(ctx.shape[0], ctx.shape[1])}, "
                    f"got {key_padding_mask.dtype} {tuple(key_padding_mask.shape)}"
                )
            if value_checks_on() and not bool(key_padding_mask.any(dim=1).all()):
                raise ValueError("key_padding_mask has a row with no key to attend to (all False)")
            attn_mask = rearrange(key_padding_mask, "b m -> b 1 1 m")  # (b, 1, 1, m)
        out = attend(q, k, v, attn_mask)  # (b, h, n, d)
        return self.to_out(rearrange(out, "b h n d -> b n (h d)"))  # (b, n, query_dim)


class SelfAttentionBlock(nn.Module):
    """x + Attn(LayerNorm(x))."""

    def __init__(self, dim: int, heads: int, head_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, None, heads, head_dim)

    def forward(self, x: Tensor, key_padding_mask: Tensor | None = None) -> Tensor:
        return x + self.attn(self.norm(x), key_padding_mask=key_padding_mask)


class CrossAttentionBlock(nn.Module):
    """x + Attn(LayerNorm(x), context) with an optional key padding mask over the context."""

    def __init__(self, dim: int, context_dim: int, heads: int, head_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, context_dim, heads, head_dim)

    def forward(self, x: Tensor, context: Tensor, key_padding_mask: Tensor | None = None) -> Tensor:
        return x + self.attn(self.norm(x), context=context, key_padding_mask=key_padding_mask)


class FeedForwardBlock(nn.Module):
    """x + W2 GEGLU(W1 LayerNorm(x)) with hidden width `mult * dim`."""

    def __init__(self, dim: int, mult: int = 4) -> None:
        super().__init__()
        hidden = mult * dim
        self.norm = nn.LayerNorm(dim)
        self.proj_in = nn.Linear(dim, 2 * hidden)
        self.proj_out = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        value, gate = self.proj_in(self.norm(x)).chunk(2, dim=-1)
        return x + self.proj_out(value * F.gelu(gate))
