"""Roadside objects (street lights, trees, buildings), generated chunk by chunk ahead.

The road passes through zones (rural / suburban / urban, 300-800 m each) that set how
dense trees, buildings and street lights are. Objects are static; they stream past at the
ego speed because the camera moves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

POLE, TREE, PINE, BUILDING = 0, 1, 2, 3
NUM_BUILDING_COLOURS, NUM_TREE_COLOURS = 6, 3
CHUNK = 20.0
RURAL, SUBURBAN, URBAN = 0, 1, 2
POLE_SPACING = {RURAL: 60.0, SUBURBAN: 40.0, URBAN: 30.0}
TREES_PER_CHUNK = {RURAL: 1.6, SUBURBAN: 0.8, URBAN: 0.25}
BUILDING_PROB = {RURAL: 0.04, SUBURBAN: 0.5, URBAN: 0.95}


@dataclass
class Scenery:
    """Structure of arrays; s is the near end along the road, x the lateral centre (m)."""

    s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    x: np.ndarray = field(default_factory=lambda: np.zeros(0))
    kind: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    width: np.ndarray = field(default_factory=lambda: np.zeros(0))  # lateral extent
    height: np.ndarray = field(default_factory=lambda: np.zeros(0))
    depth: np.ndarray = field(default_factory=lambda: np.zeros(0))  # extent along the road
    colour: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    variant: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    _FIELDS = ("s", "x", "kind", "width", "height", "depth", "colour", "variant")

    def __len__(self) -> int:
        return int(self.s.shape[0])

    def keep(self, mask: np.ndarray) -> None:
        for name in self._FIELDS:
            setattr(self, name, getattr(self, name)[mask])

    def extend_with(self, rows: list[tuple[float, float, int, float, float, float, int, int]]) -> None:
        if not rows:
            return
        cols = list(zip(*rows))
        for name, col in zip(self._FIELDS, cols):
            arr = getattr(self, name)
            setattr(self, name, np.concatenate([arr, np.asarray(col, dtype=arr.dtype)]))


class SceneryGenerator:
    """Creates scenery ahead of the ego car with the world's rng; drops what is behind it."""

    def __init__(self, rng: np.random.Generator, half_road: float) -> None:
        self._rng = rng
        self._half_road = half_road
        self._next_chunk = -40.0
        self._zone = int(rng.integers(0, 3))
        self._zone_end = float(rng.uniform(200.0, 800.0))
        self._building_free = {-1: -1.0e9, 1: -1.0e9}
        self.objects = Scenery()

    def update(self, s_ego: float, ahead: float) -> None:
        rows: list[tuple[float, float, int, float, float, float, int, int]] = []
        while self._next_chunk < s_ego + ahead:
            rows.extend(self._chunk(self._next_chunk))
            self._next_chunk += CHUNK
        self.objects.extend_with(rows)
        behind = self.objects.s + self.objects.depth < s_ego - 5.0
        if behind.any():
            self.objects.keep(~behind)

    def _chunk(self, a: float) -> list[tuple[float, float, int, float, float, float, int, int]]:
        rng, hr = self._rng, self._half_road
        if a >= self._zone_end:
            self._zone = int((self._zone + rng.choice([1, 2])) % 3)
            self._zone_end = a + float(rng.uniform(300.0, 800.0))
        zone = self._zone
        rows = []
        spacing = POLE_SPACING[zone]
        for k in range(int(np.ceil(a / spacing)), int(np.ceil((a + CHUNK) / spacing))):
            s = k * spacing
            sides = (1, -1) if zone != RURAL else (1,)
            for side in sides:
                offset = 0.5 * spacing if (side < 0 and zone == URBAN) else 0.0
                rows.append((s + offset, side * (hr + 1.6), POLE, 0.3, 8.5, 0.3, 0, 0))
        for _ in range(int(rng.poisson(TREES_PER_CHUNK[zone]))):
            side = 1 if rng.random() < 0.5 else -1
            kind = PINE if rng.random() < 0.35 else TREE
            size = float(rng.uniform(4.0, 9.0))
            lateral = hr + float(rng.uniform(3.0, 16.0)) + (8.0 if zone == URBAN else 0.0)
            rows.append((a + float(rng.uniform(0.0, CHUNK)), side * lateral, kind, size * 0.55, size, 1.0,
                         int(rng.integers(0, NUM_TREE_COLOURS)), 0))
        for side in (-1, 1):
            if rng.random() >= BUILDING_PROB[zone] or self._building_free[side] > a:
                continue
            if zone == URBAN:
                w, h, dep, near = rng.uniform(12, 25), rng.uniform(12, 40), rng.uniform(15, 30), rng.uniform(5, 9)
            else:
                w, h, dep, near = rng.uniform(8, 14), rng.uniform(5, 11), rng.uniform(8, 16), rng.uniform(9, 18)
            s0 = a + float(rng.uniform(0.0, CHUNK * 0.5))
            self._building_free[side] = s0 + dep + float(rng.uniform(2.0, 12.0))
            rows.append((s0, side * (hr + near + 0.5 * w), BUILDING, float(w), float(h), float(dep),
                         int(rng.integers(0, NUM_BUILDING_COLOURS)), int(rng.integers(0, 1 << 30))))
        return rows
