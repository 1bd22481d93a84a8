"""Behaviour policy for data generation: a noisy driver that covers the action space.

Decisions are piecewise constant over segments of 0.3-2 s: a speed mode (cruise at a
sampled target speed, accelerate, brake, coast), a target lane (random lane changes when
the lane has room; sometimes towards a lane with a vehicle close by, leaving only a few
metres: near-misses; a change is aborted when something is alongside), a held steering
bias, now and then a swerve (steering held open-loop at +-0.3..0.9 for 0.25-0.7 s, so strong
steering and what it does to the view are in the data) and a tailgating mode that follows the
leader closely, braking late. Outside a swerve a lane-keeping controller (heading tracks a
lateral-error target, with road curvature feed-forward) and a safety brake behind slower
leaders produce the raw action, which is low-pass filtered (time constant 0.1 s) so actions
are smooth.

`explore` (default 0) is the probability that a segment is an exploration segment: steer and
accel each held open-loop at a uniform value (steer in +-EXPLORE_STEER, accel in [-1, 1]) for
EXPLORE_SECONDS, whatever the state (only the safety brake still acts). Lane keeping makes most
actions predictable from what the car was doing, so a world model trained on such data can
learn to ignore its action input; exploration segments give actions that the past does not
explain (the GameNGen / DIAMOND lesson: an action-conditioned model needs action coverage).
"""

from __future__ import annotations

import numpy as np

from drivesim.world.ego import FRONT as EGO_FRONT
from drivesim.world.ego import REAR as EGO_REAR
from drivesim.world.world import World

SEGMENT = (0.3, 2.0)
SMOOTHING_TIME = 0.1
SWERVE_PROB = 0.12  # per segment
SWERVE_STEER = (0.3, 0.9)
SWERVE_SECONDS = (0.25, 0.7)
EXPLORE_STEER = 0.9
EXPLORE_SECONDS = (0.4, 1.6)


def _lane_clear(world: World, lane_x: float, back: float, front: float) -> bool:
    """No vehicle in the lane at lane_x overlaps the ego car's extent grown by `back` metres
    behind (more for faster vehicles coming from behind) and `front` metres ahead."""
    tr, ego = world.traffic, world.ego_car
    if not len(tr):
        return True
    in_lane = np.abs(tr.x - lane_x) < 2.3
    rel = tr.s - ego.s  # rear bumpers relative to the camera
    closing = np.maximum(tr.v - ego.speed, 0.0)
    blocking = in_lane & (rel < EGO_FRONT + front) & (rel + tr.length > -EGO_REAR - back - 1.5 * closing)
    return not bool(blocking.any())


def tracking_steer(world: World, target_x: float) -> float:
    """The lane-keeping steer (unclipped) towards lateral position `target_x` (m): the heading tracks
    a target from the lateral error, the yaw rate tracks the heading, and the road's curvature is fed
    forward (the world knows it)."""
    ego = world.ego_car
    v = max(ego.speed, 3.0)
    psi_target = float(np.clip(-0.06 * (ego.x - target_x), -0.09, 0.09))
    yaw_rate = 2.2 * (psi_target - ego.heading)
    return (yaw_rate / v + world.road_curvature) / ego.steer_curvature_limit()


