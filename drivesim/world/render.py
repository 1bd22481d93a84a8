"""Render the world state at any size: sky, ground, road, roadside objects, vehicles, bonnet;
and the boxes of the visible vehicles.

Order: sky panorama (scrolled by the ego yaw) -> ground rows (alternating grass bands) ->
road polygons (edges from the per-scanline distance table, rumble strips, lane markings) ->
at night the light map (ambient + headlight cone + street-light pools) multiplies the
ground -> distance haze near the horizon -> objects and vehicles (`objects.draw_objects`)
-> bonnet.
"""

from __future__ import annotations

import cv2
import numpy as np

from drivesim.world import palette as pal
from drivesim.world.backdrop import Backdrop, make_backdrop
from drivesim.world.config import WorldConfig
from drivesim.world.objects import draw_objects
from drivesim.world.scene import Scene
from drivesim.world.scenery import POLE
from drivesim.world.types import Boxes
from drivesim.world.view import NEAR, View, make_view

GRASS_BAND, RUMBLE_BAND, RUMBLE_WIDTH = 6.0, 4.0, 0.6
DASH_PERIOD, DASH_LENGTH, LINE_WIDTH, DASH_RANGE = 12.0, 3.5, 0.22, 160.0
POOL_RADIUS, POOL_RANGE = 7.0, 110.0
SHIFT = 4  # fixed-point bits of the road polygons
GRASS = np.stack([pal.GRASS_B, pal.GRASS_A]).astype(np.uint8)
RUMBLE_A, RUMBLE_B = pal.RUMBLE_A.tolist(), pal.RUMBLE_B.tolist()
ASPHALT, MARKING = pal.ASPHALT.tolist(), pal.MARKING.tolist()


