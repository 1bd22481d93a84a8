"""Draw everything that stands on the ground (buildings, trees, street lights, vehicles) and
compute the visible vehicles' boxes.

Buildings go first (they stand behind the trees and poles, which stand between them and
the road, and behind every road user); trees, poles and vehicles follow far to near
(painter's algorithm). Each vehicle also writes its index into an occlusion buffer, as do
trees drawn after a vehicle; the bonnet clears the rows it covers. A vehicle keeps its box
(the tight box of its whole drawn shape, clipped to the image above the bonnet) if at least
one of its pixels stays uncovered; fully occluded or off-screen vehicles get none.
"""

from __future__ import annotations

import numpy as np
from einops import rearrange

from drivesim.world import sprites
from drivesim.world.backdrop import Backdrop
from drivesim.world.colours import SCENERY_EMISSIVE, VEHICLE_EMISSIVE, scenery_albedo, shade, vehicle_albedo
from drivesim.world.config import WorldConfig
from drivesim.world.geometry import face_quads, project_box
from drivesim.world.scene import Scene
from drivesim.world.scenery import BUILDING, PINE, POLE
from drivesim.world.traffic import DIMS, TRUCK
from drivesim.world.types import Boxes
from drivesim.world.vehicles import PARTS, draw_silhouette, draw_vehicle
from drivesim.world.view import NEAR, View, haze_weight

LOD_PIXELS = 4.0  # vehicles narrower than this (px) are drawn as flat near faces
VEHICLE_MIN_LIGHT = 0.35  # night: least light on a vehicle body


def _lighting(light: np.ndarray | None, view: View, xs: np.ndarray, ys: np.ndarray) -> np.ndarray | None:
    """Night gain (n, 3) at screen points (clamped into the ground rows); None by day."""
    if light is None:
        return None
    yi = np.minimum(np.maximum(ys.astype(np.int64) - view.row0, 0), light.shape[0] - 1)
    xi = np.minimum(np.maximum(xs.astype(np.int64), 0), view.width - 1)
    return light[yi, xi] * (1.0 / 128.0)


