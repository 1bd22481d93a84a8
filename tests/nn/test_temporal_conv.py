import pytest
import torch
from einops import rearrange

from drivesim.nn.temporal_conv import TemporalConvBlock, conv3d_inference


def _randomised(block: TemporalConvBlock) -> TemporalConvBlock:
    torch.manual_seed(1)
    for p in block.parameters():
        torch.nn.init.normal_(p, std=0.2)
    return block


def test_new_block_is_identity():
    torch.manual_seed(0)
    x = torch.randn(2 * 5, 8, 4, 6)
    block = TemporalConvBlock(8)
    assert torch.equal(block(x, num_frames=5), x)


def test_frames_mix_only_within_receptive_radius():
    torch.manual_seed(0)
    block = _randomised(TemporalConvBlock(8, kernel_size=(3, 1, 1)))
    assert block.receptive_radius == 2
    t = 9
    x = torch.randn(t, 8, 3, 3)
    base = block(x, num_frames=t)
    x2 = x.clone()
    x2[4] += torch.randn(8, 3, 3)
    diff = (block(x2, num_frames=t) - base).flatten(1).abs().amax(dim=1)
    changed = (diff > 1e-6).nonzero().flatten().tolist()
    assert changed == [2, 3, 4, 5, 6]


def test_clips_in_a_batch_do_not_mix():
    block = _randomised(TemporalConvBlock(4))
    x = torch.randn(2 * 3, 4, 4, 4)
    out = block(x, num_frames=3)
    solo = block(x[:3], num_frames=3)
    assert torch.allclose(out[:3], solo, atol=1e-5)
    assert rearrange(out, "(b t) c h w -> b t c h w", t=3).shape == (2, 3, 4, 4, 4)


def test_embedding_and_bad_input():
    block = _randomised(TemporalConvBlock(4, emb_channels=6))
    x = torch.randn(4, 4, 2, 2)
    a = block(x, 2, emb=torch.zeros(4, 6))
    b = block(x, 2, emb=torch.ones(4, 6))
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="num_frames"):
        block(x, 3, emb=torch.zeros(4, 6))
    with pytest.raises(ValueError, match="kernel_size"):
        TemporalConvBlock(4, kernel_size=(2, 3, 3))


@pytest.mark.parametrize("kernel", [(3, 3, 3), (3, 1, 1), (1, 3, 3)])
@pytest.mark.parametrize("batch", [1, 3])
def test_conv3d_inference_equals_the_module(kernel, batch):
    torch.manual_seed(0)
    conv = torch.nn.Conv3d(6, 5, kernel, padding=tuple(k // 2 for k in kernel))
    x = torch.randn(batch, 6, 4, 5, 7)
    ref = conv(x)
    frames = rearrange(x, "b c t h w -> (b t) c h w")
    view = rearrange(frames, "(b t) c h w -> b c t h w", b=batch)  # not contiguous, as inside the block
    with torch.no_grad():
        fast = conv3d_inference(conv, view)
    assert fast.shape == ref.shape
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)


def test_conv3d_inference_keeps_autograd_and_autocast():
    torch.manual_seed(0)
    conv = torch.nn.Conv3d(4, 4, 3, padding=1)
    x = torch.randn(1, 4, 3, 5, 5, requires_grad=True)
    y = conv3d_inference(conv, x)
    y.sum().backward()  # the module's own path: gradients reach input and weights
    assert x.grad is not None and conv.weight.grad is not None
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert conv3d_inference(conv, x).dtype == torch.bfloat16  # autocast decides the dtype, as conv(x)


def test_block_output_is_the_same_with_and_without_grad():
    block = _randomised(TemporalConvBlock(8))
    x = torch.randn(1 * 4, 8, 5, 6)
    with torch.no_grad():
        fast = block(x, num_frames=4)
    torch.testing.assert_close(fast, block(x, num_frames=4).detach(), atol=1e-5, rtol=1e-5)


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="needs oneDNN")
def test_conv3d_inference_runs_onednn_for_one_clip():
    conv = torch.nn.Conv3d(4, 4, 3, padding=1)
    x = torch.randn(1, 4, 3, 5, 5)
    with torch.no_grad(), torch.profiler.profile() as prof:
        conv3d_inference(conv, x)
    ops = {e.key for e in prof.key_averages()}
    assert "aten::mkldnn_convolution" in ops and "aten::slow_conv3d_forward" not in ops


def test_block_compiles_in_inference():
    # torch.compile traces with fake tensors, which oneDNN's direct op does not support: the block
    # must take the module's path while compiling.
    block = _randomised(TemporalConvBlock(8))
    x = torch.randn(1 * 3, 8, 4, 5)
    with torch.no_grad():
        compiled = torch.compile(block, backend="eager", fullgraph=True)
        torch.testing.assert_close(compiled(x, num_frames=3), block(x, num_frames=3))
