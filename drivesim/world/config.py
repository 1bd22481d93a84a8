"""Configuration of the procedural world: default render size, rate, camera, road, traffic."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from drivesim.world.types import CROWDEDNESS, check_label


@dataclass
class WorldConfig:
    """Settings of one procedural world. Lengths are metres, speeds m/s, angles degrees.

    height, width: size `World.step` renders at (any other size via `World.render`; 1:2 is the
        intended aspect, other aspects keep square pixels and show a different field of view).
    fps: world rate; one `step` advances 1/fps seconds.
    horizon: horizon row as a fraction of the image height; hood: fraction of the image
        height covered by the ego car's bonnet at the bottom.
    traffic_low/medium/high: vehicles kept (by respawning) in the window from 40 m behind
        to 150 m ahead of the ego car, per crowdedness label.
    """

    height: int = 64
    width: int = 128
    fps: int = 30
    num_lanes: int = 3
    lane_width: float = 3.5
    camera_height: float = 1.8
    horizontal_fov_deg: float = 60.0
    horizon: float = 0.42
    hood: float = 0.08
    draw_distance: float = 250.0
    vehicle_distance: float = 130.0
    scenery_distance: float = 160.0
    max_speed: float = 40.0
    initial_speed: float = 25.0
    traffic_low: int = 2
    traffic_medium: int = 6
    traffic_high: int = 26
    truck_fraction: float = 0.12

    def __post_init__(self) -> None:
        for name in ("height", "width"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or not 16 <= value <= 4096:
                raise ValueError(f"WorldConfig.{name}={value!r} is not allowed; expected an int in [16, 4096]")
        if not isinstance(self.fps, (int, np.integer)) or not 1 <= self.fps <= 240:
            raise ValueError(f"WorldConfig.fps={self.fps!r} is not allowed; expected an int in [1, 240]")
        if not 1 <= self.num_lanes <= 6:
            raise ValueError(f"WorldConfig.num_lanes={self.num_lanes!r} is not allowed; expected 1..6")
        if not 0.2 <= self.horizon <= 0.7:
            raise ValueError(f"WorldConfig.horizon={self.horizon!r} is not allowed; expected [0.2, 0.7]")
        if not 0.0 <= self.hood <= 0.25:
            raise ValueError(f"WorldConfig.hood={self.hood!r} is not allowed; expected [0, 0.25]")
        counts = (self.traffic_low, self.traffic_medium, self.traffic_high)
        if min(counts) < 0 or max(counts) > 60:
            raise ValueError(f"WorldConfig.traffic_low/medium/high={counts} are not allowed; expected 0..60")

    @property
    def dt(self) -> float:
        return 1.0 / float(self.fps)

    @property
    def half_road(self) -> float:
        """Distance from the road centre to the road edge (m)."""
        return 0.5 * self.num_lanes * self.lane_width

    def lane_centres(self) -> np.ndarray:
        """(num_lanes,) lateral positions of the lane centres, leftmost first (m)."""
        return (np.arange(self.num_lanes) - 0.5 * (self.num_lanes - 1)) * self.lane_width

    def traffic_count(self, crowdedness: str) -> int:
        check_label("crowdedness", crowdedness, CROWDEDNESS)
        return {"low": self.traffic_low, "medium": self.traffic_medium, "high": self.traffic_high}[crowdedness]
