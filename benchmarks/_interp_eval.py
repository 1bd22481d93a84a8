"""Interpolation quality for the benchmarks: true keyframes of real clips filled level by level
by a world model's interpolation model, against linear blending and against the ego-motion warp of the
keyframes by the clips' true speeds (PSNR, SSIM of the in-between frames)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from _video_eval import RealClips
from einops import rearrange
from tqdm import tqdm

from drivesim.autoencoder.frame_codec import FrameCodec
from drivesim.diffusion.conditioning import Conditioning
from drivesim.eval.checks import uint8_to_video
from drivesim.eval.temporal import psnr, ssim
from drivesim.rollout.ego_speed import DEFAULT_SPEED
from drivesim.rollout.keyframe_fill import level_plan
from drivesim.rollout.warp_fill import travel_between, warp_between
from drivesim.rollout.world_model import WorldModel
from drivesim.sampling.interpolation import blend_keyframes, interpolate
from drivesim.sampling.video import VideoSamplingConfig


@dataclass(frozen=True)
class InterpScores:
    """Mean PSNR (dB) / SSIM over the in-between frames."""

    model: float
    latent_lerp: float
    pixel_lerp: float
    reconstruction: float  # decoded true latents: the ceiling of every latent method
    pixel_warp: float  # the keyframes' pixels moved along the road by the true speeds and blended (`warp_between`)
    warp_fill: float  # `EngineConfig.fill="warp"` (the steer env): decoded keyframe latents warped, encoded, decoded


@dataclass(frozen=True)
class InterpLevel:
    name: str
    key_stride: int  # source frames between the given keyframes
    out_stride: int  # source frames between output frames
    frame_rate_flags: list[int]
    num_keyframes: int
    num_clips: int
    psnr: InterpScores
    ssim: InterpScores


def interpolation_levels(world: WorldModel) -> list[tuple[int, int]]:
    """(input stride, frame-rate flag) per level, as the engine chains them (`keyframe_fill.level_plan`)."""
    return level_plan(world.interpolation, int(world.video.window.frame_stride))


@dataclass(frozen=True)
class Interpolated:
    """Real clips at the output positions and latents filled between their true keyframes."""

    truth: torch.Tensor  # (b, t, c, H, W) in [-1, 1], the real frames at `positions`
    speeds: torch.Tensor  # (b, t) m/s, the true ego speeds at `positions` (NaN filled with DEFAULT_SPEED)
    interval: float  # seconds between output frames
    true_latents: torch.Tensor  # (b, t, C, h, w) scaled, encoded from `truth`
    filled: torch.Tensor  # (b, t, C, h, w) scaled: every `factor`-th is a true keyframe, the rest interpolated
    factor: int  # output frames per keyframe interval


@torch.no_grad()
def interpolated_latents(
    world: WorldModel,
    real: RealClips,
    plan: list[tuple[int, int]],
    keys: int,
    sampling: VideoSamplingConfig,
    gen: torch.Generator,
) -> Interpolated:
    """`keys` true keyframes plan[0][0] source frames apart, filled level by level by the world model's
    interpolation model (labels given; actions and speeds only to a model that reads them)."""
    stride, factor = plan[0][0], 4 ** len(plan)
    positions = np.arange(0, (keys - 1) * stride + 1, stride // factor)
    truth = uint8_to_video(real.frames[:, positions])  # (b, t, c, h, w)
    ae, interp = world.autoencoder, world.interpolation
    device = next(ae.parameters()).device
    z = ae.encode_video(truth.to(device))  # (b, t, C, h', w') scaled
    key_z = z[:, ::factor]  # (b, keys, C, h', w')
    b = len(real.ids)
    cond = Conditioning.from_labels(real.time_of_day, real.crowdedness, [None] * b, [None] * b, device=device)
    # a model that reads actions (and speed) is told the true ones of each output frame, as in training
    acts, speeds = None, None
    if interp.model.action_embedding is not None:
        acts = torch.from_numpy(real.actions[:, positions]).to(device)
    if acts is not None and interp.model.config.speed_conditioning:
        speeds = torch.from_numpy(np.nan_to_num(real.speed[:, positions], nan=DEFAULT_SPEED)).to(device)
    frames = key_z
    for level, (_, flag) in enumerate(plan):
        every = factor // 4 ** (level + 1)  # output frames of this level, in `positions`
        frames = interpolate(
            interp.model,
            interp.schedule,
            interp.target,
            frames,
            gen,
            frame_rate=flag,
            keys_per_window=max(2, interp.window.keys_per_window),
            image_cond=cond,
            config=sampling,
            actions=None if acts is None else acts[:, ::every],
            ego_speed=None if speeds is None else speeds[:, ::every],
        ).latents  # (b, 4 (k - 1) + 1, C, h', w')
    true_speeds = torch.from_numpy(np.nan_to_num(real.speed[:, positions], nan=DEFAULT_SPEED)).float()
    return Interpolated(truth, true_speeds, stride / factor / world.fps, z, frames, factor)


@torch.no_grad()
def _interp_scores(
    world: WorldModel,
    real: RealClips,
    plan: list[tuple[int, int]],
    keys: int,
    sampling: VideoSamplingConfig,
    gen: torch.Generator,
) -> dict[str, dict[str, float]]:
    """metric -> method -> mean over the in-between frames of these clips."""
    filled = interpolated_latents(world, real, plan, keys, sampling, gen)
    truth, z, frames, factor = filled.truth, filled.true_latents, filled.filled, filled.factor
    ae = world.autoencoder
    key_z = z[:, ::factor]
    camera, codec, b = world.video.model.config.camera(), FrameCodec(ae, world.temporal_decoder), z.shape[0]
    key_speeds = filled.speeds[:, ::factor]
    warped = warp_keyframes(truth[:, ::factor], key_speeds, factor, filled.interval, camera)  # b t 3 H W, true pixels
    # the engine's warp fill: the keyframes' latents decoded one by one, warped, the in-between frames encoded again
    decoded_keys = rearrange(codec.decode(rearrange(key_z, "b k c h w -> (b k) c h w")).float().cpu(),
                             "(b k) c h w -> b k c h w", b=b)  # fmt: skip
    engine_warp = warp_keyframes(decoded_keys, key_speeds, factor, filled.interval, camera)  # b t 3 H W
    warped_z = rearrange(codec.encode(rearrange(engine_warp, "b t c h w -> (b t) c h w").to(z.device)),
                         "(b t) c h w -> b t c h w", b=b)  # fmt: skip
    warped_z[:, ::factor] = key_z  # the keyframes keep their own latents

    def decode(latents: torch.Tensor) -> torch.Tensor:
        td = world.temporal_decoder
        out = td.decode_video(latents) if td is not None else ae.decode_video(latents)
        return out.float().clamp(-1, 1).cpu()

    between = [i for i in range(truth.shape[1]) if i % factor]
    preds = {
        "model": decode(frames),
        "latent_lerp": decode(blend_keyframes(key_z, factor)),
        "pixel_lerp": blend_keyframes(truth[:, ::factor], factor),
        "reconstruction": decode(z),
        "pixel_warp": warped,
        "warp_fill": decode(warped_z),
    }
    return {
        metric: {k: fn(v[:, between], truth[:, between]) for k, v in preds.items()}
        for metric, fn in (("psnr", psnr), ("ssim", ssim))
    }


@torch.no_grad()
def warp_keyframes(keys: torch.Tensor, key_speeds: torch.Tensor, factor: int, interval: float, camera) -> torch.Tensor:
    """keys (b, k, 3, H, W) frames in [-1, 1], key_speeds (b, k) m/s -> (b, factor (k - 1) + 1, 3, H, W): the
    keyframes with the frames between each pair filled by `warp_fill.warp_between` (interval: seconds between
    output frames)."""
    out = [keys[:, :1]]
    for i in range(keys.shape[1] - 1):
        travel = travel_between(key_speeds[:, i : i + 2], factor, interval)  # b (factor + 1)
        out += [warp_between(keys[:, i], keys[:, i + 1], travel, camera), keys[:, i + 1 : i + 2]]
    return torch.cat(out, dim=1)


def evaluate_interpolation(
    world: WorldModel,
    real: RealClips,
    plan: list[tuple[int, int]],
    name: str,
    keys: int,
    sampling: VideoSamplingConfig,
    seed: int,
    batch: int,
) -> InterpLevel:
    """Keyframes every plan[0][0] source frames of the real clips are encoded; the interpolation model
    fills them level by level (flags of `plan`), `batch` clips at a time; in-between frames are
    compared with the real ones (every clip has as many, so chunk means average exactly)."""
    stride = plan[0][0]
    keys = min(keys, (real.frames.shape[1] - 1) // stride + 1)
    if keys < 2:
        raise ValueError(f"interpolation needs clips of >= {stride + 1} frames, got {real.frames.shape[1]}")
    gen = torch.Generator().manual_seed(seed)
    n = len(real.ids)
    parts = []
    for lo in tqdm(range(0, n, batch), desc=name, leave=False):
        idx = list(range(lo, min(lo + batch, n)))
        parts.append((len(idx), _interp_scores(world, real.take(idx), plan, keys, sampling, gen)))
    mean = {
        metric: InterpScores(**{k: sum(c * p[metric][k] for c, p in parts) / n for k in parts[0][1][metric]})
        for metric in ("psnr", "ssim")
    }
    return InterpLevel(name, stride, stride // 4 ** len(plan), [f for _, f in plan], keys, n, **mean)
