"""`ContiguousGroupNorm`: nn.GroupNorm's result and parameters, computed in NCHW whatever the input's layout."""

import pytest
import torch
from torch import nn

from drivesim.diffusion.unet_blocks import group_norm as unet_group_norm
from drivesim.nn.group_norm import ContiguousGroupNorm
from drivesim.nn.resblock import group_norm


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_matches_group_norm_on_nchw_and_channels_last_input(dtype):
    torch.manual_seed(0)
    ref = nn.GroupNorm(8, 32, eps=1e-6)
    nn.init.normal_(ref.weight)
    nn.init.normal_(ref.bias)
    ours = ContiguousGroupNorm(8, 32, eps=1e-6)
    ours.load_state_dict(ref.state_dict())  # the same keys
    ref, ours = ref.to(dtype), ours.to(dtype)
    x = torch.randn(3, 32, 8, 16).to(dtype)
    expected = ref(x)
    for given in (x, x.contiguous(memory_format=torch.channels_last)):
        out = ours(given)
        assert out.is_contiguous()  # normalised in NCHW
        torch.testing.assert_close(out, expected)


def test_gradients_flow_from_channels_last_input():
    norm = ContiguousGroupNorm(4, 8)
    x = torch.randn(2, 8, 4, 4).contiguous(memory_format=torch.channels_last).requires_grad_()
    norm(x).square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert norm.weight.grad is not None and norm.weight.grad.abs().sum() > 0


def test_both_factories_build_it():
    assert isinstance(group_norm(64), ContiguousGroupNorm)
    assert isinstance(unet_group_norm(64, 16), ContiguousGroupNorm)
