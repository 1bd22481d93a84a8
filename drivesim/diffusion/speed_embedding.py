"""Ego-speed embedding: per-frame ego speed (m/s) -> a vector added to the temporal layers.

Beyond the paper (issue 6): at a keyframe stride of 4 source frames (0.13 s) one keyframe's
accel changes the distance the car moves by a few centimetres, so a model that re-reads the
speed from two context frames cannot follow the accel (measured: accel r ~0 while steer r
0.96). Telling it the speed of every frame, as the simulator integrates it from the commanded
accel (`drivesim.rollout.ego_speed`), turns the accel into something it can render: the
distance moved per keyframe.

The speed belongs to the "actions" condition: where a clip's actions are unknown (null, for
guidance or action dropout) its speed embedding is zero too. The output projection is
zero-initialised, so a model started from one without speed conditioning starts unchanged.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn

from drivesim.nn.embeddings import fourier_features
from drivesim.nn.value_checks import value_checks_on

SPEED_SCALE = 40.0  # m/s mapped to 1 (the world's default max_speed)


def check_speed(speed: Tensor, batch: int, num_frames: int) -> None:
    """Raise a ValueError unless speed is a finite, non-negative float tensor (batch, num_frames)."""
    if tuple(speed.shape) != (batch, num_frames):
        raise ValueError(f"ego_speed has shape {tuple(speed.shape)}; expected ({batch}, {num_frames}) in m/s")
    if not speed.is_floating_point():
        raise ValueError(f"ego_speed must be a float tensor (m/s), got {speed.dtype}")
    if not value_checks_on():
        return
    if not bool(torch.isfinite(speed).all()):
        raise ValueError("ego_speed contains NaN or inf; allowed: finite speeds >= 0 m/s")
    if speed.numel() and float(speed.min()) < 0.0:
        raise ValueError(f"ego_speed has values down to {float(speed.min()):.3f}; allowed >= 0 m/s")


class SpeedEmbedding(nn.Module):
    """speed (b, t) m/s, given (b,) bool -> per-frame embedding ((b t), dim), zero where not given."""

    def __init__(self, dim: int, num_frequencies: int = 6, zero_init: bool = True) -> None:
        super().__init__()
        if dim < 1 or num_frequencies < 0:
            raise ValueError(f"SpeedEmbedding dim={dim} must be >= 1 and num_frequencies={num_frequencies} >= 0")
        self.num_frequencies = num_frequencies
        self.mlp = nn.Sequential(nn.Linear(1 + 2 * num_frequencies, dim), nn.SiLU(), nn.Linear(dim, dim))
        if zero_init:  # a model that did not have it starts unchanged
            nn.init.zeros_(self.mlp[-1].weight)
            nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, speed: Tensor, given: Tensor) -> Tensor:
        b, t = speed.shape[:2]
        check_speed(speed, b, t)
        if given.shape != (b,) or given.dtype != torch.bool:
            raise ValueError(f"given must be bool of shape ({b},), got {given.dtype} {tuple(given.shape)}")
        x = (speed / SPEED_SCALE).clamp(0.0, 1.0) * 2.0 - 1.0  # b t, in [-1, 1]
        weight = self.mlp[0].weight
        feats = fourier_features(rearrange(x, "b t -> b t 1").to(weight.dtype), self.num_frequencies)  # b t f
        keep = rearrange(given.to(weight.dtype), "b -> b 1 1")
        return rearrange(self.mlp(feats) * keep, "b t d -> (b t) d")
