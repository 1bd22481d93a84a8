import pytest
import torch

from drivesim.nn.alpha_blender import AlphaBlender


@pytest.mark.parametrize("mode", ["sigmoid", "clamp", "fixed"])
def test_alpha_one_gives_spatial_exactly(mode):
    torch.manual_seed(0)
    spatial, temporal = torch.randn(3, 4, 5), torch.randn(3, 4, 5)
    blender = AlphaBlender(0.3, mode=mode)
    out = blender(spatial, temporal)
    assert torch.allclose(out, 0.3 * spatial + 0.7 * temporal, atol=1e-6)
    blender.set_alpha(1.0)
    assert torch.equal(blender(spatial, temporal), spatial)
    blender.set_alpha(0.0)
    assert torch.equal(blender(spatial, temporal), temporal)


def test_alpha_learns_and_stays_in_range():
    blender = AlphaBlender(0.5, mode="clamp")
    spatial, temporal = torch.zeros(4), torch.ones(4)
    loss = (blender(spatial, temporal) - 1.0).pow(2).sum()
    loss.backward()
    assert blender.raw.grad is not None and blender.raw.grad.item() > 0
    with torch.no_grad():
        blender.raw.fill_(3.0)
    assert float(blender.alpha().detach()) == 1.0


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        AlphaBlender(0.5, mode="softmax")
    with pytest.raises(ValueError, match="init_alpha"):
        AlphaBlender(1.5)
    with pytest.raises(ValueError, match="equal shapes"):
        AlphaBlender()(torch.zeros(2), torch.zeros(3))
