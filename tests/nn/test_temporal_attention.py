import pytest
import torch

from drivesim.nn.temporal_attention import TemporalAttentionBlock

pytestmark = pytest.mark.usefixtures("one_thread")



def _randomised(block: TemporalAttentionBlock, seed: int = 1) -> TemporalAttentionBlock:
    torch.manual_seed(seed)
    for p in block.parameters():
        torch.nn.init.normal_(p, std=0.2)
    return block


def test_new_block_is_identity():
    torch.manual_seed(0)
    x = torch.randn(2 * 5, 16, 3, 4)
    block = TemporalAttentionBlock(16, heads=2, head_dim=8, emb_dim=12, position_dim=8)
    assert torch.equal(block(x, num_frames=5, emb=torch.randn(10, 12)), x)


@torch.no_grad()
def test_frames_mix_but_positions_do_not():
    block = _randomised(TemporalAttentionBlock(8, heads=2, head_dim=4, position_dim=8))
    t = 5
    x = torch.randn(t, 8, 3, 3)
    base = block(x, num_frames=t)
    assert base.shape == x.shape
    x2 = x.clone()
    x2[2, :, 1, 1] += torch.randn(8)  # one position of frame 2
    diff = (block(x2, num_frames=t) - base).abs().amax(dim=1)  # (t, h, w)
    assert bool((diff[:, 1, 1] > 1e-6).all())  # every frame at that position changes
    diff[:, 1, 1] = 0
    assert float(diff.max()) == 0.0  # no other position does


def test_clips_in_a_batch_do_not_mix():
    block = _randomised(TemporalAttentionBlock(8, heads=2, head_dim=4, position_dim=8))
    x = torch.randn(2 * 4, 8, 2, 2)
    out = block(x, num_frames=4)
    torch.testing.assert_close(out[:4], block(x[:4], num_frames=4), rtol=1e-5, atol=1e-6)


def test_frame_positions_and_embedding_matter():
    block = _randomised(TemporalAttentionBlock(8, heads=2, head_dim=4, emb_dim=6, position_dim=8))
    x, emb = torch.randn(4, 8, 2, 2), torch.randn(4, 6)
    base = block(x, 4, emb)
    shifted = block(x, 4, emb, frame_positions=torch.arange(4.0).reshape(1, 4) + 3)
    assert not torch.allclose(base, shifted, atol=1e-5)
    assert not torch.allclose(base, block(x, 4, emb + 1.0), atol=1e-5)


def test_bad_inputs_raise():
    block = TemporalAttentionBlock(8, heads=2, head_dim=4, emb_dim=6, position_dim=8)
    x = torch.randn(6, 8, 2, 2)
    with pytest.raises(ValueError, match="num_frames"):
        block(x, num_frames=4, emb=torch.randn(6, 6))
    with pytest.raises(ValueError, match="emb"):
        block(x, num_frames=3)
    with pytest.raises(ValueError, match="frame_positions"):
        block(x, 3, torch.randn(6, 6), frame_positions=torch.zeros(2, 4))
    with pytest.raises(ValueError, match="position_dim"):
        TemporalAttentionBlock(8, position_dim=7)
