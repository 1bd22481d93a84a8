"""Filling the frames between keyframes with the interpolation model (the engine's second stage),
or, as a faster choice, by blending the two keyframe latents linearly (`blend_keyframes`).

Keyframes `keyframe_stride` source frames apart are interpolated x4 per level (the model's
frame-rate flag says which level), one or two levels down to the model's finest stride. Each
level samples windows of 3 keyframes (`drivesim.sampling.interpolation.interpolate`) and keeps the
interval after the second-newest keyframe. An interpolation model that uses actions is told
the step's action on every frame, and one with speed conditioning also each frame's ego speed,
linear between the keyframes' speeds (`ego_speed.between_keyframes`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from einops import repeat
from torch import Tensor

from drivesim.diffusion.conditioning import Conditioning
from drivesim.diffusion.video_loading import VideoLDM
from drivesim.rollout.ego_speed import between_keyframes
from drivesim.rollout.generators import rollout_noise
from drivesim.sampling.interpolation import interpolate
from drivesim.sampling.video import VideoSamplingConfig

FACTOR = 4  # new frames per keyframe interval and level: 3 in between + the next keyframe
# How the engine fills the interval between two keyframes: "model" samples the interpolation model,
# "blend" blends the two keyframe latents linearly (no sampling; at 4 -> 1 source frame apart it
# beats the model in PSNR, docs/results.md: Fill by blending), "warp" blends the two keyframes moved
# along the road by the ego speed (drivesim.rollout.warp_fill; no sampling).
FILLS: tuple[str, ...] = ("model", "blend", "warp")


def interpolation_levels(interp: VideoLDM | None, keyframe_stride: int) -> int:
    """x4 levels (at most 2) that take keyframes `keyframe_stride` apart down to the model's finest stride."""
    if interp is None:
        return 0
    finest = int(interp.window.frame_stride)
    levels, stride = 0, keyframe_stride
    while stride > finest and stride % FACTOR == 0 and levels < 2:
        stride //= FACTOR
        levels += 1
    return levels


def blend_levels(keyframe_stride: int) -> int:
    """x4 levels (at most 2) that take keyframes `keyframe_stride` source frames apart towards 1."""
    levels, stride = 0, keyframe_stride
    while stride > 1 and stride % FACTOR == 0 and levels < 2:
        stride //= FACTOR
        levels += 1
    return levels


def blend_keyframes(keys: Tensor, num_frames: int) -> Tensor:
    """keys (b, k, c, h, w) -> (b, num_frames, c, h, w): the latents at fractions 1/n .. n/n of the way
    from keys[:, -2] to keys[:, -1] (the last one is keys[:, -1] itself)."""
    w = torch.arange(1, num_frames + 1, device=keys.device, dtype=keys.dtype) / num_frames  # (n,)
    w = w[None, :, None, None, None]
    return keys[:, -2:-1] * (1 - w) + keys[:, -1:] * w


def level_plan(interp: VideoLDM, keyframe_stride: int) -> list[tuple[int, int]]:
    """(input stride, frame-rate flag) of each x4 level, coarsest first: flag 0 takes keyframes
    16 finest strides apart to 4, flag 1 the rest."""
    finest = int(interp.window.frame_stride)
    strides = [keyframe_stride // FACTOR**level for level in range(interpolation_levels(interp, keyframe_stride))]
    return [(s, 0 if s == FACTOR * FACTOR * finest else 1) for s in strides]


def fill_keyframes(
    interp: VideoLDM,
    model: Callable[..., Tensor],
    keys: Tensor,
    actions: Tensor | None,
    cond: Conditioning,
    gens: list[torch.Generator],
    levels: int,
    keyframe_stride: int,
    sampling: VideoSamplingConfig,
    key_speeds: Tensor | None = None,
) -> Tensor:
    """keys (b, k, c, h, w) at `keyframe_stride` -> the frames after keys[:, -2] up to and including
    keys[:, -1]: (b, 4^levels, c, h, w). model: the denoiser call (interp.model wrapped, e.g. in
    autocast); actions (b, 2) or None; key_speeds (b, k) m/s or None; gens one per clip; sampling:
    DDIM steps and spacing of each level."""
    device = keys.device
    frames = keys
    uses_actions = interp.model.action_embedding is not None  # the default interpolates without them
    speeds = None  # per frame at the current level's output rate, for a speed-conditioned model
    if uses_actions and actions is not None and key_speeds is not None and interp.model.config.uses_speed:
        speeds = key_speeds.float().to(device)  # b k
    for level, (_, flag) in enumerate(level_plan(interp, keyframe_stride)[:levels], start=1):
        n_out = FACTOR * (frames.shape[1] - 1) + 1
        acts = None if actions is None or not uses_actions else repeat(actions, "b k -> b t k", t=n_out)
        speeds = None if speeds is None else between_keyframes(speeds, FACTOR)  # b n_out
        sample = interpolate(
            model,
            interp.schedule,
            interp.target,
            frames,
            gens[0],
            frame_rate=flag,
            actions=acts,
            image_cond=cond,
            config=sampling,
            x_T=rollout_noise(gens, (n_out, *keys.shape[2:])).to(device),
            ego_speed=speeds,
        )
        keep = FACTOR**level + 1  # c1 and what follows it, at the new stride
        frames = sample.latents[:, -keep:]
        speeds = None if speeds is None else speeds[:, -keep:]
    return frames[:, -(FACTOR**levels) :]
