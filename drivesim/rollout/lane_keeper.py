"""A closed-loop lane keeper on what the pose heads read: (lateral offset, heading, speed) -> action.

The lateral law is the procedural world's behaviour policy's (`drivesim.world.policy`) without its
road-curvature feed-forward, which a learned env does not know: a heading target from the lateral
error to the target lane's centre, a yaw rate towards it, and the steer that gives that yaw rate
at the current speed (the world's steering model, `drivesim.world.ego`). The road's curvature
then shows up as heading error, which the feedback removes. Longitudinal: hold `target_speed`.

Heading: the keeper does not use the heads' heading. `heading_from="offset_rate"` (the default until
session 20) takes the rate of change of the offset they read, (offset - previous) x lane width /
(speed x dt): in a curve the pose heads read the heading with the wrong sign (they see the road
bend, not the car turn), and closed loop on the procedural world's frames that took the car off the
road in one of two 30-s drives, which the offset rate did not (docs/results.md, Closed loop).
`heading_from="read"` uses the reading. The offset rate amplifies step-to-step noise in the reading
(0.1 lane in 0.13 s reads as ~0.1 rad and saturates the steer), so by default
`heading_from="observer"` estimates offset and heading with a steady-state observer instead (an
alpha-beta filter whose prediction knows the keeper's own steer): predict the heading from the yaw
rate the last steer asked for (the world's steering model) and the offset from that heading, then
correct both by the reading's surprise r (lane widths): offset += a r, heading += b asin(r x lane
width / (speed x dt)), and a yaw-rate bias (the road's curve, or a model that turns more or less
than the world for a steer) by c / dt times the heading's correction; a, b, c = 1 - exp(-dt / tau)
for the time constants `observer_seconds`, so the filter behaves alike at any control interval. It
assumes its own steer was applied (scripts that override only the accel keep that true).

Used for closed-loop rollouts (a learned env that follows its steering stays on the road only if
something steers it back, as a driver does) and for lane changes on command (`target_lane`).
Offsets are in lane widths from the road centre (negative = left), lanes numbered 0 (leftmost) to
num_lanes - 1, as in `drivesim.rollout.rewards`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from drivesim.rollout.rewards import lane_centres, lane_position
from drivesim.world.ego import MAX_LATERAL_ACCEL, MAX_STEER_CURVATURE

HEADING_FROM: tuple[str, ...] = ("offset_rate", "read", "observer")


@dataclass
class LaneKeeperConfig:
    lane_width: float = 3.5  # m, the world's
    num_lanes: int = 3
    heading_gain: float = 0.06  # rad of heading target per metre of lateral error (the behaviour policy's)
    max_heading: float = 0.09  # rad, the heading target's limit
    yaw_gain: float = 2.2  # 1/s: yaw rate per rad of heading error ...
    yaw_gain_dt: float = 0.8  # ... at most this / dt with heading_from "offset_rate" (it lags dt / 2)
    target_speed: float = 25.0  # m/s
    speed_gain: float = 0.4  # accel per m/s of speed error
    heading_from: str = "observer"  # "offset_rate" (from successive offsets) | "read" (the heads' heading)
    # | "observer" (filtered offset and heading, predicted from the last steer)
    # observer: time constants (s) of its (offset, heading, yaw bias) corrections; per act the gain on the
    # surprise is 1 - exp(-dt / tau) (at dt = 4 / 30 s: 0.5, 0.2, 0.05)
    observer_seconds: tuple[float, float, float] = (0.19, 0.6, 2.6)

    def __post_init__(self) -> None:
        if self.num_lanes < 1 or self.lane_width <= 0:
            raise ValueError(f"LaneKeeperConfig needs num_lanes >= 1 and lane_width > 0, got {self.num_lanes}, "
                             f"{self.lane_width}")
        if self.heading_from not in HEADING_FROM:
            raise ValueError(f"LaneKeeperConfig.heading_from={self.heading_from!r}; allowed: {list(HEADING_FROM)}")
        taus = tuple(self.observer_seconds)
        if len(taus) != 3 or not all(np.isfinite(t) and t > 0 for t in taus):
            raise ValueError(f"LaneKeeperConfig.observer_seconds={self.observer_seconds}: need three time constants "
                             "in seconds (offset, heading, yaw bias), each finite and > 0")


class LaneKeeper:
    """Batched: `act(offset, heading, speed, dt)` with (b,) arrays -> (b, 2) float32 [steer, accel]."""

    def __init__(self, config: LaneKeeperConfig | None = None) -> None:
        self.config = config or LaneKeeperConfig()
        self.target_lane: np.ndarray | None = None  # (b,) int; None: the nearest lane at the first act
        self.previous_offset: np.ndarray | None = None  # (b,) the last act's offset (for the offset rate)
        self.estimate: np.ndarray | None = None  # (b, 3) observer: offset (lanes), heading (rad), yaw bias (rad/s)
        self.last_yaw_rate: np.ndarray | None = None  # (b,) observer: rad/s the last steer asked for

    def lane_centre(self, lane: np.ndarray) -> np.ndarray:
        """(b,) lane indices -> (b,) their centres in lane widths from the road centre."""
        return lane_centres(self.config.num_lanes)[lane]

    def change_lane(self, direction: np.ndarray | int) -> None:
        """Move each target lane by `direction` (-1 left, +1 right), kept on the road."""
        if self.target_lane is None:
            raise ValueError("change_lane needs a target lane: call start(offset) or act() once first")
        self.target_lane = np.clip(self.target_lane + np.asarray(direction), 0, self.config.num_lanes - 1)

    def start(self, offset: np.ndarray) -> None:
        """Forget the past and target the lane nearest each (b,) offset (lane widths)."""
        offset = np.asarray(offset, np.float64).reshape(-1)
        self.target_lane = lane_position(offset, self.config.num_lanes)[0]
        self.previous_offset = self.estimate = self.last_yaw_rate = None

    def act(self, offset: np.ndarray, heading: np.ndarray, speed: np.ndarray, dt: float) -> np.ndarray:
        """offset (b,) lane widths, heading (b,) rad to the road (read; unused with heading_from
        "offset_rate"), speed (b,) m/s, dt seconds since the last act -> (b, 2) actions."""
        cfg = self.config
        offset, heading, speed = (np.asarray(a, np.float64).reshape(-1) for a in (offset, heading, speed))
        if not (len(offset) == len(heading) == len(speed)):
            raise ValueError(f"offset, heading, speed must have one length, got {len(offset)}, {len(heading)}, "
                             f"{len(speed)}")
        if not (np.isfinite(offset).all() and np.isfinite(heading).all() and np.isfinite(speed).all()):
            raise ValueError("offset, heading and speed must be finite")
        if not dt > 0:
            raise ValueError(f"dt={dt} must be > 0 (seconds since the last act)")
        if self.target_lane is None or len(self.target_lane) != len(offset):
            self.start(offset)
        if cfg.heading_from == "observer":
            offset, heading = self._observe(offset, speed, dt)
        elif cfg.heading_from == "offset_rate":
            moved = np.zeros_like(offset) if self.previous_offset is None else offset - self.previous_offset
            heading = np.arcsin(np.clip(moved * cfg.lane_width / (np.maximum(speed, 3.0) * dt), -1.0, 1.0))
        self.previous_offset = offset
        error_m = (offset - self.lane_centre(self.target_lane)) * cfg.lane_width
        psi_target = np.clip(-cfg.heading_gain * error_m, -cfg.max_heading, cfg.max_heading)
        gain = cfg.yaw_gain if cfg.heading_from == "read" else min(cfg.yaw_gain, cfg.yaw_gain_dt / dt)
        yaw_rate = gain * (psi_target - heading)
        v = np.maximum(speed, 3.0)
        curvature_limit = np.minimum(MAX_STEER_CURVATURE, MAX_LATERAL_ACCEL / np.maximum(v * v, 1.0))
        steer = np.clip(yaw_rate / v / curvature_limit, -1.0, 1.0)
        self.last_yaw_rate = steer * v * curvature_limit  # what the world turns at for this (clipped) steer
        accel = cfg.speed_gain * (cfg.target_speed - speed)
        return np.clip(np.stack([steer, accel], axis=1), -1.0, 1.0).astype(np.float32)

    def _observe(self, offset: np.ndarray, speed: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
        """(b,) read offsets -> the observer's (b,) offset and heading after this reading."""
        if self.estimate is None:  # the first act since start(): nothing to predict from yet
            self.estimate = np.stack([offset, np.zeros_like(offset), np.zeros_like(offset)], axis=1)
            return offset, self.estimate[:, 1].copy()
        cfg, v = self.config, np.maximum(speed, 3.0)
        alpha, beta, gamma = (1.0 - np.exp(-dt / tau) for tau in cfg.observer_seconds)
        x, psi, bias = self.estimate.T
        psi_pred = psi + (self.last_yaw_rate + bias) * dt  # bias: the road's turning (and the model's own)
        x_pred = x + v * dt * np.sin((psi + psi_pred) / 2) / cfg.lane_width
        surprise = offset - x_pred
        heading_surprise = np.arcsin(np.clip(surprise * cfg.lane_width / (v * dt), -1.0, 1.0))
        x_new = x_pred + alpha * surprise
        psi_new = np.clip(psi_pred + beta * heading_surprise, -0.5, 0.5)
        bias_new = np.clip(bias + gamma * heading_surprise / dt, -0.5, 0.5)
        self.estimate = np.stack([x_new, psi_new, bias_new], axis=1)
        return x_new, psi_new
