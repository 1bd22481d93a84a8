"""Drawing primitives and roadside objects (street lights, trees, buildings) with cv2 fill
calls; colours are precomputed per object (lit and hazed) by the renderer."""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
from einops import rearrange

# Colour slots of a scenery object's colour table.
MAIN, SECOND, HIGHLIGHT, EMIT, EMIT_CORE = range(5)
NUM_SCENERY_SLOTS = 5
Colour = tuple[float, float, float]


def rect(img: np.ndarray, x1: int, y1: int, x2: int, y2: int, col: Colour | int) -> None:
    """Fill columns x1..x2-1 and rows y1..y2-1 (nothing when empty)."""
    if x2 > x1 and y2 > y1:
        cv2.rectangle(img, (x1, y1), (x2 - 1, y2 - 1), col, -1)


def quad(img: np.ndarray, pts: list[tuple[int, int]], col: Colour | int) -> None:
    cv2.fillConvexPoly(img, np.array(pts, np.int32), col)


def draw_pole(img: np.ndarray, x: float, yb: float, p: float, towards_road: int, cols: list[Colour],
              night: bool) -> None:
    half = max(0.5, 0.14 * p)
    top = yb - 8.5 * p
    rect(img, int(x - half), int(top), int(x + half) + 1, int(yb) + 1, cols[MAIN])
    end = x + towards_road * 2.4 * p
    thick = max(1, int(0.16 * p))
    cv2.line(img, (int(x), int(top)), (int(end), int(top - 0.25 * p)), cols[MAIN], thick)
    head = (int(end - 0.5 * p), int(top - 0.3 * p), int(end + 0.5 * p) + 1, int(top + 0.1 * p) + 1)
    rect(img, *head, cols[SECOND])
    if night:
        cv2.circle(img, (int(end), int(top + 0.15 * p)), max(1, int(0.7 * p)), cols[EMIT], -1)
        cv2.circle(img, (int(end), int(top + 0.1 * p)), max(1, int(0.3 * p)), cols[EMIT_CORE], -1)


def draw_tree(img: np.ndarray, x: float, yb: float, p: float, size: float, pine: bool, cols: list[Colour]) -> None:
    h = size * p
    half = max(0.5, 0.22 * p)
    if pine:
        rect(img, int(x - half), int(yb - 0.2 * h), int(x + half) + 1, int(yb) + 1, cols[MAIN])
        for lo, hi, wid, c in ((0.12, 0.7, 0.3, SECOND), (0.4, 1.0, 0.22, HIGHLIGHT)):
            base = int(yb - lo * h)
            quad(img, [(int(x - wid * h), base), (int(x + wid * h), base), (int(x), int(yb - hi * h))], cols[c])
        return
    rect(img, int(x - half), int(yb - 0.45 * h), int(x + half) + 1, int(yb) + 1, cols[MAIN])
    cy = int(yb - 0.62 * h)
    cv2.ellipse(img, (int(x), cy), (max(1, int(0.3 * h)), max(1, int(0.36 * h))), 0, 0, 360, cols[SECOND], -1)
    if h >= 6:
        cv2.ellipse(img, (int(x - 0.08 * h), int(cy - 0.1 * h)), (max(1, int(0.17 * h)), max(1, int(0.2 * h))),
                    0, 0, 360, cols[HIGHLIGHT], -1)


def window_grid(r: list[int], width_m: float, height_m: float, variant: int) -> tuple[np.ndarray, np.ndarray]:
    """Window quads (k, 4, 2) int32 on a building front and which of them are lit (k,) bool."""
    X1, Y1, X2, Y2 = r
    nx, ny = max(1, int(width_m / 3.0)), max(1, int((height_m - 1.5) / 3.3))
    px_w, px_h = (X2 - X1) / nx, (Y2 - Y1) / (height_m / 3.3)
    if px_w < 3 or px_h < 3:
        return _NO_WINDOWS
    col, row = _grid(nx, ny)  # (k,) window column and floor indices
    xa = X1 + (col + 0.25) * px_w  # (k,)
    xb = xa + 0.5 * px_w
    yb = Y2 - (row + 0.45) * px_h
    ya = yb - 0.4 * px_h
    quads = np.empty((len(col), 4, 2), np.int32)
    quads[:, 0, 0] = quads[:, 3, 0] = xa
    quads[:, 1, 0] = quads[:, 2, 0] = xb
    quads[:, 0, 1] = quads[:, 1, 1] = ya
    quads[:, 2, 1] = quads[:, 3, 1] = yb
    lit = ((_IRANGE[: len(col)] * 2654435761 + variant) >> 7) % 5 < 2
    return quads, lit


@lru_cache(maxsize=512)
def _grid(nx: int, ny: int) -> tuple[np.ndarray, np.ndarray]:
    """Column and row index of every window of an nx-by-ny grid, floor by floor."""
    row, col = np.indices((ny, nx), dtype=np.float64)
    return rearrange(col, "ny nx -> (ny nx)"), rearrange(row, "ny nx -> (ny nx)")


_IRANGE = np.arange(64 * 64, dtype=np.int64)
_NO_WINDOWS = (np.zeros((0, 4, 2), np.int32), np.zeros(0, bool))


def draw_building(img: np.ndarray, near: list[int], far: list[int], side: int, front: bool, width_m: float,
                  height_m: float, variant: int, cols: list[Colour], night: bool) -> None:
    """A building box: the side face towards the road, and the front face with windows when
    the front is ahead of the camera."""
    X1, Y1, X2, Y2 = near
    F1, G1, F2, G2 = far
    if side < 0:
        quad(img, [(X1, Y1), (X1, Y2 - 1), (F1, G2 - 1), (F1, G1)], cols[SECOND])
    elif side > 0:
        quad(img, [(X2 - 1, Y1), (X2 - 1, Y2 - 1), (F2 - 1, G2 - 1), (F2 - 1, G1)], cols[SECOND])
    if not front:
        return
    rect(img, X1, Y1, X2, Y2, cols[MAIN])
    quads, lit = window_grid(near, width_m, height_m, variant)
    if len(quads):
        if night:
            cv2.fillPoly(img, quads[~lit], cols[HIGHLIGHT])
            cv2.fillPoly(img, quads[lit], cols[EMIT])
        else:
            cv2.fillPoly(img, quads, cols[HIGHLIGHT])
