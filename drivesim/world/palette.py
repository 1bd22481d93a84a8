"""Colours (RGB, 0-255) of the procedural world. Albedos are lit per time of day by the
renderer: by day as they are (with distance haze), by night scaled by the light reaching
them (ambient, ego headlights, street lights); emissive colours are never scaled."""

from __future__ import annotations

import numpy as np


def rgb(*values: int) -> np.ndarray:
    return np.array(values, np.float64)


CAR_COLOURS = np.array([
    (200, 30, 30), (30, 70, 185), (232, 232, 228), (168, 172, 178), (32, 32, 36), (232, 190, 30),
    (40, 130, 70), (230, 110, 30),
], np.float64)
TRUCK_COLOURS = np.array([(228, 228, 222), (222, 120, 30), (40, 80, 150), (170, 40, 35), (130, 135, 140)],
                         np.float64)
BUILDING_COLOURS = np.array([(176, 164, 150), (150, 140, 132), (120, 126, 138), (194, 182, 160),
                             (150, 112, 100), (205, 200, 190)], np.float64)
CANOPY_COLOURS = np.array([(48, 118, 48), (70, 128, 44), (36, 96, 56)], np.float64)

GRASS_A, GRASS_B = rgb(78, 142, 62), rgb(68, 130, 55)
ASPHALT = rgb(104, 104, 110)
RUMBLE_A, RUMBLE_B = rgb(205, 45, 40), rgb(236, 236, 236)
MARKING = rgb(238, 238, 228)
TRUNK, POLE_GREY, LAMP_OFF = rgb(92, 66, 42), rgb(128, 130, 136), rgb(200, 200, 190)
TYRE, UNDERBODY, PLATE = rgb(22, 22, 24), rgb(45, 45, 48), rgb(222, 222, 205)
GLASS_DAY, GLASS_NIGHT = rgb(52, 66, 84), rgb(10, 12, 18)
TAIL_DAY, BRAKE_DAY = rgb(170, 18, 18), rgb(255, 40, 30)
TAIL_NIGHT, BRAKE_NIGHT, TAIL_GLOW = rgb(255, 60, 45), rgb(255, 150, 130), rgb(150, 20, 16)
WINDOW_DAY, WINDOW_LIT, WINDOW_DARK = rgb(70, 92, 116), rgb(255, 214, 130), rgb(22, 24, 34)
LAMP_GLOW, LAMP_CORE = rgb(255, 200, 110), rgb(255, 246, 220)

SKY_DAY_TOP, SKY_DAY_HORIZON = rgb(62, 118, 205), rgb(190, 212, 234)
SKY_NIGHT_TOP, SKY_NIGHT_HORIZON = rgb(3, 5, 16), rgb(22, 26, 50)
HILLS_DAY_FAR, HILLS_DAY_NEAR = rgb(140, 166, 182), rgb(92, 128, 104)
HILLS_NIGHT_FAR, HILLS_NIGHT_NEAR = rgb(14, 16, 28), rgb(8, 10, 16)
CLOUD = rgb(246, 248, 252)
HAZE_DAY, HAZE_NIGHT = rgb(190, 212, 234), rgb(20, 23, 40)
HOOD_DAY, HOOD_NIGHT = rgb(36, 52, 82), rgb(9, 11, 16)

AMBIENT_NIGHT = 0.2  # light on a surface at night away from every lamp
HEADLIGHT = rgb(255, 246, 222) / 255.0
