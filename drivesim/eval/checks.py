"""Input validation and conversion shared by the metrics: clear errors naming the field.

Videos inside the metrics are `b t c h w` float in [-1, 1]; user clips are `t h w c` uint8.
"""

from __future__ import annotations

import numpy as np
import torch
from einops import rearrange


def check_video(name: str, video: torch.Tensor) -> torch.Tensor:
    """Validate a `b t c h w` float video in [-1, 1] with 3 channels and b, t >= 1."""
    if not isinstance(video, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape (b, t, c, h, w), got {type(video).__name__}")
    if video.ndim != 5:
        raise ValueError(f"{name} must have shape (b, t, c, h, w), got shape {tuple(video.shape)}")
    if not video.is_floating_point():
        raise ValueError(f"{name} must be a float tensor in [-1, 1], got dtype {video.dtype}")
    b, t, c, h, w = video.shape
    if b == 0 or t == 0:
        raise ValueError(f"{name} is empty: shape {tuple(video.shape)}")
    if c != 3:
        raise ValueError(f"{name} must have 3 channels (RGB) on axis 2, got {c} (shape {tuple(video.shape)})")
    if not torch.isfinite(video).all():
        raise ValueError(f"{name} contains NaN or inf")
    lo, hi = float(video.min()), float(video.max())
    if lo < -1.0 - 1e-3 or hi > 1.0 + 1e-3:
        raise ValueError(f"{name} values must lie in [-1, 1], got range [{lo:.3f}, {hi:.3f}]")
    return video


def check_frames(name: str, frames: torch.Tensor) -> torch.Tensor:
    """Validate a `b c h w` float batch of frames in [-1, 1]."""
    if not isinstance(frames, torch.Tensor) or frames.ndim != 4:
        shape = tuple(frames.shape) if isinstance(frames, torch.Tensor) else type(frames).__name__
        raise ValueError(f"{name} must be a torch.Tensor of shape (b, c, h, w), got {shape}")
    check_video(name, rearrange(frames, "b c h w -> b 1 c h w"))
    return frames


def check_uint8_clip(name: str, clip: np.ndarray) -> np.ndarray:
    """Validate a user clip: `t h w c` uint8 with c == 3 and t >= 1."""
    if not isinstance(clip, np.ndarray):
        raise ValueError(f"{name} must be a numpy array (t, h, w, 3) uint8, got {type(clip).__name__}")
    if clip.dtype != np.uint8:
        raise ValueError(f"{name} must have dtype uint8, got {clip.dtype}")
    if clip.ndim != 4 or clip.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (t, h, w, 3), got {clip.shape}")
    if clip.shape[0] == 0:
        raise ValueError(f"{name} has no frames")
    return clip


def uint8_to_video(clips: np.ndarray | list[np.ndarray], name: str = "clips") -> torch.Tensor:
    """Stack `t h w c` uint8 clips of equal shape into a `b t c h w` float video in [-1, 1]."""
    if isinstance(clips, np.ndarray):
        clips = [clips] if clips.ndim == 4 else list(clips)
    if len(clips) == 0:
        raise ValueError(f"{name} is empty: need at least one clip")
    shapes = {c.shape for c in clips if isinstance(c, np.ndarray)}
    for i, c in enumerate(clips):
        check_uint8_clip(f"{name}[{i}]", c)
    if len(shapes) != 1:
        raise ValueError(f"{name} clips must share one shape (t, h, w, 3), got {sorted(shapes)}")
    stacked = torch.from_numpy(np.stack(clips))  # (b, t, h, w, c) uint8
    video = rearrange(stacked, "b t h w c -> b t c h w").float()  # (b, t, c, h, w)
    return video / 127.5 - 1.0


def video_to_uint8(video: torch.Tensor) -> np.ndarray:
    """`b t c h w` float in [-1, 1] to `b t h w c` uint8."""
    check_video("video", video)
    scaled = ((video.detach().float().cpu().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return rearrange(scaled, "b t c h w -> b t h w c").numpy()  # (b, t, h, w, c)


def check_same_frame_shape(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    """Both videos must have the same (c, h, w)."""
    if a.shape[2:] != b.shape[2:]:
        raise ValueError(
            f"{name_a} and {name_b} have different frame shapes (c, h, w): {tuple(a.shape[2:])} vs {tuple(b.shape[2:])}"
        )


def check_same_shape(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    """Paired metrics need identical shapes."""
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same shape, got {tuple(a.shape)} vs {tuple(b.shape)}")
