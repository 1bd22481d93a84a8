"""Shared helpers for the procedural-world tests: short seeded rollouts at tiny sizes."""

from __future__ import annotations

import numpy as np

from drivesim.world import BehaviourPolicy, World, WorldConfig, WorldFrame


def rollout(seed: int, steps: int, time_of_day: str = "day", crowdedness: str = "medium",
            height: int = 64, width: int = 128) -> tuple[World, list[WorldFrame]]:
    """Reset a world and drive it with the behaviour policy; returns the world and all frames."""
    world = World(WorldConfig(height=height, width=width))
    frames = [world.reset(seed=seed, time_of_day=time_of_day, crowdedness=crowdedness)]
    policy = BehaviourPolicy(seed)
    for _ in range(steps):
        frames.append(world.step(policy.act(world)))
    return world, frames


def drive(world: World, action: tuple[float, float], steps: int) -> WorldFrame:
    frame = None
    for _ in range(steps):
        frame = world.step(np.array(action, np.float32))
    return frame
