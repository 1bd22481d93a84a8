"""Temporal interpolation (Sec. 3.3 of the paper) over the video sampler `sample_clip`: the in-between
frames of keyframe windows sampled with the keyframes known, and linear blending of keyframes, the
baseline it must beat.

Shapes: keyframes (b, k, c, h, w) -> (b, factor * (k - 1) + 1, c, h, w), keyframes at 0, factor, ...
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor

from drivesim.diffusion.conditioning import Conditioning
from drivesim.diffusion.context import keyframe_mask
from drivesim.diffusion.parameterization import Target
from drivesim.diffusion.schedule import NoiseSchedule
from drivesim.sampling.video import VideoModel, VideoSample, VideoSamplingConfig, sample_clip


def interpolation_windows(num_keyframes: int, keys_per_window: int) -> list[tuple[int, int]]:
    """Keyframe index ranges [start, stop] (inclusive), all of min(keys_per_window, k) keyframes,
    covering every keyframe; the last window is shifted back (overlapping its neighbour more)
    rather than shortened, so every window has the length the model was trained on."""
    if keys_per_window < 2:
        raise ValueError(f"keys_per_window={keys_per_window} must be >= 2")
    if num_keyframes < 2:
        raise ValueError(f"interpolation needs at least 2 keyframes, got {num_keyframes}")
    n = min(keys_per_window, num_keyframes)
    starts = list(range(0, num_keyframes - n + 1, n - 1))
    if starts[-1] + n - 1 < num_keyframes - 1:
        starts.append(num_keyframes - n)
    return [(start, start + n - 1) for start in starts]


def blend_keyframes(keys: Tensor, factor: int) -> Tensor:
    """(b, k, ...) -> (b, factor * (k - 1) + 1, ...): linear blending between neighbouring keys, keys
    kept at 0, factor, 2 factor, ... (the baseline interpolation must beat; also per-frame speeds)."""
    w = torch.arange(factor, dtype=keys.dtype, device=keys.device) / factor
    w = rearrange(w, "f -> 1 1 f" + " 1" * (keys.ndim - 2))  # (1, 1, factor, 1, ...) against (b, k-1, 1, ...)
    mid = keys[:, :-1, None] * (1 - w) + keys[:, 1:, None] * w  # (b, k-1, factor, ...)
    return torch.cat([rearrange(mid, "b k f ... -> b (k f) ..."), keys[:, -1:]], dim=1)


def interpolate(
    model: VideoModel,
    schedule: NoiseSchedule,
    target: Target,
    keyframes: Tensor,
    generator: torch.Generator,
    frame_rate: int | None = None,
    keys_per_window: int = 3,
    factor: int = 4,
    actions: Tensor | None = None,
    image_cond: Conditioning | None = None,
    config: VideoSamplingConfig | None = None,
    progress: bool = False,
    x_T: Tensor | None = None,
    ego_speed: Tensor | None = None,
) -> VideoSample:
    """Temporal interpolation (Sec. 3.3): `factor - 1` new frames between each pair of keyframes.

    keyframes: (b, k, c, h, w) -> latents (b, factor * (k - 1) + 1, c, h, w), keyframes kept at
    positions 0, factor, 2 factor, ... Windows of `keys_per_window` keyframes
    (factor * (keys_per_window - 1) + 1 frames, the length the model was trained on; fewer
    when k is smaller) are sampled as one batch (`interpolation_windows`); a gap covered
    by two windows is taken from the first.
    actions: (b, factor * (k - 1) + 1, 2) at the output rate, or None.
    image_cond: b rows (per clip) only.
    x_T: (b, factor * (k - 1) + 1, c, h, w) starting noise at the output frames, or None (from
        `generator`); each window starts from its slice of it.
    ego_speed: (b, factor * (k - 1) + 1) m/s at the output rate, read with the actions by a
        speed-conditioned model, or None.
    """
    if keyframes.ndim != 5:
        raise ValueError(f"keyframes has shape {tuple(keyframes.shape)}; expected (b, k, c, h, w)")
    b, k, c, h, w = keyframes.shape
    if factor < 2:
        raise ValueError(f"factor={factor} must be >= 2")
    out_frames = factor * (k - 1) + 1
    if actions is not None and tuple(actions.shape[:2]) != (b, out_frames):
        raise ValueError(f"actions has shape {tuple(actions.shape)}; expected ({b}, {out_frames}, 2)")
    if x_T is not None and tuple(x_T.shape) != (b, out_frames, c, h, w):
        raise ValueError(f"x_T has shape {tuple(x_T.shape)}; expected {(b, out_frames, c, h, w)}")
    if ego_speed is not None and tuple(ego_speed.shape) != (b, out_frames):
        raise ValueError(f"ego_speed has shape {tuple(ego_speed.shape)}; expected ({b}, {out_frames}) in m/s")
    if image_cond is not None and image_cond.batch_size != b:
        raise ValueError(f"image_cond has {image_cond.batch_size} rows; interpolate takes one per clip ({b})")
    windows = interpolation_windows(k, keys_per_window)
    span = factor * (windows[0][1] - windows[0][0]) + 1
    n = len(windows)

    def windowed(x: Tensor) -> Tensor:
        """(b, out_frames, ...) at the output rate -> (n b, span, ...) per window."""
        return torch.cat([x[:, factor * start : factor * start + span] for start, _ in windows])

    clips = torch.zeros((b, out_frames, c, h, w), dtype=keyframes.dtype, device=keyframes.device)
    clips[:, ::factor] = keyframes
    sample = sample_clip(
        model,
        schedule,
        target,
        windowed(clips),  # (n b) span c h w
        keyframe_mask(n * b, span, factor, keyframes.device),
        generator,
        actions=None if actions is None else windowed(actions),
        image_cond=None if image_cond is None else Conditioning.cat([image_cond] * n),
        frame_rate=frame_rate,
        config=config,
        progress=progress,
        x_T=None if x_T is None else windowed(x_T),
        ego_speed=None if ego_speed is None else windowed(ego_speed),
    )
    parts = rearrange(sample.latents, "(n b) t c h w -> n b t c h w", b=b)
    frames, covered = [keyframes[:, :1]], 0
    for (start, stop), part in zip(windows, parts):
        frames.append(part[:, factor * (covered - start) + 1 : factor * (stop - start) + 1])
        covered = stop
    latents = torch.cat(frames, dim=1)  # b out_frames c h w
    known = torch.zeros((b, out_frames), dtype=keyframes.dtype, device=keyframes.device)
    known[:, ::factor] = 1.0
    return VideoSample(latents=latents, known=known)
