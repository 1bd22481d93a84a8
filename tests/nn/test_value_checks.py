"""`value_checks_on`: data-dependent checks run eagerly and are skipped while torch.compile traces."""

import pytest
import torch

from drivesim.nn.alpha_blender import AlphaBlender
from drivesim.nn.value_checks import value_checks_on


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def test_on_eagerly_off_while_traced():
    seen = []

    def f(x):
        seen.append(value_checks_on())
        return x + 1

    f(torch.zeros(2))
    torch.compile(f, backend="eager")(torch.zeros(2))
    assert seen == [True, False]


@pytest.mark.parametrize("alpha", [1.0, 0.3])
def test_compiled_alpha_blender_makes_the_eager_choice(alpha):
    blender = AlphaBlender(0.5, mode="clamp")
    blender.set_alpha(alpha)
    spatial = torch.randn(2, 3)
    temporal = torch.full((2, 3), float("nan"))  # alpha 1 must ignore even a non-finite temporal path
    got = torch.compile(blender, backend="eager", fullgraph=True)(spatial, temporal)
    want = blender(spatial, temporal)
    assert torch.equal(got, spatial) if alpha == 1.0 else bool(torch.isnan(got).all() and torch.isnan(want).all())
    temporal = torch.randn(2, 3)
    torch.testing.assert_close(torch.compile(blender, backend="eager", fullgraph=True)(spatial, temporal),
                               blender(spatial, temporal), rtol=0, atol=0)
