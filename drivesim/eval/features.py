"""Feature extraction for the Fréchet distances: probe features (FID-probe, FVD-probe) and
sliding clip windows. Inputs are `b t c h w` float videos in [-1, 1]; features are float64 numpy.
"""

from __future__ import annotations

import numpy as np
import torch
from einops import rearrange

from drivesim.eval.checks import check_video
from drivesim.eval.clip_probe import ClipProbe
from drivesim.eval.frame_probe import FrameProbe


def window_starts(num_frames: int, span: int, hop: int, max_start: int | None = None) -> list[int]:
    """Start indices of windows covering `span` frames, every `hop` frames, starting before
    `max_start` (no limit when None); [] when too short."""
    if hop < 1:
        raise ValueError(f"hop={hop} must be >= 1")
    if num_frames < span:
        return []
    last = num_frames - span + 1 if max_start is None else min(num_frames - span + 1, max_start)
    return list(range(0, last, hop))


def clip_windows(
    video: torch.Tensor, num_frames: int, frame_stride: int, hop: int, max_start: int | None = None
) -> torch.Tensor:
    """All windows of `num_frames` frames `frame_stride` apart, every `hop` frames (starting before
    `max_start`), of every clip: (b, t, c, h, w) -> (b * n_windows, num_frames, c, h, w).
    Raises when the clips are shorter than one window."""
    check_video("video", video)
    span = (num_frames - 1) * frame_stride + 1
    starts = window_starts(video.shape[1], span, hop, max_start)
    if not starts:
        raise ValueError(
            f"clips have {video.shape[1]} frames, fewer than one probe window "
            f"({num_frames} frames with stride {frame_stride} = {span} frames)"
        )
    index = torch.tensor([[s + j * frame_stride for j in range(num_frames)] for s in starts])  # (n_w, num_frames)
    windows = video[:, index]  # (b, n_w, num_frames, c, h, w)
    return rearrange(windows, "b n t c h w -> (b n) t c h w")  # (b*n_w, num_frames, c, h, w)


def _device_of(module: torch.nn.Module) -> torch.device:
    return next(module.parameters()).device


@torch.no_grad()
def frame_features(probe: FrameProbe, video: torch.Tensor, batch_size: int = 128) -> np.ndarray:
    """FID-probe features of every frame: (b, t, c, h, w) -> (b*t, d)."""
    check_video("video", video)
    probe.eval()
    frames = rearrange(video, "b t c h w -> (b t) c h w")  # (b*t, c, h, w)
    device = _device_of(probe)
    out = [
        probe(frames[i : i + batch_size].to(device)).features.double().cpu()
        for i in range(0, frames.shape[0], batch_size)
    ]
    return torch.cat(out).numpy()


@torch.no_grad()
def clip_features(
    probe: ClipProbe, video: torch.Tensor, hop: int, frame_stride: int | None = None, batch_size: int = 64
) -> np.ndarray:
    """FVD-probe features of every probe window of every clip: (b, t, c, h, w) -> (n_windows, d).
    frame_stride overrides the probe's own (for video at another frame rate)."""
    cfg = probe.config
    stride = cfg.frame_stride if frame_stride is None else frame_stride
    windows = clip_windows(video, cfg.num_frames, stride, hop)  # (n, num_frames, c, h, w)
    probe.eval()
    device = _device_of(probe)
    out = [
        probe(windows[i : i + batch_size].to(device)).features.double().cpu()
        for i in range(0, windows.shape[0], batch_size)
    ]
    return torch.cat(out).numpy()
