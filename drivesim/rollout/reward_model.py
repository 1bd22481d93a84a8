"""Reward heads: small networks on keyframe latents that predict what the env rewards.

From the two newest keyframe latents (motion is visible only across frames) the model
predicts p(collision), p(off_road) at the newer keyframe and the ego speed (m/s). They are
trained on the world's ground-truth events and ego speed (`drivesim train stage=reward`)
and used by the env for rewards and termination and by planners for imagined returns.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange
from torch import Tensor, nn


@dataclass
class RewardModelConfig:
    latent_channels: int = 4
    channels: int = 64
    num_frames: int = 2  # newest keyframes seen
    speed_scale: float = 30.0  # m/s that the speed output is divided by


@dataclass(frozen=True)
class RewardPrediction:
    """(b,) each: logits of collision / off-road, speed in m/s."""

    collision_logit: Tensor
    off_road_logit: Tensor
    speed: Tensor

    @property
    def collision(self) -> Tensor:
        return torch.sigmoid(self.collision_logit)

    @property
    def off_road(self) -> Tensor:
        return torch.sigmoid(self.off_road_logit)


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.GroupNorm(8, cout), nn.SiLU())


class RewardModel(nn.Module):
    def __init__(self, config: RewardModelConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or RewardModelConfig()
        c = cfg.channels
        self.trunk = nn.Sequential(
            _block(cfg.latent_channels * cfg.num_frames, c, 1),
            _block(c, c, 2),
            _block(c, 2 * c, 2),
            _block(2 * c, 2 * c, 1),
        )
        self.head = nn.Sequential(nn.Linear(2 * c, c), nn.SiLU(), nn.Linear(c, 3))

    def forward(self, latents: Tensor) -> RewardPrediction:
        """latents: (b, t, c, h, w) scaled keyframe latents, t = config.num_frames (newest last)."""
        if latents.ndim != 5 or latents.shape[1] != self.config.num_frames:
            raise ValueError(
                f"latents must have shape (b, {self.config.num_frames}, c, h, w), got {tuple(latents.shape)}"
            )
        x = rearrange(latents, "b t c h w -> b (t c) h w")
        feats = self.trunk(x).mean(dim=(2, 3))  # b 2c
        out = self.head(feats)  # b 3
        speed = torch.nn.functional.softplus(out[:, 2]) * self.config.speed_scale
        return RewardPrediction(collision_logit=out[:, 0], off_road_logit=out[:, 1], speed=speed)
