"""Vehicle shapes: each vehicle is two boxes seen from behind.

car:   body (full length, 0 .. 0.62 h) and a narrower, shorter cabin on top (0.62 h .. h);
truck: chassis (0 .. 0.3 h, slightly narrower) and the trailer box on it (0.3 h .. h).
Near faces carry the details: tyres, bumper, tail lights, number plate, rear window; a
trailer has door frames. Everything a vehicle draws lies inside its tight box `bbox`, and
touches each of its edges, so boxes exactly cover the vehicle's pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

from drivesim.world.sprites import Colour, rect

# Colour slots of a vehicle's colour table.
BODY, SIDE, DETAIL, GLASS, TYRE, UNDER, PLATE, TAIL, GLOW, SIDE_GLASS, ROOF = range(11)
NUM_SLOTS = 11
# Per class: (z0, z1, start, length, width) of the lower and upper box, as fractions of the
# class height, length and width.
PARTS = np.array([
    [[0.0, 0.62, 0.0, 1.0, 1.0], [0.62, 1.0, 0.2, 0.5, 0.8]],  # car: body, cabin
    [[0.0, 0.3, 0.0, 1.0, 0.92], [0.3, 1.0, 0.0, 1.0, 1.0]],  # truck: chassis, trailer
])


def _faces(img: np.ndarray, side: np.ndarray | None, top: np.ndarray | None, side_col: Colour,
           top_col: Colour) -> None:
    if side is not None:
        cv2.fillConvexPoly(img, side, side_col)
    if top is not None:
        cv2.fillConvexPoly(img, top, top_col)


def draw_silhouette(buf: np.ndarray, quads: list[np.ndarray], ident: int) -> None:
    """Write `ident` over every pixel the vehicle covers (for occlusion counting)."""
    cv2.fillPoly(buf, quads, ident)


def draw_vehicle(img: np.ndarray, truck: bool, near_l: list[int], near_u: list[int], faces: list[np.ndarray | None],
                 cols: list[Colour]) -> None:
    """Draw one vehicle: near_l / near_u are the lower / upper box's near face (X1, Y1, X2, Y2);
    faces the side and top quads (4, 2) of the lower box, then of the upper box (None if hidden)."""
    side_l, top_l, side_u, top_u = faces
    X1, Y1, X2, Y2 = near_l
    bw, bh = X2 - X1, Y2 - Y1

    def U(u: float) -> int:
        return X1 + int(u * bw + 0.5)

    def V(v: float) -> int:  # row at height fraction v of the lower near face
        return Y2 - int(v * bh + 0.5)

    if truck:
        _faces(img, side_l, None, cols[UNDER], cols[UNDER])
        _faces(img, side_u, top_u, cols[SIDE], cols[ROOF])
        rect(img, X1, Y1, X2, Y2, cols[UNDER])
        T1, S1, T2, S2 = near_u
        rect(img, T1, S1, T2, S2, cols[BODY])
        tyre_top = V(0.85)
        rect(img, X1, tyre_top, U(0.28), Y2, cols[TYRE])
        rect(img, U(0.72), tyre_top, X2, Y2, cols[TYRE])
        if T2 - T1 >= 8:
            t = max(1, int(0.035 * (T2 - T1)))
            for x_a, y_a, x_b, y_b in ((T1, S1, T2, S1 + t), (T1, S2 - t, T2, S2), (T1, S1, T1 + t, S2),
                                       (T2 - t, S1, T2, S2)):
                rect(img, x_a, y_a, x_b, y_b, cols[DETAIL])  # door frame, inside the trailer face
            mid = (T1 + T2) // 2
            rect(img, mid - max(1, t // 2), S1, mid + max(1, t // 2), S2, cols[DETAIL])
            rect(img, X1, V(1.0), X2, V(0.75), cols[DETAIL])
            rect(img, U(0.42), V(0.7), U(0.58), V(0.45), cols[PLATE])
        rect(img, X1, V(1.0), U(0.16), V(0.7), cols[GLOW])
        rect(img, U(0.84), V(1.0), X2, V(0.7), cols[GLOW])
        rect(img, U(0.02), V(0.96), U(0.13), V(0.76), cols[TAIL])
        rect(img, U(0.87), V(0.96), U(0.98), V(0.76), cols[TAIL])
        return
    _faces(img, side_l, top_l, cols[SIDE], cols[BODY])
    _faces(img, side_u, top_u, cols[SIDE_GLASS], cols[ROOF])
    C1, D1, C2, D2 = near_u
    rect(img, C1, D1, C2, D2, cols[BODY])
    cw, ch = C2 - C1, D2 - D1
    if cw >= 5 and ch >= 3:
        rect(img, C1 + max(1, int(0.08 * cw)), D1 + max(1, int(0.15 * ch)), C2 - max(1, int(0.08 * cw)),
             D2 - max(0, int(0.12 * ch)), cols[GLASS])
    if bw < 8:
        rect(img, X1, Y1, X2, Y2, cols[BODY])
        if bh >= 3:
            rect(img, U(0.15), V(0.3), U(0.85), Y2, cols[UNDER])
        rect(img, X1, V(0.85), U(0.25), V(0.55), cols[TAIL])
        rect(img, U(0.75), V(0.85), X2, V(0.55), cols[TAIL])
        return
    rect(img, X1, Y1, X2, Y2, cols[BODY])
    rect(img, U(0.16), V(0.32), U(0.84), Y2, cols[UNDER])
    rect(img, X1, V(0.36), U(0.2), Y2, cols[TYRE])
    rect(img, U(0.8), V(0.36), X2, Y2, cols[TYRE])
    rect(img, X1, V(0.42), X2, V(0.3), cols[DETAIL])
    rect(img, X1, Y1, U(0.3), V(0.58), cols[GLOW])
    rect(img, U(0.7), Y1, X2, V(0.58), cols[GLOW])
    rect(img, U(0.03), V(0.94), U(0.25), V(0.66), cols[TAIL])
    rect(img, U(0.75), V(0.94), U(0.97), V(0.66), cols[TAIL])
    rect(img, U(0.38), V(0.64), U(0.62), V(0.44), cols[PLATE])
