"""The ego-speed embedding: zero at start, zero where actions are unknown, a function of the speed, checked input."""

import pytest
import torch

from drivesim.diffusion.speed_embedding import SPEED_SCALE, SpeedEmbedding, check_speed

pytestmark = pytest.mark.usefixtures("one_thread")


def _trained() -> SpeedEmbedding:
    torch.manual_seed(0)
    emb = SpeedEmbedding(16, num_frequencies=4)
    for p in emb.parameters():
        torch.nn.init.normal_(p, std=0.3)
    return emb


@torch.no_grad()
def test_a_new_embedding_adds_nothing():
    out = SpeedEmbedding(16)(torch.rand(2, 3) * 30, torch.tensor([True, True]))
    assert out.shape == (6, 16) and float(out.abs().max()) == 0.0


@torch.no_grad()
def test_speed_moves_the_embedding_only_where_actions_are_known():
    emb = _trained()
    slow, fast = torch.full((2, 3), 5.0), torch.full((2, 3), 25.0)
    given = torch.tensor([True, False])
    a, b = emb(slow, given), emb(fast, given)  # rows (b t): clip 0 is rows 0-2
    assert not torch.allclose(a[:3], b[:3], atol=1e-4)
    assert float(a[3:].abs().max()) == 0.0 and float(b[3:].abs().max()) == 0.0
    # speeds above the scale are read as the scale (the world's max speed)
    at_scale, above = emb(torch.full((1, 1), SPEED_SCALE), given[:1]), emb(torch.full((1, 1), 99.0), given[:1])
    torch.testing.assert_close(at_scale, above)


def test_bad_speeds_raise():
    with pytest.raises(ValueError, match="expected \\(2, 3\\)"):
        check_speed(torch.zeros(2, 4), 2, 3)
    with pytest.raises(ValueError, match=">= 0 m/s"):
        check_speed(torch.tensor([[-1.0]]), 1, 1)
    with pytest.raises(ValueError, match="NaN"):
        check_speed(torch.tensor([[float("nan")]]), 1, 1)
    with pytest.raises(ValueError, match="float"):
        check_speed(torch.zeros(1, 1, dtype=torch.long), 1, 1)
    with pytest.raises(ValueError, match="given must be bool"):
        SpeedEmbedding(4)(torch.zeros(2, 1), torch.ones(2))
