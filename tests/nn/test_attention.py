import math

import pytest
import torch
from einops import rearrange

from drivesim.nn.attention import (
    CrossAttentionBlock,
    FeedForwardBlock,
    MultiHeadAttention,
    SelfAttentionBlock,
)


def _reference(attn: MultiHeadAttention, x, ctx, mask):
    h = attn.heads
    q = rearrange(attn.to_q(x), "b n (h d) -> b h n d", h=h)
    k = rearrange(attn.to_k(ctx), "b m (h d) -> b h m d", h=h)
    v = rearrange(attn.to_v(ctx), "b m (h d) -> b h m d", h=h)
    logits = torch.einsum("bhnd,bhmd->bhnm", q, k) / math.sqrt(q.shape[-1])
    logits = logits.masked_fill(~rearrange(mask, "b m -> b 1 1 m"), float("-inf"))
    out = torch.einsum("bhnm,bhmd->bhnd", logits.softmax(-1), v)
    return attn.to_out(rearrange(out, "b h n d -> b n (h d)"))


def test_cross_attention_matches_reference_and_shapes():
    torch.manual_seed(0)
    attn = MultiHeadAttention(16, context_dim=8, heads=2, head_dim=4).double()
    x, ctx = torch.randn(3, 5, 16, dtype=torch.float64), torch.randn(3, 7, 8, dtype=torch.float64)
    mask = torch.rand(3, 7) > 0.4
    mask[:, 0] = True
    out = attn(x, ctx, mask)
    assert out.shape == (3, 5, 16)
    torch.testing.assert_close(out, _reference(attn, x, ctx, mask))


def test_padding_keys_do_not_change_output():
    torch.manual_seed(1)
    block = CrossAttentionBlock(16, 8, heads=4, head_dim=4)
    x, ctx = torch.randn(2, 6, 16), torch.randn(2, 3, 8)
    mask = torch.ones(2, 3, dtype=torch.bool)
    base = block(x, ctx, mask)
    padded_ctx = torch.cat([ctx, 100 * torch.randn(2, 4, 8)], dim=1)
    padded_mask = torch.cat([mask, torch.zeros(2, 4, dtype=torch.bool)], dim=1)
    torch.testing.assert_close(block(x, padded_ctx, padded_mask), base, atol=1e-6, rtol=1e-5)


def test_self_attention_is_permutation_equivariant():
    torch.manual_seed(2)
    block = SelfAttentionBlock(12, heads=3, head_dim=4)
    x = torch.randn(2, 9, 12)
    perm = torch.randperm(9)
    torch.testing.assert_close(block(x[:, perm]), block(x)[:, perm], atol=1e-6, rtol=1e-5)


def test_feed_forward_shape_and_residual():
    ff = FeedForwardBlock(8, mult=2)
    x = torch.randn(2, 3, 8)
    assert ff(x).shape == x.shape
    torch.nn.init.zeros_(ff.proj_out.weight)
    torch.nn.init.zeros_(ff.proj_out.bias)
    torch.testing.assert_close(ff(x), x)


def test_bad_masks_raise():
    attn = MultiHeadAttention(8, heads=2, head_dim=4)
    x = torch.randn(2, 3, 8)
    with pytest.raises(ValueError, match="no key"):
        attn(x, key_padding_mask=torch.tensor([[True, False, False], [False, False, False]]))
    with pytest.raises(ValueError, match="bool"):
        attn(x, key_padding_mask=torch.ones(2, 3))
    with pytest.raises(ValueError, match="shape"):
        attn(x, key_padding_mask=torch.ones(2, 4, dtype=torch.bool))