class Renderer:
    """Caches projection tables and backdrops per size; `render` is a pure function of the scene."""

    def __init__(self, config: WorldConfig) -> None:
        self.cfg = config
        self._views: dict[tuple[int, int], View] = {}
        self._backdrops: dict[tuple[int, int, bool], Backdrop] = {}
        hr, lw = config.half_road, LINE_WIDTH
        # Lateral positions (m) of the per-scanline road edges: rumble outer, asphalt, edge lines.
        self._edges = np.array([-hr - RUMBLE_WIDTH, hr + RUMBLE_WIDTH, -hr, hr, -hr + 0.15, -hr + 0.15 + lw,
                                hr - 0.15 - lw, hr - 0.15])
        lines = config.lane_centres()[:-1] + 0.5 * config.lane_width  # lane dividers
        dash = lines[:, None] + np.array([-0.5, 0.5, 0.5, -0.5])[None, :] * lw  # (lines, 4)
        self._n_lines = len(lines)
        count = int(config.draw_distance / (2 * RUMBLE_BAND)) + 4
        self._rumble_lat = np.tile([-1.0, 1.0, 1.0, -1.0], (count, 1)) * (hr + RUMBLE_WIDTH)  # (count, 4)
        self._dash_lat = np.tile(dash, (int(DASH_RANGE / DASH_PERIOD) + 4, 1))  # (count * lines, 4)

    def view(self, height: int, width: int) -> View:
        key = (height, width)
        if key not in self._views:
            self._views[key] = make_view(self.cfg, height, width)
        return self._views[key]

    def backdrop(self, view: View, night: bool) -> Backdrop:
        key = (view.height, view.width, night)
        if key not in self._backdrops:
            self._backdrops[key] = make_backdrop(view, night)
        return self._backdrops[key]

    def render(self, scene: Scene, height: int, width: int, draw_vehicles: bool = True) -> tuple[np.ndarray, Boxes]:
        view = self.view(height, width)
        bd = self.backdrop(view, scene.night)
        ego, h, w = scene.ego, view.height, view.width
        img = np.empty((h, w, 3), np.uint8)
        off = int(round((ego.road_yaw + ego.heading) * view.f)) % bd.period
        img[: view.row0] = bd.sky[:, off: off + w]
        band = (np.floor((ego.s + view.rows_d) * (1.0 / GRASS_BAND)).astype(np.int64) & 1)
        img[view.row0:] = GRASS[band][:, None, :]
        self._draw_road(img, view, scene)
        light = None
        if scene.night:
            light = self._light_map(view, bd, scene)
            ground = img[view.row0:]
            cv2.multiply(ground, light, dst=ground, scale=1.0 / 128.0)
        if view.haze_rows:
            hz = img[view.row0: view.row0 + view.haze_rows]
            hz[:] = hz * (1.0 - view.haze_alpha) + (bd.haze * view.haze_alpha + 0.5)
        boxes = draw_objects(img, view, bd, scene, self.cfg, light, draw_vehicles)
        img[view.hood_top:] = bd.hood
        return img, boxes

    def _draw_road(self, img: np.ndarray, view: View, scene: Scene) -> None:
        cfg, ego, prof = self.cfg, scene.ego, scene.profile
        n = int(np.searchsorted(-view.rows_d, -cfg.draw_distance))  # rows beyond the draw distance
        d = view.rows_d[n:]
        if not len(d):
            return
        scale = float(1 << SHIFT)
        ys = (np.arange(view.row0 + n, view.height) * scale).astype(np.int32)
        inv = view.f * scale / d
        centre = view.cx * scale + (prof.at(d) - ego.x - ego.heading * d) * inv
        xs = (centre[:, None] + self._edges[None, :] * inv[:, None]).astype(np.int32)  # (rows, 8)

        def strip(i: int) -> np.ndarray:
            pts = np.empty((2 * len(d), 2), np.int32)
            pts[: len(d), 0], pts[len(d):, 0] = xs[:, i], xs[::-1, i + 1]
            pts[: len(d), 1], pts[len(d):, 1] = ys, ys[::-1]
            return pts

        cv2.fillPoly(img, [strip(0)], RUMBLE_A, shift=SHIFT)
        # Alternating rumble bands and the lane dashes: quads between two distances.
        d_min = max(0.5 * NEAR, float(d[-1]) - 2.0 * RUMBLE_BAND)
        r0 = np.floor((ego.s + d_min) / (2 * RUMBLE_BAND)) * 2 * RUMBLE_BAND - ego.s
        rumble = np.arange(r0, cfg.draw_distance, 2 * RUMBLE_BAND)
        k0 = np.floor((ego.s + d_min) / DASH_PERIOD) * DASH_PERIOD - ego.s
        dash = np.arange(k0, min(cfg.draw_distance, DASH_RANGE), DASH_PERIOD) if cfg.num_lanes > 1 else rumble[:0]
        n_lines = self._n_lines
        starts = np.concatenate([rumble, np.repeat(dash, n_lines)])
        ends = starts + np.concatenate([np.full(len(rumble), RUMBLE_BAND), np.full(len(dash) * n_lines, DASH_LENGTH)])
        da = np.maximum(starts, d_min)
        db = np.maximum(ends, d_min)
        dq = np.stack([da, da, db, db], axis=1)  # (quads, 4)
        lat = np.concatenate([self._rumble_lat[: len(rumble)], self._dash_lat[: len(dash) * n_lines]])  # (quads, 4)
        qx = view.cx + (lat + prof.at(dq) - ego.x - ego.heading * dq) * (view.f / dq)
        qy = view.horizon + view.camera_height * view.f / dq
        quads = np.empty(dq.shape + (2,), np.int32)  # (quads, 4, 2)
        quads[..., 0] = qx * scale
        quads[..., 1] = qy * scale
        keep = db > da
        nr = len(rumble)
        if keep[:nr].any():
            cv2.fillPoly(img, quads[:nr][keep[:nr]], RUMBLE_B, shift=SHIFT)
        cv2.fillPoly(img, [strip(2)], ASPHALT, shift=SHIFT)
        cv2.fillPoly(img, [strip(4), strip(6)], MARKING, shift=SHIFT)
        if keep[nr:].any():
            cv2.fillPoly(img, quads[nr:][keep[nr:]], MARKING, shift=SHIFT)

    def _light_map(self, view: View, bd: Backdrop, scene: Scene) -> np.ndarray:
        """Night gain of the ground rows: headlights (cached) brightened by street-light pools."""
        sc, ego = scene.scenery, scene.ego
        d = sc.s - ego.s
        sel = (sc.kind == POLE) & (d > 3.0) & (d < POOL_RANGE)
        if not sel.any():
            return bd.light
        layer = np.zeros_like(bd.light)
        d = d[sel]
        lat = sc.x[sel] - np.sign(sc.x[sel]) * 2.4
        xc = (view.cx + (lat + scene.profile.at(d) - ego.x - ego.heading * d) * view.f / d).tolist()
        y_near = view.ground_row(np.maximum(d - POOL_RADIUS, NEAR))
        y_far = view.ground_row(d + POOL_RADIUS)
        cy = (0.5 * (y_near + y_far) - view.row0).tolist()
        ay = (0.5 * (y_near - y_far)).tolist()
        ax = (POOL_RADIUS * view.f / d).tolist()
        for k in np.argsort(-d).tolist():
            if ay[k] < 0.5 or abs(xc[k] - view.cx) > view.width + ax[k]:
                continue
            for frac, val in ((1.0, 70.0), (0.6, 120.0)):
                cv2.ellipse(layer, (int(xc[k]), int(cy[k])), (max(1, int(ax[k] * frac)), max(1, int(ay[k] * frac))),
                            0, 0, 360, (val, val * 0.85, val * 0.6), -1)
        return cv2.max(bd.light, layer)
