"""Travel anchoring: each new keyframe moved along the road to where the ego speed puts it
(`EngineConfig.anchor_travel`, opt-in).

Beyond the paper, for the simulator (issue 6: the accel must show in the frames). Every
prediction model so far draws about the same forward motion per keyframe whatever speed it is
told (docs/results.md, *Ego speed*, *Ego-motion warp*), and the accel is a change of that motion.
The engine knows how far the car went between the last keyframe A and the new one B (the
integrated ego speed, `drivesim.rollout.ego_speed`). Here B is decoded, the distance it actually
moved from A is read (by the model folder's learned `odometry.TravelReader` when it has one, else
fitted by `ego_warp.fit_travel`: the forward warp of A that best matches B on the road rows), and
B is warped by the difference (`ego_warp.warp_travel`, forwards or backwards; rows
a backward warp cannot show keep B) and encoded again. The model still draws everything else
(steering, other cars, new scenery); only the road's position along the direction of travel is set
by the speed. Each keyframe is warped once by a small correction, from the model's own new frame,
so the corrections do not pile up as resampling blur.

Shapes: keyframe latents (b, c, h, w) scaled, distances (b,) metres.
"""

from __future__ import annotations

import torch
from torch import Tensor

from drivesim.diffusion.ego_warp import FrameCodecLike, GroundCamera, fit_travel, warp_travel
from drivesim.rollout.odometry import TravelReader
from drivesim.rollout.warp_fill import travel_between

# Candidate distances (m) a keyframe may have moved: 0 to 6 m (45 m/s over 4 source frames at 30 fps).
TRAVEL_GRID = torch.arange(0.0, 6.0 + 1e-6, 0.2)


@torch.no_grad()
def anchor_travel(
    last: Tensor,
    new: Tensor,
    told: Tensor,
    codec: FrameCodecLike,
    camera: GroundCamera,
    grid: Tensor = TRAVEL_GRID,
    reader: TravelReader | None = None,
    gain: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """The new keyframes (b, c, h, w) moved so that they lie `told` (b,) metres ahead of the last ones
    (b, c, h, w) along the road -> (anchored latents (b, c, h, w), the travel measured before (b,) m: read by
    `reader`, or fitted over `grid` without one). `gain` < 1 moves them only that fraction of the way: the
    reading's error enters each keyframe scaled by it, and the model's own motion fills the rest."""
    if last.shape != new.shape or last.ndim != 4:
        raise ValueError(f"last {tuple(last.shape)} and new {tuple(new.shape)} keyframes must both be (b, c, h, w)")
    if told.shape != (new.shape[0],):
        raise ValueError(f"told travel has shape {tuple(told.shape)}; expected ({new.shape[0]},), metres per keyframe")
    b = new.shape[0]
    pair = codec.decode(torch.cat([last, new])).float()  # (2b) 3 H W
    before, after = pair[:b], pair[b:]
    fitted = fit_travel(before, after, grid, camera) if reader is None else reader(before, after)  # (b,)
    moved = move_along_road(after, gain * (told.to(after.device, torch.float32) - fitted), camera)
    return codec.encode(moved).to(new.dtype), fitted


def move_along_road(frames: Tensor, distance: Tensor, camera: GroundCamera) -> Tensor:
    """frames (n, 3, H, W) moved `distance` (n,) metres along the road (negative: back), as anchoring moves a
    keyframe; the rows a backward warp cannot show (the road under the bonnet) keep the frame's own."""
    moved, ok = warp_travel(frames, distance, camera)
    return ok * moved + (1.0 - ok) * frames


def told_travel(key_speeds: Tensor, stride: int, fps: float) -> Tensor:
    """(b,) metres between the last two keyframes of key_speeds (b, k >= 2) m/s, `stride` source frames
    apart at `fps` (trapezoid)."""
    if key_speeds.ndim != 2 or key_speeds.shape[1] < 2:
        raise ValueError(f"key_speeds must have shape (b, k >= 2), got {tuple(key_speeds.shape)}")
    return travel_between(key_speeds[:, -2:], 1, stride / fps)[:, 1]
