"""The procedural ground-truth driving world: state, traffic, renderer, behaviour policy.

    from drivesim.world import World, WorldConfig, BehaviourPolicy
    world = World(WorldConfig(height=64, width=128, fps=30))
    frame = world.reset(seed=0, time_of_day="day", crowdedness="low")
    frame = world.step(BehaviourPolicy(seed=0).act(world))
"""

from __future__ import annotations

from drivesim.world.config import WorldConfig
from drivesim.world.policy import BehaviourPolicy
from drivesim.world.types import (
    CROWDEDNESS,
    TIME_OF_DAY,
    VEHICLE_CLASSES,
    Boxes,
    EgoState,
    Events,
    WorldFrame,
    check_label,
)
from drivesim.world.world import World, check_action

__all__ = [
    "CROWDEDNESS",
    "TIME_OF_DAY",
    "VEHICLE_CLASSES",
    "BehaviourPolicy",
    "Boxes",
    "EgoState",
    "Events",
    "World",
    "WorldConfig",
    "WorldFrame",
    "check_action",
    "check_label",
]
