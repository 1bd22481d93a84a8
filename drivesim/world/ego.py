"""The ego car: an arcade kinematic model in road coordinates.

State: arc length s (the camera, at the dashboard, sits at s), lateral offset x from the
road centre (m, positive = right), heading relative to the road direction (rad, positive
= pointing right), speed (m/s). Steering sets a path curvature (so its effect grows with
speed); the road's own curvature turns the road under the car, so keeping a lane on a
curve needs steering.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FRONT = 1.6  # camera to front bumper (m)
REAR = 3.0  # camera to rear bumper (m)
WIDTH = 1.8
MAX_STEER_CURVATURE = 0.035  # 1/m at steer = 1 (turn radius ~29 m) ...
MAX_LATERAL_ACCEL = 9.0  # ... limited so that v^2 * k stays below this (m/s^2)
THROTTLE = 3.5  # m/s^2 at accel = 1 from standstill
BRAKE = 8.0  # m/s^2 at accel = -1
MAX_HEADING = 0.7


def drag(speed: float, off_road: bool) -> float:
    """Deceleration (m/s^2) with no throttle: rolling resistance, air drag, grass."""
    return 0.1 + 4.0e-4 * speed * speed + (2.5 if off_road else 0.0)


def longitudinal_accel(accel: float, speed: float, max_speed: float, off_road: bool) -> float:
    """m/s^2 the car gets from the command `accel` in [-1, 1] at `speed` (before clamping the
    speed to [0, max_speed]): throttle fades towards max_speed, brakes do not."""
    push = THROTTLE * accel * (1.0 - (speed / max_speed) ** 2) if accel >= 0.0 else BRAKE * accel
    return push - drag(speed, off_road)


def command_for(accel_mps2: float, speed: float, max_speed: float, off_road: bool = False) -> float:
    """Inverse of `longitudinal_accel`: the command in [-1, 1] that gives `accel_mps2` at `speed`
    (clipped to [-1, 1] where no command can)."""
    push = accel_mps2 + drag(speed, off_road)
    if push >= 0.0:
        return min(1.0, push / max(THROTTLE * (1.0 - (speed / max_speed) ** 2), 1e-6))
    return max(-1.0, push / BRAKE)


@dataclass
class EgoCar:
    s: float = 0.0
    x: float = 0.0
    heading: float = 0.0
    speed: float = 25.0
    road_yaw: float = 0.0  # accumulated heading of the road itself (for the sky panorama)

    @property
    def rear(self) -> float:
        return self.s - REAR

    @property
    def front(self) -> float:
        return self.s + FRONT

    def steer_curvature_limit(self) -> float:
        return min(MAX_STEER_CURVATURE, MAX_LATERAL_ACCEL / max(self.speed * self.speed, 1.0))

    def step(
        self, steer: float, accel: float, road_curvature: float, dt: float, max_speed: float, off_road: bool
    ) -> None:
        """Advance by dt with steer, accel in [-1, 1] (already clipped)."""
        v = self.speed
        v = min(max(v + longitudinal_accel(accel, v, max_speed, off_road) * dt, 0.0), max_speed)
        yaw_rate = v * (steer * self.steer_curvature_limit() - road_curvature)
        self.heading = min(max(self.heading + yaw_rate * dt, -MAX_HEADING), MAX_HEADING)
        ds = v * math.cos(self.heading) * dt
        self.x += v * math.sin(self.heading) * dt
        self.s += ds
        self.road_yaw += road_curvature * ds
        self.speed = v

    def lane_index(self, lane_centres: np.ndarray) -> int:
        return int(np.argmin(np.abs(lane_centres - self.x)))
