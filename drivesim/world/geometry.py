"""Screen geometry of boxes on or beside the road (vehicle bodies and cabins, buildings).

A box spans distance d .. d + length along the road, lateral centre x, width, and heights
z0 .. z1 above the road. Seen from the camera (behind it) its near face is always visible,
the side face towards the camera when the box is off to one side, and the top face when the
camera is above z1. Faces are drawn as polygons whose vertices are integer pixel positions:
the near face covers columns X1 .. X2-1 and rows Y1 .. Y2-1 (`near`), the far face likewise
(`far`), and the side/top faces join their corner pixels. `bbox` is the tight box of all
visible faces (x2, y2 exclusive), before clipping to the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from drivesim.world.ego import EgoCar
from drivesim.world.road import RoadProfile
from drivesim.world.view import View


@dataclass(frozen=True)
class BoxFaces:
    near: np.ndarray  # (n, 4) int64 X1, Y1, X2, Y2 of the near face (exclusive ends)
    far: np.ndarray  # (n, 4) int64 the same for the far face
    side: np.ndarray  # (n,) int64: -1 left face visible, +1 right face visible, 0 none
    top: np.ndarray  # (n,) bool: top face visible
    bbox: np.ndarray  # (n, 4) int64 tight box x1, y1, x2, y2 (exclusive ends), unclipped


def camera_lateral(view: View, prof: RoadProfile, ego: EgoCar, d: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Lateral camera-frame position (m) of road point (distance d ahead, offset x)."""
    return x + prof.at(d) - ego.x - ego.heading * d


def _face(view: View, lat: np.ndarray, d: np.ndarray, width: np.ndarray, z0: np.ndarray,
          z1: np.ndarray) -> np.ndarray:
    """(n, 4) int64 X1, Y1, X2, Y2 of the face at distance d (d >= view.NEAR keeps them bounded)."""
    p = view.f / d
    xc = view.cx + 0.5 + lat * p
    half = 0.5 * width * p
    out = np.empty((len(d), 4), np.int64)
    out[:, 0] = np.floor(xc - half)
    out[:, 2] = np.maximum(np.floor(xc + half), out[:, 0] + 1)
    y0 = view.horizon + 0.5 + view.camera_height * p
    out[:, 1] = np.floor(y0 - z1 * p)
    out[:, 3] = np.maximum(np.floor(y0 - z0 * p), out[:, 1] + 1)
    return out


def project_box(view: View, prof: RoadProfile, ego: EgoCar, d: np.ndarray, x: np.ndarray, width: np.ndarray,
                z0: np.ndarray, z1: np.ndarray, length: np.ndarray, flat: np.ndarray | None = None) -> BoxFaces:
    """flat: (n,) bool, boxes drawn as their near face only (level of detail for tiny ones)."""
    lat = camera_lateral(view, prof, ego, d, x)
    d_far = d + length
    near = _face(view, lat, d, width, z0, z1)
    far = _face(view, camera_lateral(view, prof, ego, d_far, x), d_far, width, z0, z1)
    side = np.where(lat - 0.5 * width > 0.0, -1, np.where(lat + 0.5 * width < 0.0, 1, 0)).astype(np.int64)
    top = view.camera_height > z1
    if flat is not None:
        side = np.where(flat, 0, side)
        top = top & ~flat
    has_side = side != 0
    bbox = near.copy()
    bbox[:, 0] = np.where((side < 0) | top, np.minimum(near[:, 0], far[:, 0]), near[:, 0])
    bbox[:, 2] = np.where((side > 0) | top, np.maximum(near[:, 2], far[:, 2]), near[:, 2])
    bbox[:, 1] = np.where(has_side | top, np.minimum(near[:, 1], far[:, 1]), near[:, 1])
    bbox[:, 3] = np.where(has_side, np.maximum(near[:, 3], far[:, 3]), near[:, 3])
    return BoxFaces(near=near, far=far, side=side, top=np.asarray(top, bool), bbox=bbox)


@dataclass(frozen=True)
class FaceQuads:
    """Corner pixels (n, 4, 2) int32 of each box's near, side and top face (for fill calls)."""

    near: np.ndarray
    side: np.ndarray
    top: np.ndarray


def face_quads(faces: BoxFaces) -> FaceQuads:
    X1, Y1, X2, Y2 = faces.near.T
    F1, G1, F2, G2 = faces.far.T
    n = len(X1)
    near, side, top = (np.empty((n, 4, 2), np.int32) for _ in range(3))
    near[:, 0, 0] = near[:, 3, 0] = X1
    near[:, 1, 0] = near[:, 2, 0] = X2 - 1
    near[:, 0, 1] = near[:, 1, 1] = Y1
    near[:, 2, 1] = near[:, 3, 1] = Y2 - 1
    left = faces.side < 0
    side[:, 0, 0] = side[:, 1, 0] = np.where(left, X1, X2 - 1)
    side[:, 2, 0] = side[:, 3, 0] = np.where(left, F1, F2 - 1)
    side[:, 0, 1], side[:, 1, 1], side[:, 2, 1], side[:, 3, 1] = Y1, Y2 - 1, G2 - 1, G1
    top[:, 0, 0], top[:, 1, 0], top[:, 2, 0], top[:, 3, 0] = X1, X2 - 1, F2 - 1, F1
    top[:, 0, 1] = top[:, 1, 1] = Y1
    top[:, 2, 1] = top[:, 3, 1] = G1
    return FaceQuads(near=near, side=side, top=top)
