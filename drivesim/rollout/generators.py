"""Per-rollout randomness: one torch.Generator per rollout, kept as its state in RolloutState.rng.

Every random draw of a rollout (starting noise of each DDIM run, context noise, a stochastic
sampler's noise after each step) comes from its own generator, so a rollout's future depends
only on its state and actions, never on which other rollouts share the batch.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor


def generators(rng: Tensor) -> list[torch.Generator]:
    """Generators restored from states rng (b, n) uint8, one per rollout."""
    gens = []
    for state in rng:
        g = torch.Generator()
        g.set_state(state.clone())
        gens.append(g)
    return gens


def rollout_noise(gens: list[torch.Generator], shape: tuple[int, ...]) -> Tensor:
    """(b, *shape) standard normal, row i from generator i."""
    return torch.stack([torch.randn(shape, generator=g) for g in gens])


def step_noise(gens: list[torch.Generator], jumps: int, shape: tuple[int, ...]) -> Tensor:
    """(jumps, b, *shape) standard normal: the noise a stochastic sampler (eta > 0) adds after each of its
    jumps, batch row i from generator i (drawn after `rollout_noise`'s draws of the same call)."""
    noise = rollout_noise(gens, (jumps, *shape))  # b jumps ...
    return rearrange(noise, "b n ... -> n b ...")
