"""Camera and per-size projection tables.

Pinhole camera at the ego dashboard, `camera_height` above a flat road, looking along the
road (pitch 0), square pixels. A ground point at distance d ahead and lateral offset X
(camera frame, m) lands at column cx + f X / d and row horizon + f h_cam / d. Each image
row below the horizon therefore sees the road at one distance: `rows_d` is that per-scanline
table, computed once per render size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from drivesim.world.config import WorldConfig

NEAR = 1.5  # nothing closer than this (m) is drawn


@dataclass(frozen=True)
class View:
    height: int
    width: int
    f: float  # focal length in pixels
    cx: float
    horizon: float  # row (float) of the horizon
    row0: int  # first image row below the horizon (ground rows are row0 .. height-1)
    rows_d: np.ndarray  # (height - row0,) road distance seen by each ground row (m)
    hood_top: int  # first row covered by the ego bonnet
    camera_height: float
    haze_rows: int  # ground rows (from row0) that get distance haze
    haze_alpha: np.ndarray  # (haze_rows, 1, 1) float32 blend weight of the haze colour

    def ground_row(self, d: np.ndarray) -> np.ndarray:
        """Row (float) where the road at distance d appears."""
        return self.horizon + self.f * self.camera_height / d


def haze_weight(d: np.ndarray, draw_distance: float) -> np.ndarray:
    """Aerial-perspective blend towards the haze colour at distance d (0 near, 1 at the end)."""
    t = np.minimum(np.maximum((np.asarray(d, np.float64) - 40.0) * (1.0 / (draw_distance - 40.0)), 0.0), 1.0)
    return np.where(t >= 1.0, 1.0, 0.9 * t**0.8)


def make_view(cfg: WorldConfig, height: int, width: int) -> View:
    if not (isinstance(height, (int, np.integer)) and isinstance(width, (int, np.integer))
            and 16 <= height <= 4096 and 16 <= width <= 4096):
        raise ValueError(f"render size (height={height!r}, width={width!r}) is not allowed; "
                         "expected ints in [16, 4096]")
    f = 0.5 * width / np.tan(np.deg2rad(cfg.horizontal_fov_deg) / 2.0)
    horizon = cfg.horizon * height
    row0 = int(np.floor(horizon - 0.5)) + 1
    rows = np.arange(row0, height, dtype=np.float64)
    rows_d = f * cfg.camera_height / (rows + 0.5 - horizon)
    alpha = haze_weight(rows_d, cfg.draw_distance)
    haze_rows = int(np.count_nonzero(alpha > 0.01))  # alpha falls with the row index
    return View(
        height=int(height), width=int(width), f=float(f), cx=0.5 * width, horizon=float(horizon), row0=row0,
        rows_d=rows_d, hood_top=int(round(height * (1.0 - cfg.hood))), camera_height=cfg.camera_height,
        haze_rows=haze_rows, haze_alpha=alpha[:haze_rows, None, None].astype(np.float32),
    )
