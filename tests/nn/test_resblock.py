import pytest
import torch

from drivesim.nn.resblock import Downsample, ResBlock, Upsample, num_groups_for


def test_resblock_shapes_and_channel_change():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 6, 10)
    assert ResBlock(8)(x).shape == (2, 8, 6, 10)
    assert ResBlock(8, 16)(x).shape == (2, 16, 6, 10)


def test_resblock_zero_init_is_identity_and_emb_modulates():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 4, 4)
    block = ResBlock(8, emb_channels=5, zero_init_last=True)
    emb = torch.randn(2, 5)
    assert torch.equal(block(x, emb), x)
    torch.nn.init.normal_(block.conv2.weight)
    assert not torch.allclose(block(x, emb), block(x, emb + 1.0))
    with pytest.raises(ValueError, match="emb"):
        block(x)


def test_resampling_shapes():
    x = torch.randn(1, 4, 8, 16)
    assert Downsample(4)(x).shape == (1, 4, 4, 8)
    assert Upsample(4)(x).shape == (1, 4, 16, 32)


def test_num_groups_divides_channels():
    assert num_groups_for(64) == 32
    assert num_groups_for(48) == 24
    assert num_groups_for(3) == 3
    with pytest.raises(ValueError, match="channels"):
        num_groups_for(0)
