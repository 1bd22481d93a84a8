"""A scripted driver for measuring action adherence: it weaves across its lane and holds random
accel commands, and the world can follow both.

Action adherence (issue 6) commands a world model with actions and asks the clip probe to read
them back off the generated video. Open-loop patterns do not make a fair test: a steer held at
±0.8 for seconds takes the world's own car off the road on 45-86% of its frames, and a brake
held at -0.8 for 1.6 s stops it, so the clip probe, trained on on-road driving, reads the
world's own video under such patterns at accel r 0.20 (docs/results.md, *Action adherence on
commands the world can follow*). This driver keeps the car where the probe's training data
is, and its actions still vary independently of the state:
- steer: the behaviour policy's lane-keeping law (`policy.tracking_steer`, with the road's
  curvature fed forward) towards a lateral target that swings `weave_lanes` lane widths either
  side of the start lane's centre (kept on the road) with a period drawn from `weave_period_s`;
- accel: held for a duration drawn from `hold_s`, at a value drawn from U(-accel_max, accel_max),
  its sign flipped when holding it would take the speed (the world's on-road dynamics, no
  leader) out of `speed_band` the way it pushes.
The actions the world applied are what the world model is then told (`WorldFrame.action`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from drivesim.world.ego import longitudinal_accel
from drivesim.world.policy import tracking_steer
from drivesim.world.world import World


@dataclass(frozen=True)
class PatternDriverConfig:
    weave_lanes: float = 0.5  # lateral swing either side of the lane centre (lane widths)
    weave_period_s: tuple[float, float] = (3.2, 7.5)
    accel_max: float = 0.8
    hold_s: tuple[float, float] = (1.6, 1.6)  # accel hold duration range (s)
    speed_band: tuple[float, float] = (10.0, 34.0)  # m/s the held accel should keep the speed within

    def __post_init__(self) -> None:
        if not 0.0 <= self.weave_lanes <= 1.0:
            raise ValueError(f"PatternDriverConfig.weave_lanes={self.weave_lanes} must be in [0, 1] (lane widths)")
        lo, hi = self.weave_period_s
        if not 0.0 < lo <= hi:
            raise ValueError(f"PatternDriverConfig.weave_period_s={self.weave_period_s} must be 0 < lo <= hi (s)")
        if not 0.0 <= self.accel_max <= 1.0:
            raise ValueError(f"PatternDriverConfig.accel_max={self.accel_max} must be in [0, 1]")
        lo, hi = self.hold_s
        if not 0.0 < lo <= hi:
            raise ValueError(f"PatternDriverConfig.hold_s={self.hold_s} must be 0 < lo <= hi (s)")
        lo, hi = self.speed_band
        if not 0.0 <= lo < hi:
            raise ValueError(f"PatternDriverConfig.speed_band={self.speed_band} must be 0 <= lo < hi (m/s)")


class PatternDriver:
    """`act(world) -> (2,) float32 [steer, accel]`; deterministic for a seed. Call `act` once per
    world step from the frame the pattern should start at; a new episode needs a new driver."""

    def __init__(self, seed: int, config: PatternDriverConfig | None = None) -> None:
        self.config = config or PatternDriverConfig()
        self._rng = np.random.default_rng(seed)
        self._period = float(self._rng.uniform(*self.config.weave_period_s))
        self._phase = float(self._rng.uniform(0.0, 2.0 * np.pi))
        self._centre: float | None = None
        self._t = 0.0
        self._accel = 0.0
        self._left = 0.0  # seconds left of the current accel hold

    def _start(self, world: World) -> float:
        """The weave's centre: the lane the car is in, moved inwards so the swing stays on the road."""
        cfg = world.config
        lanes = cfg.lane_centres()
        swing = self.config.weave_lanes * cfg.lane_width
        nearest = float(lanes[np.argmin(np.abs(lanes - world.ego_car.x))])
        return float(np.clip(nearest, lanes[0] + swing, max(lanes[0] + swing, lanes[-1] - swing)))

    def _new_hold(self, world: World) -> None:
        cfg, c = world.config, self.config
        hold = float(self._rng.uniform(*c.hold_s))
        accel = float(self._rng.uniform(-c.accel_max, c.accel_max))
        v = world.ego_car.speed
        for _ in range(max(1, round(hold / cfg.dt))):
            v = min(max(v + longitudinal_accel(accel, v, cfg.max_speed, False) * cfg.dt, 0.0), cfg.max_speed)
        if (v < c.speed_band[0] and accel < 0.0) or (v > c.speed_band[1] and accel > 0.0):
            accel = -accel  # towards the band
        self._accel, self._left = accel, hold

    def act(self, world: World) -> np.ndarray:
        if self._centre is None:
            self._centre = self._start(world)
        if self._left <= 1e-9:
            self._new_hold(world)
        swing = self.config.weave_lanes * world.config.lane_width
        target_x = self._centre + swing * np.sin(2.0 * np.pi * self._t / self._period + self._phase)
        steer = float(np.clip(tracking_steer(world, float(target_x)), -1.0, 1.0))
        self._t += world.config.dt
        self._left -= world.config.dt
        return np.array([steer, self._accel], np.float32)
