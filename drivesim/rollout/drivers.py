"""Closed-loop scripted drivers: a lane keeper on the engine's pose reading, with scripted events.

An open-loop steering script cannot drive a learned world whose steering sets a yaw rate, as the
procedural world's does (`drivesim.world.ego`): a steer pulse turns the car and nothing turns it
back, so it leaves the road. A driver instead closes the loop as `benchmarks/closed_loop.py` does:
each control step the lane keeper (`drivesim.rollout.lane_keeper`) reads the pose heads' lateral
offset from the last step and steers towards its target lane; the script only moves the target
lane and overrides the accel.

    driver = ScriptedDriver("keeper_lane_change_brake", steps_per_second=7.5)
    out = engine.start(requests)
    for k in range(num_steps):
        out = engine.step(out.state, driver.act(out, k))

Drivers (`DRIVERS`):
  * "keeper": keep the starting lane at the keeper's target speed;
  * "keeper_lane_change_brake": the demo's script every 20 s: a lane change at 4 s (towards the
    road's middle, or left from the middle lane), back at 10 s, full braking at 14-15.5 s and full
    throttle at 15.5-18 s (the accel overrides the keeper's speed hold there).
"""

from __future__ import annotations

import numpy as np

from drivesim.rollout.lane_keeper import LaneKeeper, LaneKeeperConfig
from drivesim.rollout.types import StepOutput

DRIVERS: tuple[str, ...] = ("keeper", "keeper_lane_change_brake")
PERIOD_S = 20.0  # the lane-change-and-brake script repeats every PERIOD_S seconds
CHANGE_S = 4.0  # ... changes lane at this phase
RETURN_S = 10.0  # ... changes back at this phase
BRAKE_S = (14.0, 15.5)  # ... brakes fully over this phase
THROTTLE_S = (15.5, 18.0)  # ... then accelerates fully


def first_change(target: np.ndarray, num_lanes: int) -> np.ndarray:
    """(b,) direction of the script's first lane change: towards the middle, or left (-1) from it."""
    middle = (num_lanes - 1) / 2
    return np.where(target > middle, -1, np.where(target < middle, 1, -1))


class ScriptedDriver:
    """Batched: `act(out, k)` with the engine's last StepOutput and the index k of the step to take
    -> (b, 2) float32 [steer, accel]."""

    def __init__(self, name: str, steps_per_second: float, keeper: LaneKeeperConfig | None = None) -> None:
        if name not in DRIVERS:
            raise ValueError(f"driver {name!r} is not allowed; expected one of {list(DRIVERS)}")
        if not steps_per_second > 0:
            raise ValueError(f"steps_per_second={steps_per_second} must be > 0")
        self.name = name
        self.dt = 1.0 / steps_per_second
        self.keeper = LaneKeeper(keeper)
        self.direction: np.ndarray | None = None  # (b,) the current cycle's first lane change
        self.lane_changes = 0  # commands given (per rollout)

    def _phase(self, k: int) -> float:
        return (k * self.dt) % PERIOD_S

    def act(self, out: StepOutput, k: int) -> np.ndarray:
        if out.pose is None:
            raise ValueError(
                f"driver {self.name!r} steers on the pose heads' reading, but this model's reward heads have no "
                "pose output; use an open-loop policy (idle, weave, random, lane_change_brake) or a model with pose"
            )
        offset, heading = out.pose[:, 0], out.pose[:, 1]
        speed = np.nan_to_num(np.asarray(out.speed, np.float64), nan=self.keeper.config.target_speed)
        if self.keeper.target_lane is None:
            self.keeper.start(offset)  # targets the nearest lane
        if self.name == "keeper_lane_change_brake" and k > 0:
            before, now = self._phase(k - 1), self._phase(k)
            if before < CHANGE_S <= now:
                self.direction = first_change(self.keeper.target_lane, self.keeper.config.num_lanes)
                self.keeper.change_lane(self.direction)
                self.lane_changes += 1
            elif before < RETURN_S <= now and self.direction is not None:
                self.keeper.change_lane(-self.direction)
                self.lane_changes += 1
        action = self.keeper.act(offset, heading, speed, self.dt)
        if self.name == "keeper_lane_change_brake":
            phase = self._phase(k)
            if BRAKE_S[0] <= phase < BRAKE_S[1]:
                action[:, 1] = -1.0
            elif THROTTLE_S[0] <= phase < THROTTLE_S[1]:
                action[:, 1] = 1.0
        return action
