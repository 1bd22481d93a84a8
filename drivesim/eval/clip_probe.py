"""Clip probe: from a short clip, regress the ego actions that produced it and the ego speed.
Its pooled temporal features are the FVD-probe features.

Two stages, so that speed *changes* (accel) are measured rather than guessed from appearance:
1. a pair encoder (one 2-D trunk, shared over time) sees each pair of consecutive probe frames
   (both RGB frames and their amplified grey-level difference, 7 channels) and pools it to a
   vector: lane markings flowing by and the scene turning are visible to its first convolution;
2. a temporal head (residual 1-D convolutions over the t-1 pair vectors) gives per-pair steer,
   accel and speed, and the window's outputs are their means.
Per-pair outputs are supervised densely (each pair has its own ground truth), which is what
makes accel, the slope of the speed profile, recoverable: with the true speed trajectory the
window's mean commanded accel is recoverable to R² 0.98 (exact inversion of the ego
dynamics); from the clip's mean speed and appearance it is not. Auxiliary time-of-day /
crowdedness heads make the features carry appearance as well as motion.

Targets (per clip): `actions` = mean [steer, accel] over the clip's transitions (the actions
that led to frames 2..t), `speed` = mean ego speed over the clip in m/s; per pair k, the mean
action over the source transitions between probe frames k and k+1 and the mean speed over
the source frames from frame k up to (not including) frame k+1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from einops import rearrange
from torch import nn

from drivesim.eval.checks import check_video
from drivesim.eval.probe_layers import Trunk, resize_frames


@dataclass
class ClipProbeConfig:
    height: int = 64
    width: int = 128
    num_frames: int = 12
    frame_stride: int = 3  # probe frames are this many source frames apart (12 x 3: 1.1 s at 30 fps)
    fps: float = 30.0  # frame rate of the source video the probe was trained on
    widths: list[int] = field(default_factory=lambda: [16, 24, 32, 64])  # pair encoder, strides 2..16
    temporal_width: int = 96  # channels of the temporal head (and of the FVD-probe features)
    temporal_blocks: int = 2  # residual blocks of two kernel-3 1-D convolutions
    num_time_of_day: int = 2
    num_crowdedness: int = 3
    speed_scale: float = 20.0  # speed is regressed as m/s / speed_scale

    def __post_init__(self) -> None:
        if self.num_frames < 2:
            raise ValueError(f"num_frames={self.num_frames} must be >= 2 (motion needs two frames)")
        if self.frame_stride < 1:
            raise ValueError(f"frame_stride={self.frame_stride} must be >= 1")
        if self.height % 16 or self.width % 16 or self.height <= 0 or self.width <= 0:
            raise ValueError(f"probe size {self.height}x{self.width} must be positive multiples of 16")
        if self.fps <= 0:
            raise ValueError(f"fps={self.fps} must be > 0")
        if self.temporal_width < 1 or self.temporal_blocks < 0:
            raise ValueError(
                f"temporal_width={self.temporal_width} must be >= 1 and temporal_blocks={self.temporal_blocks} >= 0"
            )

    @property
    def span(self) -> int:
        """Source frames covered by one probe window."""
        return (self.num_frames - 1) * self.frame_stride + 1


@dataclass(frozen=True)
class ClipProbeOutput:
    """actions (b, 2) mean [steer, accel]; speed (b,) m/s; time_of_day_logits (b, n_tod);
    crowdedness_logits (b, n_crowd); features (b, d); pair_actions (b, t-1, 2) and
    pair_speed (b, t-1) m/s per pair of consecutive probe frames (actions / speed are their means)."""

    actions: torch.Tensor
    speed: torch.Tensor
    time_of_day_logits: torch.Tensor
    crowdedness_logits: torch.Tensor
    features: torch.Tensor
    pair_actions: torch.Tensor
    pair_speed: torch.Tensor


class TemporalBlock(nn.Module):
    """x + conv(relu(conv(x))) over time, kernel 3, `b c t` in and out."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(width, width, 3, padding=1),
            nn.GroupNorm(1, width),
            nn.ReLU(inplace=True),
            nn.Conv1d(width, width, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.net(x))


class ClipProbe(nn.Module):
    def __init__(self, config: ClipProbeConfig) -> None:
        super().__init__()
        self.config = config
        self.pair_trunk = Trunk(7, tuple(config.widths))
        width = config.temporal_width
        self.project = nn.Conv1d(self.pair_trunk.out_channels, width, 1)
        self.temporal = nn.Sequential(*[TemporalBlock(width) for _ in range(config.temporal_blocks)])
        self.feature_dim = width
        self.pair_actions = nn.Conv1d(width, 2, 1)
        self.pair_speed = nn.Conv1d(width, 1, 1)
        self.time_of_day = nn.Linear(width, config.num_time_of_day)
        self.crowdedness = nn.Linear(width, config.num_crowdedness)

    def forward(self, clips: torch.Tensor) -> ClipProbeOutput:
        if clips.ndim != 5 or clips.shape[1] != self.config.num_frames:
            raise ValueError(
                f"clip probe expects (b, {self.config.num_frames}, 3, h, w) clips, got shape {tuple(clips.shape)}"
            )
        b = clips.shape[0]
        frames = rearrange(clips, "b t c h w -> (b t) c h w")  # (b*t, c, h, w)
        frames = resize_frames(frames, self.config.height, self.config.width)  # (b*t, c, H, W)
        video = rearrange(frames, "(b t) c h w -> b t c h w", b=b)  # (b, t, c, H, W)
        grey = video.mean(dim=2, keepdim=True)  # (b, t, 1, H, W)
        diffs = (grey[:, 1:] - grey[:, :-1]) * 4.0  # (b, t-1, 1, H, W), amplified: motion is small
        pairs = torch.cat([video[:, :-1], video[:, 1:], diffs], dim=2)  # (b, t-1, 7, H, W)
        pooled = self.pair_trunk(rearrange(pairs, "b p c h w -> (b p) c h w")).pooled  # (b*(t-1), w16)
        seq = rearrange(pooled, "(b p) d -> b d p", b=b)  # (b, w16, t-1)
        seq = self.temporal(torch.relu(self.project(seq)))  # (b, width, t-1)
        pair_actions = rearrange(self.pair_actions(seq), "b k p -> b p k")  # (b, t-1, 2)
        pair_speed = self.pair_speed(seq)[:, 0] * self.config.speed_scale  # (b, t-1)
        features = seq.mean(dim=2)  # (b, width)
        return ClipProbeOutput(
            actions=pair_actions.mean(dim=1),
            speed=pair_speed.mean(dim=1),
            time_of_day_logits=self.time_of_day(features),
            crowdedness_logits=self.crowdedness(features),
            features=features,
            pair_actions=pair_actions,
            pair_speed=pair_speed,
        )

    def predict(self, clips: torch.Tensor) -> ClipProbeOutput:
        """Validated, no-grad forward for `b t c h w` float clips in [-1, 1]."""
        check_video("clips", clips)
        with torch.no_grad():
            return self(clips)
