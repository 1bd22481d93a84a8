"""`compose_first_frames`: the image LDM's first keyframes, one per rollout, each from its own generator."""

import contextlib

import torch

from drivesim.diffusion.conditioning import Conditioning
from drivesim.rollout.first_frames import compose_first_frames
from drivesim.sampling.image import ImageGuidance


def _cond(tods, crowds):
    n = len(tods)
    return Conditioning.from_labels(tods, crowds, [None] * n, [None] * n)


def _guidance(config, label=None):
    return ImageGuidance.from_scales(config.label_guidance if label is None else label, config.box_guidance,
                                     config.crowdedness_guidance, config.crowdedness_contrast, config.box_interval)


def test_shapes_and_each_rollout_its_own_generator(engine):
    ldm, guidance, steps = engine.world.image_ldm, _guidance(engine.config), engine.config.first_frame_steps
    gens = [torch.Generator().manual_seed(s) for s in (3, 4)]
    both = compose_first_frames(ldm, guidance, steps, _cond(["day", "night"], ["low", "high"]), gens,
                                engine.latent_shape, engine.device)  # fmt: skip
    assert both.shape == (2, *engine.latent_shape) and torch.isfinite(both).all()
    alone = compose_first_frames(ldm, guidance, steps, _cond(["night"], ["high"]), [torch.Generator().manual_seed(4)],
                                 engine.latent_shape, engine.device)  # fmt: skip
    torch.testing.assert_close(both[1:], alone, atol=1e-5, rtol=1e-5)  # batching changes no rollout
    assert not torch.allclose(both[0], both[1])


def test_the_engine_composes_with_its_own_guidance_and_steps(engine):
    def gens():
        return [torch.Generator().manual_seed(7)]

    ldm, cfg, cond = engine.world.image_ldm, engine.config, _cond(["day"], ["medium"])
    ours = engine.compose(cond, gens())
    same = compose_first_frames(ldm, _guidance(cfg), cfg.first_frame_steps, cond, gens(), engine.latent_shape,
                                engine.device)  # fmt: skip
    torch.testing.assert_close(ours, same)
    unguided = compose_first_frames(ldm, _guidance(cfg, label=1.0), cfg.first_frame_steps, cond, gens(),
                                    engine.latent_shape, engine.device)  # fmt: skip
    assert not torch.allclose(ours, unguided)  # the label guidance scale reaches the sampler
    fewer = compose_first_frames(ldm, _guidance(cfg), 1, cond, gens(), engine.latent_shape, engine.device)
    assert not torch.allclose(ours, fewer)  # and the step count


def test_every_network_call_runs_in_a_fresh_context_from_the_factory(engine):
    made = []

    def factory():
        made.append(1)
        return contextlib.nullcontext()

    cfg = engine.config
    compose_first_frames(engine.world.image_ldm, _guidance(cfg), 2, _cond(["day"], [None]),
                         [torch.Generator().manual_seed(0)], engine.latent_shape, engine.device, factory)  # fmt: skip
    assert len(made) == 2  # one batched (guided) call per DDIM step
