"""Filling the frames between keyframes by the ego-motion warp (`EngineConfig.fill="warp"`).

Beyond the paper, for the simulator (issue 6: the accel must show in the frames). Measured with
`benchmarks/action_pipeline.py`: on world clips driven by `PatternDriver`s, the action probe reads
the accel off the world's own video at r 0.83 and off its decoded latents at 0.83, but off the
true stride-4 keyframes filled by the interpolation model only at 0.42 (blended linearly: 0.60).
The accel is the change of the forward motion, so where the in-between frames put the road
matters; neither fill knows how fast the car goes. This one does: the engine knows the ego speed
of every keyframe (`drivesim.rollout.ego_speed`), so frame j of m after keyframe A lies D_j metres
ahead of A and D_m - D_j behind keyframe B (speeds linear between the keyframes, trapezoid). It
is A moved forward by D_j and B moved back by D_m - D_j (`ego_warp.warp_travel`, pixels),
blended with weights 1 - j/m and j/m (B's weight is zero on rows it cannot show: travelling back,
the nearest road comes from under the bonnet). Like linear blending it ghosts what the warp gets
wrong (other cars, steering); unlike it, the road moves as the speed says.

Shapes: keys (b, k, c, h, w) scaled latents, key speeds (b, k) m/s, frames (b, n, 3, H, W) in [-1, 1].
"""

from __future__ import annotations

import torch
from einops import rearrange, repeat
from torch import Tensor

from drivesim.diffusion.ego_warp import FrameCodecLike, GroundCamera, warp_travel
from drivesim.rollout.ego_speed import between_keyframes


def travel_between(key_speeds: Tensor, num_frames: int, interval: float) -> Tensor:
    """Metres from keyframe A to each of the frames 0..num_frames up to keyframe B: (b, num_frames + 1).
    key_speeds (b, 2) m/s of A and B, the speed linear in between; interval seconds between frames."""
    if key_speeds.ndim != 2 or key_speeds.shape[1] != 2:
        raise ValueError(f"key_speeds must have shape (b, 2) [A, B] in m/s, got {tuple(key_speeds.shape)}")
    if num_frames < 1 or not interval > 0.0:
        raise ValueError(f"num_frames={num_frames} must be >= 1 and interval={interval} > 0 seconds")
    speed = between_keyframes(key_speeds, num_frames)  # b (m + 1)
    step = 0.5 * (speed[:, 1:] + speed[:, :-1]) * interval  # b m
    return torch.cat([torch.zeros_like(speed[:, :1]), torch.cumsum(step, dim=1)], dim=1)


@torch.no_grad()
def warp_between(first: Tensor, last: Tensor, travel: Tensor, camera: GroundCamera) -> Tensor:
    """The frames strictly between first (b, 3, H, W) and last (b, 3, H, W): (b, m - 1, 3, H, W), frame
    j = the blend of first moved forward travel[:, j] and last moved back travel[:, m] - travel[:, j]
    (travel (b, m + 1) metres from first, as `travel_between`)."""
    b, m = first.shape[0], travel.shape[1] - 1
    if m < 2:
        return first.new_zeros((b, 0, *first.shape[1:]))
    j = torch.arange(1, m, device=first.device)
    ahead = rearrange(travel[:, 1:m], "b j -> (b j)")
    behind = rearrange(travel[:, 1:m] - travel[:, m:], "b j -> (b j)")  # <= 0
    fwd, _ = warp_travel(repeat(first, "b c h w -> (b j) c h w", j=m - 1), ahead, camera)
    bwd, ok = warp_travel(repeat(last, "b c h w -> (b j) c h w", j=m - 1), behind, camera)
    frac = repeat(j.to(first.dtype) / m, "j -> (b j) 1 1 1", b=b)  # time fraction from first to last
    w_last = frac * ok  # nothing from last where it cannot see the road
    mixed = ((1.0 - frac) * fwd + w_last * bwd) / (1.0 - frac + w_last)
    return rearrange(mixed, "(b j) c h w -> b j c h w", b=b)


@torch.no_grad()
def warp_fill(
    keys: Tensor, key_speeds: Tensor, num_frames: int, interval: float, codec: FrameCodecLike, camera: GroundCamera
) -> Tensor:
    """keys (b, k, c, h, w) -> the (b, num_frames, c, h, w) latents after keys[:, -2] up to and including
    keys[:, -1]: the in-between frames warped in pixels (`warp_between`) and encoded again. key_speeds
    (b, k) m/s of the keys; interval seconds between output frames."""
    if keys.ndim != 5 or keys.shape[1] < 2:
        raise ValueError(f"keys must have shape (b, k >= 2, c, h, w), got {tuple(keys.shape)}")
    if key_speeds.shape != keys.shape[:2]:
        raise ValueError(f"key_speeds has shape {tuple(key_speeds.shape)}; expected {tuple(keys.shape[:2])}")
    b = keys.shape[0]
    travel = travel_between(key_speeds[:, -2:].to(keys.device), num_frames, interval)  # b (m + 1)
    pair = codec.decode(rearrange(keys[:, -2:], "b k c h w -> (b k) c h w")).float()
    pair = rearrange(pair, "(b k) c h w -> b k c h w", b=b)
    mid = warp_between(pair[:, 0], pair[:, 1], travel, camera)  # b (m - 1) 3 H W
    if mid.shape[1] == 0:
        return keys[:, -1:]
    z = codec.encode(rearrange(mid, "b j c h w -> (b j) c h w")).to(keys.dtype)
    return torch.cat([rearrange(z, "(b j) c h w -> b j c h w", b=b), keys[:, -1:]], dim=1)