class BehaviourPolicy:
    """`act(world) -> (2,) float32 [steer, accel]` in [-1, 1]; deterministic for a seed.

    explore: probability in [0, 1] that a decision segment is an open-loop exploration segment.
    """

    def __init__(self, seed: int | None = 0, explore: float = 0.0) -> None:
        if not 0.0 <= explore <= 1.0:
            raise ValueError(f"BehaviourPolicy explore={explore!r} is not allowed; it must be in [0, 1]")
        self.explore = float(explore)
        self.reset(seed)

    def reset(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)
        self._left = 0.0
        self._target_lane: int | None = None
        self._mode = "cruise"
        self._target_speed = 25.0
        self._accel = 0.0
        self._steer_bias = 0.0
        self._tailgate = False
        self._swerve = 0.0  # held open-loop steer during a swerve segment, 0 = none
        self._explore: tuple[float, float] | None = None  # held (steer, accel) of an exploration segment
        self._explore_rng = np.random.default_rng(None if seed is None else [int(seed), 1])
        self._action = np.zeros(2)
        self._frame = -1

    def _new_segment(self, world: World) -> None:
        rng, cfg, ego = self.rng, world.config, world.ego_car
        self._left = float(rng.uniform(*SEGMENT))
        lanes = cfg.lane_centres()
        current = int(np.argmin(np.abs(lanes - ego.x)))
        if self._target_lane is None:
            self._target_lane = current
        u = rng.random()
        if u < 0.18:  # random lane change, if the target lane has room
            target = int(np.clip(current + rng.choice([-1, 1]), 0, cfg.num_lanes - 1))
            if _lane_clear(world, float(lanes[target]), back=12.0, front=10.0):
                self._target_lane = target
        elif u < 0.24:  # near-miss: move towards a lane with a vehicle close by, without touching it
            tr = world.traffic
            close = np.flatnonzero(np.abs(tr.s - ego.s) < 18.0)
            if len(close):
                target = int(np.argmin(np.abs(lanes - tr.x[close[0]])))
                if _lane_clear(world, float(lanes[target]), back=3.0, front=2.0):
                    self._target_lane = target
        m = rng.random()
        if m < 0.45:
            self._mode, self._target_speed = "cruise", float(rng.uniform(17.0, 34.0))
        elif m < 0.65:
            self._mode, self._accel = "accelerate", float(rng.uniform(0.4, 1.0))
        elif m < 0.82:
            self._mode, self._accel = "brake", -float(rng.uniform(0.3, 1.0))
        else:
            self._mode, self._accel = "coast", float(rng.uniform(-0.15, 0.15))
        self._steer_bias = float(rng.normal(0.0, 0.06)) if rng.random() < 0.85 else float(rng.uniform(-0.4, 0.4))
        self._tailgate = bool(rng.random() < 0.08)
        self._swerve = 0.0
        if rng.random() < SWERVE_PROB:
            self._swerve = float(rng.choice([-1.0, 1.0]) * rng.uniform(*SWERVE_STEER))
            self._left = float(rng.uniform(*SWERVE_SECONDS))
        # A separate stream, so explore=0 draws exactly what the policy drew before it existed.
        self._explore = None
        if self.explore and self._explore_rng.random() < self.explore:
            e = self._explore_rng
            self._explore = (float(e.uniform(-EXPLORE_STEER, EXPLORE_STEER)), float(e.uniform(-1.0, 1.0)))
            self._left = float(e.uniform(*EXPLORE_SECONDS))

    def act(self, world: World) -> np.ndarray:
        cfg, ego, dt = world.config, world.ego_car, world.config.dt
        if world.frame_index < self._frame:  # the world was reset
            self._target_lane = None
            self._left = 0.0
        self._frame = world.frame_index
        self._left -= dt
        if self._left <= 0.0 or self._target_lane is None:
            self._new_segment(world)
        lanes = cfg.lane_centres()
        current = int(np.argmin(np.abs(lanes - ego.x)))
        if self._target_lane != current and not _lane_clear(world, float(lanes[self._target_lane]), 4.0, 3.0):
            self._target_lane = current  # abort the lane change: something is alongside
        target_x = float(lanes[self._target_lane])

        steer = tracking_steer(world, target_x) + self._steer_bias
        if self._swerve:
            steer = self._swerve
        if self._explore is not None:
            steer = self._explore[0]

        # Longitudinal: mode, then a safety brake behind the leader in the ego's path.
        if self._mode == "cruise":
            accel = float(np.clip(0.4 * (self._target_speed - ego.speed), -1.0, 1.0))
        elif self._mode == "brake" and ego.speed < 8.0:
            accel = 0.3
        else:
            accel = self._accel
        if self._explore is not None:
            accel = self._explore[1]
        if self._mode == "accelerate" and ego.speed > cfg.max_speed - 3.0:
            accel = 0.0
        tr = world.traffic
        if len(tr):
            ahead = (tr.s > ego.s) & (np.abs(tr.x - ego.x) < 2.4)
            if ahead.any():
                gaps = tr.s[ahead] - ego.front
                k = int(np.argmin(gaps))
                gap, v_lead = float(gaps[k]), float(tr.v[ahead][k])
                headway = 0.45 if self._tailgate else 1.1
                v_safe = v_lead + (gap - 4.0) / headway
                if ego.speed > v_safe:
                    accel = min(accel, float(np.clip(-0.5 * (ego.speed - v_safe), -1.0, 0.0)))
        raw = np.clip(np.array([steer, accel]), -1.0, 1.0)
        alpha = 1.0 - np.exp(-dt / SMOOTHING_TIME)
        self._action = self._action + alpha * (raw - self._action)
        return np.clip(self._action, -1.0, 1.0).astype(np.float32)