def draw_objects(img: np.ndarray, view: View, bd: Backdrop, scene: Scene, cfg: WorldConfig,
                 light: np.ndarray | None, draw_vehicles: bool) -> Boxes:
    """Draw scenery and vehicles; returns the boxes of the visible vehicles, far to near."""
    ego, prof, night = scene.ego, scene.profile, scene.night
    h, w, f = view.height, view.width, view.f

    # Scenery near enough and on screen.
    sc = scene.scenery
    d_all = sc.s - ego.s
    sel = np.flatnonzero((d_all + sc.depth > NEAR) & (d_all < cfg.scenery_distance))
    kind, ds, xw = sc.kind[sel], d_all[sel], sc.x[sel]
    hgt, wid = sc.height[sel], sc.width[sel]
    dn = np.maximum(ds, NEAR)
    p = f / dn
    xs = view.cx + (xw + prof.at(dn) - ego.x - ego.heading * dn) * p
    ys = view.horizon + view.camera_height * p
    reach = (wid + hgt) * p
    building = kind == BUILDING
    on = (xs + reach > 0) & (xs - reach < w) & (building | (ds > NEAR))
    bsel = np.flatnonzero(on & building)

    # Vehicles near enough.
    tr = scene.traffic
    d_tr = tr.s - ego.s
    vsel = np.flatnonzero((d_tr > NEAR) & (d_tr < cfg.vehicle_distance)) if draw_vehicles else sel[:0]
    nb, nv = len(bsel), len(vsel)

    # One projection for all boxes: buildings, vehicle lower parts, vehicle upper parts.
    if nb + nv:
        cls = tr.cls[vsel]
        dims, parts = DIMS[cls], PARTS[cls]  # (nv, 3), (nv, 2, 5)
        length, width, height = dims[:, 0:1], dims[:, 1:2], dims[:, 2:3]  # (nv, 1)
        dv, xv = d_tr[vsel], tr.x[vsel]
        tiny = width[:, 0] * (f / dv) < LOD_PIXELS  # near face only: side/top would be sub-pixel
        scale = np.concatenate([height, height, length, length, width], axis=1)  # (nv, 5) per PARTS field
        d_ = parts * scale[:, None, :]  # (nv, 2, 5) metres: z0, z1, start, length, width
        z0, z1, start, ln, wd = rearrange(d_, "v part field -> field (part v)")  # all lower, then all upper
        faces = project_box(
            view, prof, ego,
            np.concatenate([dn[bsel], np.concatenate([dv, dv]) + start]),
            np.concatenate([xw[bsel], xv, xv]),
            np.concatenate([wid[bsel], wd]),
            np.concatenate([np.zeros(nb), z0]),
            np.concatenate([hgt[bsel], z1]),
            np.concatenate([(ds + sc.depth[sel] - dn)[bsel], ln]),
            flat=np.concatenate([np.zeros(nb, bool), tiny, tiny]),
        )
        near, far, side, top = faces.near.tolist(), faces.far.tolist(), faces.side.tolist(), faces.top.tolist()
        quads = face_quads(faces)

    # Scenery colours, then buildings far to near.
    if len(sel):
        cols_sc = shade(scenery_albedo(night)[kind, sc.colour[sel]], SCENERY_EMISSIVE,
                        haze_weight(dn, cfg.draw_distance), bd.haze, _lighting(light, view, xs, ys))
        if night:
            cols_sc[kind == POLE] = np.maximum(cols_sc[kind == POLE], 0.9 * scenery_albedo(True)[POLE, 0])
        cols_sc = cols_sc.tolist()
    for j in np.argsort(-dn[bsel]).tolist():
        k = int(bsel[j])
        sprites.draw_building(img, near[j], far[j], side[j], bool(ds[k] >= NEAR), float(wid[k]), float(hgt[k]),
                              int(sc.variant[sel[k]]), cols_sc[k], night)

    # Vehicles on screen, their colours.
    if nv:
        lo = slice(nb, nb + nv)
        up = slice(nb + nv, nb + 2 * nv)
        bb = np.concatenate([np.minimum(faces.bbox[lo, :2], faces.bbox[up, :2]),
                             np.maximum(faces.bbox[lo, 2:], faces.bbox[up, 2:])], axis=1)
        vis = np.flatnonzero((bb[:, 2] > 0) & (bb[:, 0] < w) & (bb[:, 1] < view.hood_top) & (bb[:, 3] > 0))
        bb, vsel, dv = bb[vis], vsel[vis], dv[vis]
        near_l = faces.near[nb + vis]
        lit = _lighting(light, view, 0.5 * (near_l[:, 0] + near_l[:, 2]), near_l[:, 3])
        if lit is not None:
            lit = np.maximum(lit, VEHICLE_MIN_LIGHT)  # spill of the headlights and street lights
        alb = vehicle_albedo(night)[tr.cls[vsel], tr.colour[vsel], tr.braking[vsel].astype(np.int64)]
        cols_v = shade(alb, VEHICLE_EMISSIVE[night], haze_weight(dv, cfg.draw_distance), bd.haze, lit).tolist()
        trucks = (tr.cls[vsel] == TRUCK).tolist()
        lo_i = (nb + vis).tolist()
        up_i = (nb + nv + vis).tolist()
    else:
        dv = np.zeros(0)

    # Trees, poles and vehicles far to near; vehicle items are numbered after the scenery.
    others = np.flatnonzero(on & ~building)
    n_sel = len(sel)
    keys = np.concatenate([ds[others], dv])
    items = np.concatenate([others, n_sel + np.arange(len(dv))])[np.argsort(-keys, kind="stable")].tolist()
    idbuf = np.zeros((h, w), np.uint8) if len(dv) else None
    xs_l, ys_l, p_l, hgt_l, kind_l = xs.tolist(), ys.tolist(), p.tolist(), hgt.tolist(), kind.tolist()
    side_l = np.sign(xw).tolist()
    drawn_vehicle = False
    for item in items:
        if item >= n_sel:
            j = item - n_sel
            a, b = lo_i[j], up_i[j]
            fq = [quads.side[a] if side[a] else None, quads.top[a] if top[a] else None,
                  quads.side[b] if side[b] else None, quads.top[b] if top[b] else None]
            draw_vehicle(img, trucks[j], near[a], near[b], fq, cols_v[j])
            draw_silhouette(idbuf, [quads.near[a], quads.near[b]] + [q for q in fq if q is not None], j + 1)
            drawn_vehicle = True
        elif kind_l[item] == POLE:
            sprites.draw_pole(img, xs_l[item], ys_l[item], p_l[item], -int(side_l[item]), cols_sc[item], night)
        else:
            pine = kind_l[item] == PINE
            sprites.draw_tree(img, xs_l[item], ys_l[item], p_l[item], hgt_l[item], pine, cols_sc[item])
            if drawn_vehicle:
                sprites.draw_tree(idbuf, xs_l[item], ys_l[item], p_l[item], hgt_l[item], pine, [0] * 5)
    if not len(dv):
        return Boxes.empty((h, w))
    idbuf[view.hood_top:] = 0
    counts = np.bincount(rearrange(idbuf, "h w -> (h w)"), minlength=len(dv) + 1)[1:]  # visible pixels
    xyxy = np.empty((len(dv), 4), np.float32)
    xyxy[:, 0] = np.minimum(np.maximum(bb[:, 0], 0), w)
    xyxy[:, 1] = np.minimum(np.maximum(bb[:, 1], 0), view.hood_top)
    xyxy[:, 2] = np.minimum(np.maximum(bb[:, 2], 0), w)
    xyxy[:, 3] = np.minimum(np.maximum(bb[:, 3], 0), view.hood_top)
    order = np.argsort(-dv, kind="stable")
    order = order[((counts > 0) & (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1]))[order]]
    return Boxes(xyxy=xyxy[order], classes=tr.cls[vsel][order].astype(np.int64),
                 track_ids=tr.track[vsel][order].astype(np.int64), image_size=(h, w))
