"""The typed config of `drivesim demo` (conf/demo.yaml): the demo and its scenarios.

Shared by the dispatcher of the demo (drivesim/cli/demo.py) and its learned source
(drivesim/cli/demo_learned.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from drivesim.rollout.engine_api import EngineConfig

SOURCES = ("auto", "learned", "world")


@dataclass
class Scenario:
    name: str = "day"
    time_of_day: str = "day"
    crowdedness: str = "medium"
    seed: int = 0
    script: str = "lane_change_and_brake"  # world source: or "policy"
    # learned source: open loop (idle | weave | random | lane_change_brake) or closed loop on the pose heads
    # (keeper | keeper_lane_change_brake, drivesim.rollout.drivers)
    policy: str = "lane_change_brake"
    boxes: list[list[float]] = field(default_factory=list)  # learned source: composed scene, xyxy in [0, 1]
    share: float = 1.0  # this scenario's length as a share of DemoConfig.seconds
    engine: dict[str, Any] = field(default_factory=dict)  # learned source: EngineConfig keys over DemoConfig.engine
    storyboard_seconds: list[float] | None = None  # learned source: storyboard times; None: evenly spaced


@dataclass
class DemoConfig:
    out: str = "outputs/demo"
    source: str = "auto"  # auto | learned | world
    model: str | None = None  # learned source: model folder; None = the bundled default
    engine: EngineConfig = field(default_factory=EngineConfig)
    seconds: float = 20.0
    fps: int = 30
    height: int = 128
    width: int = 256
    storyboard_frames: int = 6
    scenarios: list[Scenario] = field(default_factory=list)


def scenario_seconds(sc: Scenario, seconds: float) -> float:
    """The length of scenario `sc` in a demo of `seconds`."""
    if not math.isfinite(sc.share) or not 0 < sc.share <= 1:
        raise ValueError(f"scenario {sc.name}: share={sc.share} must be in (0, 1] (of the demo's seconds)")
    return sc.share * seconds
