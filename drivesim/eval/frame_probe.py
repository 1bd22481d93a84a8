"""Frame probe: one small CNN trunk with heads for time of day, crowdedness, vehicle count and a
centre-heatmap vehicle detector. Its pooled trunk features are the FID-probe features.

Input: `b c h w` float frames in [-1, 1] (resized to the probe's size when they differ).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from drivesim.eval.checks import check_frames
from drivesim.eval.detection import Detections, decode_detections
from drivesim.eval.probe_layers import ConvBNAct, Trunk, resize_frames


@dataclass
class FrameProbeConfig:
    height: int = 64
    width: int = 128
    widths: list[int] = field(default_factory=lambda: [16, 32, 48, 128])
    head_width: int = 32
    num_time_of_day: int = 2
    num_crowdedness: int = 3
    count_scale: float = 10.0  # vehicle count is regressed as count / count_scale
    score_threshold: float = 0.3  # detector peak threshold at inference

    def __post_init__(self) -> None:
        if self.height % 16 or self.width % 16 or self.height <= 0 or self.width <= 0:
            raise ValueError(f"probe size {self.height}x{self.width} must be positive multiples of 16")
        if len(self.widths) != 4:
            raise ValueError(f"widths={self.widths} must list 4 channel counts (strides 2, 4, 8, 16)")


@dataclass(frozen=True)
class FrameProbeOutput:
    """time_of_day_logits (b, n_tod); crowdedness_logits (b, n_crowd); vehicle_count (b,);
    heatmap_logits (b, 1, h/4, w/4); offset, log_size (b, 2, h/4, w/4); features (b, d)."""

    time_of_day_logits: torch.Tensor
    crowdedness_logits: torch.Tensor
    vehicle_count: torch.Tensor
    heatmap_logits: torch.Tensor
    offset: torch.Tensor
    log_size: torch.Tensor
    features: torch.Tensor


class FrameProbe(nn.Module):
    def __init__(self, config: FrameProbeConfig) -> None:
        super().__init__()
        self.config = config
        w2, w4, w8, w16 = config.widths
        self.trunk = Trunk(3, (w2, w4, w8, w16))
        self.feature_dim = w16
        self.time_of_day = nn.Linear(w16, config.num_time_of_day)
        self.crowdedness = nn.Linear(w16, config.num_crowdedness)
        self.count = nn.Linear(w16, 1)
        hw = config.head_width
        self.fuse = nn.Sequential(ConvBNAct(w4 + w8 + w16, hw, kernel=1), ConvBNAct(hw, hw))
        self.heatmap = nn.Conv2d(hw, 1, 1)
        self.box = nn.Conv2d(hw, 4, 1)
        nn.init.constant_(self.heatmap.bias, -2.2)  # prior probability ~0.1 at start (CenterNet)

    def forward(self, frames: torch.Tensor) -> FrameProbeOutput:
        x = resize_frames(frames, self.config.height, self.config.width)  # (b, 3, H, W)
        feats = self.trunk(x)
        size4 = feats.stride4.shape[-2:]
        up8 = F.interpolate(feats.stride8, size=size4, mode="nearest")  # (b, w8, H/4, W/4)
        up16 = F.interpolate(feats.stride16, size=size4, mode="nearest")  # (b, w16, H/4, W/4)
        head = self.fuse(torch.cat([feats.stride4, up8, up16], dim=1))  # (b, hw, H/4, W/4)
        box = self.box(head)  # (b, 4, H/4, W/4)
        return FrameProbeOutput(
            time_of_day_logits=self.time_of_day(feats.pooled),
            crowdedness_logits=self.crowdedness(feats.pooled),
            vehicle_count=self.count(feats.pooled).squeeze(-1) * self.config.count_scale,
            heatmap_logits=self.heatmap(head),
            offset=box[:, :2],
            log_size=box[:, 2:],
            features=feats.pooled,
        )

    @torch.no_grad()
    def detect(self, frames: torch.Tensor, score_threshold: float | None = None) -> list[Detections]:
        """Boxes per frame (normalised xyxy) for `b c h w` frames in [-1, 1]."""
        check_frames("frames", frames)
        out = self(frames)
        threshold = self.config.score_threshold if score_threshold is None else score_threshold
        return decode_detections(out.heatmap_logits, out.offset, out.log_size, score_threshold=threshold)
