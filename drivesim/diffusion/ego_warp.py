"""Ego-motion warp: the last context frame moved forward by the distance the ego car travels.

Beyond the paper, for the simulator (issue 6). Measured before this (docs/results.md, *Ego
speed*): prediction models told the ego speed as an embedding render about the same forward
motion (~11 m/s as the clip probe reads it) whatever speed they are told, so they cannot follow
the accel. Here the speed enters as geometry instead. The world's camera is a pinhole at
`camera_height` above a flat road, looking along it (`drivesim.world.view`): the ground seen at
image row y lies at distance d = f h / (y - horizon). After the car travels D metres forward, the
ground point now at distance d was at d + D, so the new frame at (x, y) shows what the old frame
showed at

    y' = horizon + f h / (d + D),    x' = cx + (x - cx) d / (d + D).

Rows at and above the horizon (sky) and on the bonnet stay where they are. The warp is a
resampling of pixels: the last given frame L is decoded, moved forward by D_j for every frame j
after it (D_j from the frames' ego speeds, trapezoid, `travel_from_last`) and encoded again
(`warp_context_latents` with a `FrameCodec`). Resampling the f = 4 latents directly does not work:
on world frames 4 source frames apart it is 8% further from the true next latents than copying
the last one, while the pixel warp is 24-28% closer (`benchmarks/ego_warp_fit.py`). The guess is
wrong where things are not on the road surface (cars, trees) and for steering and turns; the
prediction model gets it as a third masked context (v ∘ warp, v), v = 1 on frames after L, through
its own zero-initialised `ContextEncoder`, and corrects the rest.

The warp needs both the context (z_L) and the actions (the speed is part of the "actions"
condition): `VideoConditioning` zeroes it where either is nulled (guidance, dropout).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from einops import rearrange, reduce, repeat
from torch import Tensor

# The procedural world's camera (drivesim.world.config.WorldConfig defaults; a test checks they agree).
WORLD_HORIZON, WORLD_FOV_DEG, WORLD_CAMERA_HEIGHT, WORLD_HOOD = 0.42, 60.0, 1.8, 0.08


@dataclass(frozen=True)
class GroundCamera:
    """The camera the warp assumes: horizon and bonnet top as fractions of the image height,
    horizontal field of view (degrees), camera height above the road (m)."""

    horizon: float = WORLD_HORIZON
    horizontal_fov_deg: float = WORLD_FOV_DEG
    camera_height: float = WORLD_CAMERA_HEIGHT
    hood: float = WORLD_HOOD

    def __post_init__(self) -> None:
        if not 0.0 < self.horizon < 1.0:
            raise ValueError(f"GroundCamera.horizon={self.horizon} must be in (0, 1) (fraction of the height)")
        if not 0.0 < self.horizontal_fov_deg < 180.0:
            raise ValueError(f"GroundCamera.horizontal_fov_deg={self.horizontal_fov_deg} must be in (0, 180)")
        if not self.camera_height > 0.0:
            raise ValueError(f"GroundCamera.camera_height={self.camera_height} must be > 0 (m)")
        if not 0.0 <= self.hood < 1.0 - self.horizon:
            raise ValueError(
                f"GroundCamera.hood={self.hood} must be in [0, 1 - horizon={1.0 - self.horizon:.3f}) "
                "(fraction of the height covered by the bonnet)"
            )


def ground_rows(height: int, camera: GroundCamera, device: torch.device | str = "cpu") -> Tensor:
    """(height,) bool: rows whose centre lies below the horizon and above the bonnet (they see the road)."""
    y = torch.arange(height, device=device, dtype=torch.float32) + 0.5
    return (y > camera.horizon * height + 1e-3) & (y < (1.0 - camera.hood) * height)


def ground_warp(distance: Tensor, height: int, width: int, camera: GroundCamera) -> tuple[Tensor, Tensor]:
    """Sampling grid of the ego-motion warp for an image of height x width, forwards or backwards.

    distance (n,) metres travelled forward (negative: backward) -> grid (n, height, width, 2) of
    normalised (x, y) source positions for `F.grid_sample(..., align_corners=False)`, and valid
    (n, height) bool: rows whose source lies in the image where the warp is right (sky, bonnet, and
    road rows whose source is road; travelling backward, the nearest road rows come from under the
    bonnet, which the image does not show).
    """
    if distance.ndim != 1:
        raise ValueError(f"distance must have shape (n,), got {tuple(distance.shape)}")
    dev, dtype = distance.device, torch.float32
    f = 0.5 * width / math.tan(math.radians(camera.horizontal_fov_deg) / 2.0)  # focal length in pixels
    horizon, cx = camera.horizon * height, 0.5 * width
    y = torch.arange(height, device=dev, dtype=dtype) + 0.5  # pixel centres
    x = torch.arange(width, device=dev, dtype=dtype) + 0.5
    ground = rearrange(ground_rows(height, camera, dev), "h -> 1 h")  # rows that see the road
    d = rearrange(f * camera.camera_height / (y - horizon).clamp_min(1e-3), "h -> 1 h")  # road distance of each row
    dist = rearrange(distance.to(dtype), "n -> n 1")
    ahead = d + dist  # (n, h): where the ground now at d was, seen from the source frame
    ratio = torch.where(ground & (ahead > 1e-3), d / ahead.clamp_min(1e-3), torch.ones_like(ahead))  # d / (d + D)
    y_src = torch.where(ground, horizon + (rearrange(y, "h -> 1 h") - horizon) * ratio, rearrange(y, "h -> 1 h"))
    valid = ~ground | ((ahead > 1e-3) & (y_src < (1.0 - camera.hood) * height))  # (n, h)
    x_src = cx + (rearrange(x, "w -> 1 1 w") - cx) * rearrange(ratio, "n h -> n h 1")  # (n, h, w)
    gx = 2.0 * x_src / width - 1.0
    gy = repeat(2.0 * y_src / height - 1.0, "n h -> n h w", w=width)
    return torch.stack([gx, gy], dim=-1), valid  # (n, h, w, 2), (n, h)


def ground_warp_grid(distance: Tensor, height: int, width: int, camera: GroundCamera) -> Tensor:
    """Sampling grid of the forward-motion warp (`ground_warp`; distance (n,) metres, negative values
    count as 0) -> (n, height, width, 2)."""
    return ground_warp(distance.clamp_min(0.0), height, width, camera)[0]


def warp_forward(images: Tensor, distance: Tensor, camera: GroundCamera) -> Tensor:
    """images (n, c, h, w) as seen after travelling distance (n,) metres forward: (n, c, h, w)."""
    return warp_travel(images, distance.clamp_min(0.0), camera)[0]


def warp_travel(images: Tensor, distance: Tensor, camera: GroundCamera) -> tuple[Tensor, Tensor]:
    """images (n, c, h, w) as seen after travelling distance (n,) metres (negative: backward) ->
    (n, c, h, w) and the rows where that is right, valid (n, 1, h, 1) float (`ground_warp`)."""
    n, _, h, w = images.shape
    if distance.shape != (n,):
        raise ValueError(f"distance has shape {tuple(distance.shape)}; expected ({n},), one per image")
    grid, valid = ground_warp(distance, h, w, camera)
    moved = F.grid_sample(images, grid.to(images.dtype), mode="bilinear", padding_mode="border", align_corners=False)
    return moved, rearrange(valid, "n h -> n 1 h 1").to(images.dtype)


@torch.no_grad()
def fit_travel(before: Tensor, after: Tensor, grid: Tensor, camera: GroundCamera) -> Tensor:
    """(n,) metres: per pair of frames before / after (n, c, h, w), the distance of `grid` (g,) whose
    forward warp of `before` is closest to `after` (mean squared error over the road rows, from two
    rows below the horizon to the bonnet). On world keyframes 4 source frames apart it reads 0.84 of
    the true travel (other cars and steering pull it low; docs/results.md, *Ego-motion warp*)."""
    if before.shape != after.shape or before.ndim != 4:
        raise ValueError(f"before {tuple(before.shape)} and after {tuple(after.shape)} must both be (n, c, h, w)")
    n, g, h = before.shape[0], grid.numel(), before.shape[-2]
    rows = slice(int(camera.horizon * h) + 2, int((1.0 - camera.hood) * h))
    grid = grid.to(before.device, torch.float32)
    dist = repeat(grid, "g -> (n g)", n=n)
    candidates = warp_forward(repeat(before, "n c h w -> (n g) c h w", g=g), dist, camera)
    err = (rearrange(candidates, "(n g) c h w -> n g c h w", n=n) - after[:, None]) ** 2
    best = reduce(err[:, :, :, rows], "n g c h w -> n g", "mean").argmin(dim=1)  # (n,)
    return grid[best]


def frames_after_last(mask: Tensor) -> Tensor:
    """mask (b, t) context mask (given frames first) -> (b, t) bool: frames after the last given
    frame L, all False in clips with no given frame."""
    num_given = rearrange(mask.sum(dim=1).long(), "b -> b 1")
    frames = rearrange(torch.arange(mask.shape[1], device=mask.device), "t -> 1 t")
    return (frames >= num_given) & (num_given > 0)


def travel_from_last(mask: Tensor, speed: Tensor, interval: float) -> Tensor:
    """Distance (m) each frame lies ahead of its clip's last given frame L: (b, t), 0 up to L and in
    clips with no given frame. mask (b, t), speed (b, t) m/s, interval seconds between frames."""
    b, t = mask.shape
    if speed.shape != (b, t):
        raise ValueError(f"ego speed has shape {tuple(speed.shape)}; expected ({b}, {t}) like the mask")
    if not interval > 0.0:
        raise ValueError(f"frame interval {interval} must be > 0 seconds")
    v = speed.float()
    step = 0.5 * (v[:, 1:] + v[:, :-1]) * interval  # (b, t-1) metres between frames k and k + 1
    steps = torch.cat([torch.zeros((b, 1), device=v.device), step], dim=1)  # b t: step into frame k
    after = frames_after_last(mask).float()
    return torch.cumsum(steps * after, dim=1)  # steps into frames after L only


class FrameCodecLike(Protocol):
    """decode: scaled latents (n, C, h, w) -> frames (n, 3, H, W); encode: frames -> scaled latents."""

    def decode(self, z: Tensor) -> Tensor: ...

    def encode(self, x: Tensor) -> Tensor: ...


def warp_valid(mask: Tensor, actions_given: Tensor) -> Tensor:
    """(b, t) bool: frames after the last given one, in clips with context and actions."""
    return frames_after_last(mask) & rearrange(actions_given.to(device=mask.device, dtype=torch.bool), "b -> b 1")


@torch.no_grad()
def check_warp_interval(config, stage: str, stride: int, fps: float) -> None:
    """Refuse a prediction stage (its `VideoUNetConfig`) that warps by ego motion over another interval than
    the `stride` source frames at `fps` its keyframes lie apart."""
    if config.ego_warp and abs(config.warp_interval * fps - stride) > 1e-3:
        raise ValueError(
            f"prediction stage {stage!r} warps by ego motion over {config.warp_interval} s per keyframe, but its "
            f"keyframes are {stride} frames apart at {fps} fps; retrain it or fix video.warp_interval in its config"
        )


def warp_context_latents(
    latents: Tensor,
    mask: Tensor,
    speed: Tensor,
    actions_given: Tensor,
    interval: float,
    camera: GroundCamera,
    codec: FrameCodecLike,
) -> Tensor:
    """The last given frame L of each clip moved forward to every frame after it, as latents.

    latents (b, t, c, h, w) scaled context latents (only L is read), mask (b, t), speed (b, t) m/s,
    actions_given (b,) -> (b, t, c, h, w): encode(warp(decode(z_L), D_j)) on the frames of
    `warp_valid`, zero elsewhere.
    """
    distance = travel_from_last(mask, speed, interval)
    valid = warp_valid(mask, actions_given)  # b t
    out = torch.zeros_like(latents)
    clips = torch.nonzero(valid.any(dim=1)).flatten()  # clips with something to warp
    if clips.numel() == 0:
        return out
    last = mask.sum(dim=1).long()[clips] - 1  # (k,) index of L
    frames = codec.decode(latents[clips, last])  # k 3 H W
    rows, cols = torch.nonzero(valid[clips], as_tuple=True)  # pairs (clip in k, frame j)
    moved = warp_forward(frames[rows], distance[clips][rows, cols], camera)  # n 3 H W
    out[clips[rows], cols] = codec.encode(moved).to(out.dtype)
    return out
