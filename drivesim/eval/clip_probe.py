"""Clip probe: from a short clip, regress the ego actions that produced it and the ego speed.
Its pooled trunk features are the FVD-probe features.

Early fusion: the `num_frames` RGB frames and their grey-level frame differences are stacked
along channels and go through one 2-D trunk, so motion (lane markings flowing by, the scene
turning) is visible to the first convolution. Auxiliary time-of-day / crowdedness heads make
the features carry appearance as well as motion.

Targets (per clip): `actions` = mean [steer, accel] over the clip's transitions (the actions
that led to frames 2..t), `speed` = mean ego speed over the clip in m/s.
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
    widths: list[int] = field(default_factory=lambda: [24, 32, 48, 128])
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

    @property
    def span(self) -> int:
        """Source frames covered by one probe window."""
        return (self.num_frames - 1) * self.frame_stride + 1


@dataclass(frozen=True)
class ClipProbeOutput:
    """actions (b, 2) mean [steer, accel]; speed (b,) m/s; time_of_day_logits (b, n_tod);
    crowdedness_logits (b, n_crowd); features (b, d)."""

    actions: torch.Tensor
    speed: torch.Tensor
    time_of_day_logits: torch.Tensor
    crowdedness_logits: torch.Tensor
    features: torch.Tensor


class ClipProbe(nn.Module):
    def __init__(self, config: ClipProbeConfig) -> None:
        super().__init__()
        self.config = config
        t = config.num_frames
        w2, w4, w8, w16 = config.widths
        self.trunk = Trunk(3 * t + (t - 1), (w2, w4, w8, w16))
        self.feature_dim = w16
        self.actions = nn.Linear(w16, 2)
        self.speed = nn.Linear(w16, 1)
        self.time_of_day = nn.Linear(w16, config.num_time_of_day)
        self.crowdedness = nn.Linear(w16, config.num_crowdedness)

    def forward(self, clips: torch.Tensor) -> ClipProbeOutput:
        if clips.ndim != 5 or clips.shape[1] != self.config.num_frames:
            raise ValueError(
                f"clip probe expects (b, {self.config.num_frames}, 3, h, w) clips, got shape {tuple(clips.shape)}"
            )
        b = clips.shape[0]
        frames = rearrange(clips, "b t c h w -> (b t) c h w")  # (b*t, c, h, w)
        frames = resize_frames(frames, self.config.height, self.config.width)  # (b*t, c, H, W)
        video = rearrange(frames, "(b t) c h w -> b t c h w", b=b)  # (b, t, c, H, W)
        grey = video.mean(dim=2)  # (b, t, H, W)
        diffs = (grey[:, 1:] - grey[:, :-1]) * 4.0  # (b, t-1, H, W), amplified: motion is small
        stacked = torch.cat([rearrange(video, "b t c h w -> b (t c) h w"), diffs], dim=1)  # (b, 3t+t-1, H, W)
        feats = self.trunk(stacked)
        pooled = feats.pooled  # (b, w16)
        return ClipProbeOutput(
            actions=self.actions(pooled),
            speed=self.speed(pooled).squeeze(-1) * self.config.speed_scale,
            time_of_day_logits=self.time_of_day(pooled),
            crowdedness_logits=self.crowdedness(pooled),
            features=pooled,
        )

    def predict(self, clips: torch.Tensor) -> ClipProbeOutput:
        """Validated, no-grad forward for `b t c h w` float clips in [-1, 1]."""
        check_video("clips", clips)
        with torch.no_grad():
            return self(clips)
