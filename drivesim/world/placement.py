"""Place vehicles so that their boxes approximately match user-given normalised boxes.

Inverse of the projection at the config size, with the ego car at its reset pose:
  * the box's bottom edge gives the distance (the row where the road at distance d appears),
  * the box height at that distance gives the class (taller than 2.5 m -> truck, else car),
  * the box edge farther from the image centre gives the lateral position (that edge is the
    vehicle's rear face; the inner edge may be its side face seen in perspective).
Vehicle sizes are fixed per class, so only the outer edge and the bottom are matched closely.
Each vehicle drives at about the ego speed so the composed scene persists for a while.
Boxes whose bottom lies at or above the horizon are placed at the far end of the view.
"""

from __future__ import annotations

import reprlib
from typing import Protocol

import numpy as np

from drivesim.world.config import WorldConfig
from drivesim.world.ego import EgoCar
from drivesim.world.road import RoadProfile
from drivesim.world.traffic import CAR, DIMS, NUM_CAR_COLOURS, NUM_TRUCK_COLOURS, TRUCK, Traffic
from drivesim.world.view import NEAR, View


class PlacementWorld(Protocol):
    """What placing vehicles reads and changes of a world (`drivesim.world.world.World` is one)."""

    config: WorldConfig
    ego_car: EgoCar
    rng: np.random.Generator
    traffic: Traffic

    def view(self) -> View: ...

    def profile(self) -> RoadProfile: ...


MAX_BOXES = 64  # more vehicles than the densest traffic setting (60) keeps around the ego car


def validate_boxes(boxes: np.ndarray | list) -> np.ndarray:
    """(n, 4) float64 normalised x1, y1, x2, y2, n <= MAX_BOXES; ValueError naming the problem otherwise.

    Only real numbers are accepted (not strings, bools, complex or ints beyond float range).
    """
    expected = "a numeric (n, 4) array of normalised x1, y1, x2, y2"
    try:
        arr = np.asarray(boxes)
        if arr.dtype == object:
            arr = arr.astype(np.float64)
    except (TypeError, ValueError, OverflowError) as err:
        raise ValueError(f"boxes={reprlib.repr(boxes)} is not {expected}") from err
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"boxes has dtype {arr.dtype} ({reprlib.repr(boxes)}); expected {expected}")
    arr = arr.astype(np.float64)
    if arr.size == 0:
        return np.zeros((0, 4))
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"boxes has shape {arr.shape}; expected (n, 4) normalised x1, y1, x2, y2")
    if arr.shape[0] > MAX_BOXES:
        raise ValueError(f"boxes has {arr.shape[0]} boxes; at most {MAX_BOXES} are allowed")
    if not np.all(np.isfinite(arr)):
        raise ValueError("boxes contains NaN or inf; expected finite normalised x1, y1, x2, y2 in [0, 1]")
    if arr.min() < 0.0 or arr.max() > 1.0:
        raise ValueError(f"boxes values lie in [{arr.min():.3f}, {arr.max():.3f}]; expected normalised [0, 1]")
    if np.any(arr[:, 2] <= arr[:, 0]) or np.any(arr[:, 3] <= arr[:, 1]):
        raise ValueError("boxes must have x1 < x2 and y1 < y2 (normalised x1, y1, x2, y2)")
    return arr


def place_from_boxes(world: PlacementWorld, boxes: np.ndarray) -> None:
    cfg, ego = world.config, world.ego_car
    view = world.view()
    prof = world.profile()
    lanes = cfg.lane_centres()
    rng = world.rng
    for x1, y1, x2, y2 in boxes:
        bottom = y2 * view.height
        drop = bottom - view.horizon
        d = view.f * view.camera_height / drop if drop > 0.5 else cfg.vehicle_distance
        d = float(np.clip(d, NEAR + 2.0, cfg.vehicle_distance - 5.0))
        p = view.f / d
        height_m = (y2 - y1) * view.height / p
        cls = TRUCK if height_m > 2.5 else CAR
        half_px = 0.5 * DIMS[cls, 1] * p
        centre = 0.5 * (x1 + x2) * view.width
        rear_centre = x2 * view.width - half_px if centre > view.cx else x1 * view.width + half_px
        lateral = (rear_centre - view.cx) / p - float(prof.at(d)) + ego.x + ego.heading * d
        lane = int(np.argmin(np.abs(lanes - lateral)))
        speed = float(max(0.0, ego.speed + rng.uniform(-1.5, 1.5)))
        colour = int(rng.integers(0, NUM_TRUCK_COLOURS if cls == TRUCK else NUM_CAR_COLOURS))
        world.traffic.add(ego.s + d, float(lateral), speed, max(speed, 5.0), lane, cls, colour)
