"""Reward heads: small networks on keyframe latents that predict what the env rewards.

From two latents some source frames apart, newest last (motion is visible only across frames),
the model predicts p(collision), p(off_road) at the newer one and the ego speed (m/s), and, with
`pose`, the ego's lateral offset from the road centre (lane widths) and heading to the road (rad).
They are trained on the world's ground-truth events and ego state (`drivesim train stage=reward`)
and used by the env for rewards, termination and info and by planners for imagined returns.

Design switches (defaults: the first bundled design): `difference_input` feeds the newer latent
minus the older one beside both; `pool_grid` gives speed and pose their own head on the trunk's
features average-pooled to a grid and flattened, so it knows where a feature is (how far a lane
dash moved near the bottom of the frame, where the road edge is); the events keep the head on
the features' frame mean, which does not overfit their rare positives (a grid head read
off-road at recall 0.67 / precision 0.73 against 0.94 / 0.97: docs/results.md, Reward heads).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from einops import rearrange
from torch import Tensor, nn
from torch.nn import functional as F

from drivesim.model_folder import config_from_dict, read_folder_config, stage_state


@dataclass
class RewardModelConfig:
    latent_channels: int = 4
    channels: int = 64
    num_frames: int = 2  # newest keyframes seen
    speed_scale: float = 30.0  # m/s that the speed output is divided by
    difference_input: bool = False  # also feed latent[t] - latent[t-1] for each pair of neighbours
    pool_grid: tuple[int, int] | None = None  # None: mean over the frame; (h, w): pooled to a grid, flattened
    pose: bool = False  # also predict lateral offset (lane widths from the road centre) and heading (rad)
    heading_scale: float = 0.1  # rad that the heading output is scaled by

    def __post_init__(self) -> None:
        if self.num_frames < 1:
            raise ValueError(f"RewardModelConfig.num_frames={self.num_frames} must be >= 1")
        if self.pool_grid is not None:
            self.pool_grid = tuple(int(x) for x in self.pool_grid)
            if len(self.pool_grid) != 2 or min(self.pool_grid) < 1:
                raise ValueError(f"RewardModelConfig.pool_grid={self.pool_grid} must be None or (h, w) >= 1")


@dataclass(frozen=True)
class RewardPrediction:
    """(b,) each: logits of collision / off-road, speed in m/s; lateral offset from the road centre in
    lane widths and heading to the road in rad, or None (a model without `pose`)."""

    collision_logit: Tensor
    off_road_logit: Tensor
    speed: Tensor
    lateral_offset: Tensor | None = None
    heading: Tensor | None = None

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
        frames_in = cfg.num_frames + (cfg.num_frames - 1 if cfg.difference_input else 0)
        self.trunk = nn.Sequential(
            _block(cfg.latent_channels * frames_in, c, 1),
            _block(c, c, 2),
            _block(c, 2 * c, 2),
            _block(2 * c, 2 * c, 1),
        )
        state_outputs = 1 + (2 if cfg.pose else 0)  # speed (+ lateral offset, heading)
        if cfg.pool_grid is None:  # one head on the frame mean: [collision, off_road, speed (, pose)]
            self.head = nn.Sequential(nn.Linear(2 * c, c), nn.SiLU(), nn.Linear(c, 2 + state_outputs))
            self.state_head = None
        else:  # events from the frame mean (rare positives), speed and pose from the grid
            cells = cfg.pool_grid[0] * cfg.pool_grid[1]
            self.head = nn.Sequential(nn.Linear(2 * c, c), nn.SiLU(), nn.Linear(c, 2))
            self.state_head = nn.Sequential(nn.Linear(2 * c * cells, c), nn.SiLU(), nn.Linear(c, state_outputs))

    def forward(self, latents: Tensor) -> RewardPrediction:
        """latents: (b, t, c, h, w) scaled keyframe latents, t = config.num_frames (newest last)."""
        if latents.ndim != 5 or latents.shape[1] != self.config.num_frames:
            raise ValueError(
                f"latents must have shape (b, {self.config.num_frames}, c, h, w), got {tuple(latents.shape)}"
            )
        cfg = self.config
        if cfg.difference_input:
            latents = torch.cat([latents, latents[:, 1:] - latents[:, :-1]], dim=1)  # b (2t - 1) c h w
        feats = self.trunk(rearrange(latents, "b t c h w -> b (t c) h w"))  # b 2c h' w'
        out = self.head(feats.mean(dim=(2, 3)))  # b 2 (+ state outputs)
        if self.state_head is not None:
            grid = rearrange(F.adaptive_avg_pool2d(feats, cfg.pool_grid), "b c h w -> b (c h w)")
            out = torch.cat([out, self.state_head(grid)], dim=1)  # b (2 + state outputs)
        speed = F.softplus(out[:, 2]) * cfg.speed_scale
        pose = (out[:, 3], out[:, 4] * cfg.heading_scale) if cfg.pose else (None, None)
        return RewardPrediction(out[:, 0], out[:, 1], speed, *pose)


def load_heads(folder: Path, config: dict[str, Any] | None, stage: str) -> tuple[RewardModel | None, int]:
    """The reward-model stage `stage` of model folder `folder` (eval mode) and its trained pair stride;
    (None, 4) when the folder has no such stage. `config`: the folder's config (read when None)."""
    if not (folder / f"{stage}.safetensors").is_file():
        return None, 4
    entry = (config if config is not None else read_folder_config(folder))[stage]
    heads = RewardModel(config_from_dict(RewardModelConfig, entry["config"], f"{folder} [{stage}]"))
    heads.load_state_dict(stage_state(folder, stage))
    heads.eval()
    return heads, int(entry.get("extra", {}).get("stride", 4))
