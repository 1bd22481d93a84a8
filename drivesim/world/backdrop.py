"""Per-size, per-time-of-day images computed once and reused every frame: the sky
panorama (gradient, clouds or stars and moon, distant hills; it scrolls with the ego yaw),
the night light map (ambient + the ego headlight cone on the ground), and the bonnet."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from drivesim.world import palette as pal
from drivesim.world.view import View

SKY_SEED = 20240607  # the sky is the same in every world, and at every size


@dataclass(frozen=True)
class Backdrop:
    sky: np.ndarray  # (row0, period + width, 3) uint8 panorama, wrapped by `width` columns
    period: int  # panorama columns for a full turn (2 pi f)
    light: np.ndarray | None  # (height - row0, width, 3) uint8 night gain, 128 = x1; None by day
    hood: np.ndarray  # (height - hood_top, width, 3) uint8
    haze: np.ndarray  # (3,) float32 haze colour


def _hills(theta: np.ndarray, rng: np.random.Generator, base: float, amps: tuple[float, ...]) -> np.ndarray:
    out = np.full_like(theta, base)
    for k, amp in enumerate(amps):
        freq = int(rng.integers(2 + 3 * k, 5 + 4 * k))
        out += amp * np.sin(freq * theta + rng.uniform(0, 2 * np.pi))
    return out


def make_sky(view: View, night: bool) -> tuple[np.ndarray, int]:
    rng = np.random.default_rng(SKY_SEED)
    f, h, w = view.f, view.row0, view.width
    period = int(round(2 * np.pi * f))
    theta = np.arange(period) / f  # azimuth of each column
    elev = (view.horizon - (np.arange(h) + 0.5)) / f  # elevation of each row (rad)
    top, horizon = (pal.SKY_NIGHT_TOP, pal.SKY_NIGHT_HORIZON) if night else (pal.SKY_DAY_TOP, pal.SKY_DAY_HORIZON)
    t = np.clip(elev / max(elev[0], 1e-6), 0.0, 1.0) ** 0.6
    column = horizon[None, :] * (1 - t[:, None]) + top[None, :] * t[:, None]  # (h, 3)
    sky = np.repeat(column[:, None, :], period, axis=1)  # (h, period, 3)
    if night:
        n = 420
        sx = (rng.uniform(0, 2 * np.pi, n) * f).astype(int) % period
        sel = rng.uniform(0.03, 0.75, n)
        sy = np.round(view.horizon - sel * f - 0.5).astype(int)
        bright = rng.uniform(70, 255, n) * np.clip(sel * 6, 0.3, 1.0)
        ok = (sy >= 0) & (sy < h)
        sky[sy[ok], sx[ok]] = np.maximum(sky[sy[ok], sx[ok]], bright[ok, None] * np.array([1.0, 1.0, 0.92]))
        cv2.circle(sky, (int(2.0 * f), int(view.horizon - 0.28 * f)), max(1, int(0.03 * f)), (236, 234, 214),
                   -1, cv2.LINE_AA)
    else:
        alpha = np.zeros((h, period), np.float32)
        for _ in range(16):
            c_theta, c_elev, size = rng.uniform(0.2, 2 * np.pi - 0.4), rng.uniform(0.06, 0.32), rng.uniform(0.03, 0.08)
            for _ in range(int(rng.integers(3, 6))):
                cx = int((c_theta + rng.uniform(-1.2, 1.2) * size) * f)
                cy = int(view.horizon - (c_elev + rng.uniform(-0.2, 0.3) * size) * f)
                axes = (max(1, int(size * f * rng.uniform(0.5, 1.0))), max(1, int(size * f * rng.uniform(0.2, 0.35))))
                cv2.ellipse(alpha, (cx, cy), axes, 0, 0, 360, float(rng.uniform(0.6, 0.9)), -1)
        k = max(3, int(0.012 * f) * 2 + 1)
        alpha = cv2.GaussianBlur(alpha, (k, k), 0)[..., None]
        sky = sky * (1 - alpha) + pal.CLOUD * alpha
    far = _hills(theta, rng, 0.035, (0.018, 0.010, 0.004))
    near = _hills(theta, rng, 0.008, (0.014, 0.007, 0.003))
    far_col, near_col = (pal.HILLS_NIGHT_FAR, pal.HILLS_NIGHT_NEAR) if night else (pal.HILLS_DAY_FAR,
                                                                                   pal.HILLS_DAY_NEAR)
    sky = np.where((elev[:, None] < far[None, :])[..., None], far_col, sky)
    sky = np.where((elev[:, None] < near[None, :])[..., None], near_col, sky)
    if night:  # a few lit windows of far-away towns on the hills
        n = 160
        lx = (rng.uniform(0, 2 * np.pi, n) * f).astype(int) % period
        le = near[lx] * rng.uniform(0.1, 0.9, n)
        ly = np.round(view.horizon - le * f - 0.5).astype(int)
        ok = (ly >= 0) & (ly < h)
        sky[ly[ok], lx[ok]] = pal.WINDOW_LIT * rng.uniform(0.3, 0.8, n)[ok, None]
    sky = np.clip(sky, 0, 255).astype(np.uint8)
    wrapped = np.concatenate([sky, sky[:, :w]], axis=1)  # (h, period + w, 3)
    return np.ascontiguousarray(wrapped), period


def make_light(view: View) -> np.ndarray:
    """Night gain of every ground pixel: ambient plus the ego headlight cone (128 = x1)."""
    d = view.rows_d[:, None]  # (rows, 1)
    lateral = (np.arange(view.width)[None, :] + 0.5 - view.cx) * d / view.f  # (rows, w) metres
    spread = 1.0 + 0.17 * d
    beam = np.exp(-0.5 * ((lateral - 0.5) / spread) ** 4) / (1.0 + (d / 28.0) ** 2)
    gain = pal.AMBIENT_NIGHT + 1.0 * beam[..., None] * pal.HEADLIGHT  # (rows, w, 3)
    return np.clip(gain * 128.0, 0, 255).astype(np.uint8)


def make_hood(view: View, night: bool) -> np.ndarray:
    rows = view.height - view.hood_top
    t = np.linspace(0.0, 1.0, max(rows, 1))[:, None]
    base = pal.HOOD_NIGHT if night else pal.HOOD_DAY
    column = base * (1.25 - 0.45 * t)  # lighter at the top edge (reflection of the sky)
    hood = np.repeat(column[:, None, :], view.width, axis=1)  # (rows, w, 3)
    x = (np.arange(view.width) + 0.5 - view.cx) / view.cx
    hood *= (1.0 - 0.25 * x**2)[None, :, None]
    if rows >= 3:
        hood[0] = np.minimum(base * 2.0 + 30.0, 255)
    return np.clip(hood, 0, 255).astype(np.uint8)


def make_backdrop(view: View, night: bool) -> Backdrop:
    sky, period = make_sky(view, night)
    return Backdrop(
        sky=sky, period=period, light=make_light(view) if night else None, hood=make_hood(view, night),
        haze=(pal.HAZE_NIGHT if night else pal.HAZE_DAY).astype(np.float32),
    )
