"""Per-object colour tables: albedo lookup tables (built once) and shading (vectorised over
objects): albedo x light, hazed with distance; emissive slots (tail lights at night, lamps,
lit windows) ignore the light and take half the haze."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from drivesim.world import palette as pal
from drivesim.world import sprites as sp
from drivesim.world import vehicles as vh
from drivesim.world.scenery import BUILDING, PINE, POLE, TREE
from drivesim.world.traffic import CAR, TRUCK

NUM_COLOURS = 8


@lru_cache(maxsize=2)
def vehicle_albedo(night: bool) -> np.ndarray:
    """(class, colour, braking, vehicles.NUM_SLOTS, 3) albedo table."""
    lut = np.zeros((2, NUM_COLOURS, 2, vh.NUM_SLOTS, 3))
    glass = pal.GLASS_NIGHT if night else pal.GLASS_DAY
    for cls, table in ((CAR, pal.CAR_COLOURS), (TRUCK, pal.TRUCK_COLOURS)):
        for c in range(NUM_COLOURS):
            body = table[c % len(table)]
            for brake in (0, 1):
                e = lut[cls, c, brake]
                e[vh.BODY], e[vh.SIDE] = body, body * 0.66
                e[vh.DETAIL] = body * (0.72 if cls == TRUCK else 0.8)
                e[vh.GLASS], e[vh.SIDE_GLASS] = glass, glass * 0.75
                e[vh.TYRE], e[vh.UNDER], e[vh.PLATE] = pal.TYRE, pal.UNDERBODY, pal.PLATE
                e[vh.ROOF] = np.minimum(body * 1.12 + 10.0, 255.0)
                if night:
                    e[vh.TAIL] = pal.BRAKE_NIGHT if brake else pal.TAIL_NIGHT
                    e[vh.GLOW] = pal.TAIL_NIGHT if brake else pal.TAIL_GLOW
                else:
                    e[vh.TAIL] = pal.BRAKE_DAY if brake else pal.TAIL_DAY
                    e[vh.GLOW] = pal.UNDERBODY if cls == TRUCK else body
    return lut


@lru_cache(maxsize=2)
def scenery_albedo(night: bool) -> np.ndarray:
    """(kind, colour, sprites.NUM_SCENERY_SLOTS, 3) albedo table."""
    lut = np.zeros((4, NUM_COLOURS, sp.NUM_SCENERY_SLOTS, 3))
    window = pal.WINDOW_DARK if night else pal.WINDOW_DAY
    for c in range(NUM_COLOURS):
        canopy = pal.CANOPY_COLOURS[c % len(pal.CANOPY_COLOURS)]
        facade = pal.BUILDING_COLOURS[c % len(pal.BUILDING_COLOURS)]
        lut[POLE, c] = [pal.POLE_GREY, pal.LAMP_CORE if night else pal.LAMP_OFF, pal.LAMP_OFF, pal.LAMP_GLOW,
                        pal.LAMP_CORE]
        lut[TREE, c, :3] = [pal.TRUNK, canopy, np.minimum(canopy * 1.25, 255)]
        lut[PINE, c, :3] = [pal.TRUNK, canopy * 0.75, canopy * 0.95]
        lut[BUILDING, c] = [facade, facade * 0.7, window, pal.WINDOW_LIT, pal.WINDOW_LIT]
    return lut


VEHICLE_EMISSIVE = {False: np.zeros(vh.NUM_SLOTS, bool), True: np.isin(np.arange(vh.NUM_SLOTS), [vh.TAIL, vh.GLOW])}
SCENERY_EMISSIVE = np.isin(np.arange(sp.NUM_SCENERY_SLOTS), [sp.EMIT, sp.EMIT_CORE])


def shade(alb: np.ndarray, emissive: np.ndarray, haze_w: np.ndarray, haze: np.ndarray,
          light: np.ndarray | None) -> np.ndarray:
    """alb (n, k, 3), emissive (k,) bool, haze_w (n,), light (n, 3) or None (= 1) -> (n, k, 3)."""
    em = emissive[None, :, None]  # (1, k, 1)
    a = haze_w[:, None, None] * np.where(em, 0.5, 1.0)  # (n, k, 1)
    lit = alb if light is None else alb * np.where(em, 1.0, light[:, None, :])
    return np.minimum(lit * (1.0 - a) + haze * a, 255.0)
