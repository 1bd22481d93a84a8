"""The window the prediction stage draws a keyframe in: context keyframes, then empty frames to draw.

One control step gives the prediction model a window of its trained length t: the s context keyframes
(mask m_S = 1, Eq. (3)) followed by t - s frames to draw, of which the engine keeps the first. Each frame
is told the action that led to it (the context keyframes theirs, the new frames the held action) and,
where the model or the sampler reads them, the ego speeds (the context keyframes', then integrated from
the held accel, `drivesim.rollout.ego_speed.window_speeds`) and the last context keyframe moved forward
by that speed (`drivesim.diffusion.ego_warp.warp_context_latents`). `road_from_warp` puts that warp into the
road rows of the drawn keyframe (`EngineConfig.road_from_warp`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange, repeat
from torch import Tensor

from drivesim.diffusion.ego_warp import FrameCodecLike, GroundCamera, ground_rows, warp_context_latents
from drivesim.rollout.ego_speed import window_speeds


@dataclass(frozen=True)
class PredictionWindow:
    """clip (b, t, c, h, w): the context keyframes then zeros; mask (b, t): 1 on the context; actions (b, t, 2)
    or None; speeds (b, t) m/s or None; warp (b, t, c, h, w) latents of the last context keyframe moved forward
    (zero on the context) or None."""

    clip: Tensor
    mask: Tensor
    actions: Tensor | None
    speeds: Tensor | None
    warp: Tensor | None


@dataclass(frozen=True)
class WindowSpec:
    """How a prediction window is laid out: its length (frames), the keyframe stride (source frames) and
    frame rate (fps) its speeds are integrated over, whether the speeds are needed (a model or a sampler
    that reads them) and whether the warp is (an `ego_warp` model or a sampler that starts from it)."""

    length: int
    stride: int
    fps: float
    needs_speed: bool
    needs_warp: bool

    def __post_init__(self) -> None:
        if self.length < 2 or self.stride < 1 or self.fps <= 0:
            raise ValueError(
                f"WindowSpec(length={self.length}, stride={self.stride}, fps={self.fps}): expected length >= 2 "
                "frames, stride >= 1 source frames and fps > 0"
            )


def prediction_window(
    context: Tensor,
    actions: Tensor | None,
    context_actions: Tensor | None,
    context_speed: Tensor | None,
    spec: WindowSpec,
    camera: GroundCamera,
    codec: FrameCodecLike,
) -> PredictionWindow:
    """The window for context (b, s, c, h, w) with `actions` (b, 2) held over the new frames, `context_actions`
    (b, s, 2) that led to the context keyframes (default: `actions`) and their speeds `context_speed` (b, s)
    m/s; a window of max(s + 1, spec.length) frames. Speeds and warp are None unless the spec needs them and
    both actions and context speeds are given."""
    b, s = context.shape[:2]
    t = max(s + 1, spec.length)
    clip = torch.cat([context, torch.zeros_like(context[:, :1]).expand(-1, t - s, -1, -1, -1)], dim=1)  # b t c h w
    mask = torch.zeros(b, t, device=context.device)
    mask[:, :s] = 1.0
    acts = None
    if actions is not None:
        past = repeat(actions, "b k -> b s k", s=s) if context_actions is None else context_actions.to(actions)
        acts = torch.cat([past, repeat(actions, "b k -> b t k", t=t - s)], dim=1)  # b t 2
    speeds = warp = None
    if actions is not None and context_speed is not None and (spec.needs_speed or spec.needs_warp):
        speeds = window_speeds(context_speed, actions, t - s, spec.stride, spec.fps)  # b t, CPU
    if speeds is not None and spec.needs_warp:
        given = torch.ones(b, dtype=torch.bool, device=context.device)
        warp = warp_context_latents(clip.float(), mask, speeds.to(context.device), given, spec.stride / spec.fps,
                                    camera, codec)  # fmt: skip
    return PredictionWindow(clip, mask, acts, speeds, warp)


def road_from_warp(drawn: Tensor, warp: Tensor, weight: float, camera: GroundCamera) -> Tensor:
    """Keyframe latents drawn (b, c, h, w) with the rows that see the road (`ground_rows` of the latent height)
    blended towards the warp of the last keyframe (b, c, h, w): weight 1 takes the warp's road, 0 the drawn one."""
    if drawn.shape != warp.shape:
        raise ValueError(f"road_from_warp: drawn {tuple(drawn.shape)} and warp {tuple(warp.shape)} must match")
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"road_from_warp: weight {weight} must be in [0, 1]")
    rows = rearrange(ground_rows(drawn.shape[-2], camera, drawn.device), "h -> 1 1 h 1").to(drawn.dtype)
    return drawn + weight * rows * (warp - drawn)
