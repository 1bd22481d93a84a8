"""`compose_first_frames`: the image LDM's first keyframes, one per rollout, each from its own generator."""

import dataclasses

import torch

from drivesim.diffusion.conditioning import Conditioning
from drivesim.rollout.first_frames import compose_first_frames


def _cond(tods, crowds):
    n = len(tods)
    return Conditioning.from_labels(tods, crowds, [None] * n, [None] * n)


def test_shapes_and_each_rollout_its_own_generator(engine):
    ldm, cfg = engine.world.image_ldm, engine.config
    gens = [torch.Generator().manual_seed(s) for s in (3, 4)]
    both = compose_first_frames(ldm, cfg, _cond(["day", "night"], ["low", "high"]), gens, engine.latent_shape,
                                engine.device)  # fmt: skip
    assert both.shape == (2, *engine.latent_shape) and torch.isfinite(both).all()
    alone = compose_first_frames(ldm, cfg, _cond(["night"], ["high"]), [torch.Generator().manual_seed(4)],
                                 engine.latent_shape, engine.device)  # fmt: skip
    torch.testing.assert_close(both[1:], alone, atol=1e-5, rtol=1e-5)  # batching changes no rollout
    assert not torch.allclose(both[0], both[1])


def test_the_engine_composes_with_its_own_guidance(engine):
    gens = lambda: [torch.Generator().manual_seed(7)]  # noqa: E731
    cond = _cond(["day"], ["medium"])
    ours = engine.compose(cond, gens())
    torch.testing.assert_close(ours, compose_first_frames(engine.world.image_ldm, engine.config, cond, gens(),
                                                          engine.latent_shape, engine.device))  # fmt: skip
    unguided = dataclasses.replace(engine.config, label_guidance=1.0)
    other = compose_first_frames(engine.world.image_ldm, unguided, cond, gens(), engine.latent_shape, engine.device)
    assert not torch.allclose(ours, other)  # the label guidance scale reaches the sampler
