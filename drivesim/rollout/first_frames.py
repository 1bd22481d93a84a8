"""First frames of rollouts from the image LDM, under the engine's guidance settings (DESIGN.md §1 stage 3).

`LearnedEngine.start` composes the first keyframe of every request that brings no frames of its own: the image
LDM samples it from the request's labels and box layout with classifier-free guidance (`ImageGuidance`: label,
box and crowdedness terms, each only where a request gives that condition), each rollout from its own generator.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import Tensor

from drivesim.diffusion.conditioning import Conditioning
from drivesim.diffusion.image_model import ImageLDM
from drivesim.rollout.generators import rollout_noise
from drivesim.sampling.ddim import ddim_sample
from drivesim.sampling.guidance import classifier_free_guidance
from drivesim.sampling.image import ImageGuidance


@torch.no_grad()
def compose_first_frames(
    ldm: ImageLDM,
    guidance: ImageGuidance,
    steps: int,
    cond: Conditioning,
    gens: list[torch.Generator],
    latent_shape: tuple[int, int, int],
    device: torch.device,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> Tensor:
    """(b, c, h, w) scaled latents, one per row of `cond` and generator in `gens`, in `steps` DDIM steps;
    latent_shape (c, h, w); autocast: makes the context each network call runs in (e.g. bfloat16 autocast)."""
    # a condition no request gives costs an evaluation and changes nothing: only active ones
    scales, contrasts, intervals = guidance.terms(cond, ldm.schedule.num_steps)

    def model(z: Tensor, tau: Tensor, cnd: Conditioning) -> Tensor:
        with autocast():
            return ldm.unet(z, tau, cnd).float()

    denoiser = classifier_free_guidance(
        model, cond, scales, mode="sequential", batched=True, contrasts=contrasts, intervals=intervals
    )
    x_T = rollout_noise(gens, latent_shape).to(device)
    return ddim_sample(denoiser, tuple(x_T.shape), ldm.schedule, steps, 0.0, gens[0], ldm.target, x_T=x_T)
