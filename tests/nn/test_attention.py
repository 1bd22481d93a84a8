import math

import pytest
import torch
from einops import rearrange

from drivesim.nn.attention import (
    CrossAttentionBlock,
    FeedForwardBlock,
    MultiHeadAttention,
    SelfAttentionBlock,
    attend,
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


@pytest.mark.parametrize("keys", [3, 9, 16, 40])
def test_attend_in_bfloat16_matches_the_fused_kernel_with_and_without_a_mask(keys):
    """Short sequences in bfloat16 on a CPU take the explicit path (faster there), long ones the fused kernel. Either
    way the result is softmax(q k^T / sqrt(d)) v to bfloat16 rounding, and masked keys get no weight."""
    g = torch.Generator().manual_seed(keys)
    q, k, v = (torch.randn(64, 2, 5 if i == 0 else keys, 32, generator=g) for i in range(3))
    mask = torch.rand(64, 1, 1, keys, generator=g) > 0.3
    mask[..., 0] = True
    for m in (None, mask):
        want = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=m)
        got = attend(q.bfloat16(), k.bfloat16(), v.bfloat16(), m)
        assert got.dtype == torch.bfloat16
        assert (got.float() - want).abs().mean() < 0.01
    k2, v2 = k.clone(), v.clone()
    k2[..., 1:, :] = torch.where(mask[..., 1:].transpose(-1, -2), k2[..., 1:, :], 100.0)  # masked keys: huge
    v2[..., 1:, :] = torch.where(mask[..., 1:].transpose(-1, -2), v2[..., 1:, :], 1e4)
    torch.testing.assert_close(attend(q.bfloat16(), k2.bfloat16(), v2.bfloat16(), mask),
                               attend(q.bfloat16(), k.bfloat16(), v.bfloat16(), mask))
