"""What the renderer needs of the world state, in one frozen bundle."""

from __future__ import annotations

from dataclasses import dataclass

from drivesim.world.ego import EgoCar
from drivesim.world.road import RoadProfile
from drivesim.world.scenery import Scenery
from drivesim.world.traffic import Traffic


@dataclass(frozen=True)
class Scene:
    ego: EgoCar
    traffic: Traffic
    scenery: Scenery
    profile: RoadProfile  # road centre offsets ahead of the ego car
    night: bool
