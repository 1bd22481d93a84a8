"""Ego-action embedding: per-frame [steer, accel] -> a vector added to the temporal layers.

Beyond the paper: the world model is a simulator, so the future it predicts must follow
the agent's actions. Each frame's action (b, t, 2) in [-1, 1] is turned into Fourier
features and an MLP. A learned null vector stands for "action unknown": training drops a
sample's actions to the null with some probability, so the sampler can use classifier-free
guidance over actions, f' = f(null) + s * (f(actions) - f(null)).
"""

from __future__ import annotations

import torch
from einops import rearrange, repeat
from torch import Tensor, nn

from drivesim.nn.embeddings import fourier_features
from drivesim.nn.value_checks import value_checks_on

ACTION_DIM = 2  # [steer, accel]


def check_actions(actions: Tensor, batch: int | None = None, num_frames: int | None = None) -> None:
    """Raise a ValueError unless actions is a finite float tensor (b, t, 2) with values in [-1, 1]."""
    if actions.ndim != 3 or actions.shape[-1] != ACTION_DIM:
        raise ValueError(
            f"actions has shape {tuple(actions.shape)}; expected (b, t, {ACTION_DIM}) = [steer, accel]"
        )
    if batch is not None and num_frames is not None and tuple(actions.shape[:2]) != (batch, num_frames):
        raise ValueError(
            f"actions has shape {tuple(actions.shape)}; expected ({batch}, {num_frames}, {ACTION_DIM})"
        )
    if not actions.is_floating_point():
        raise ValueError(f"actions must be a float tensor, got {actions.dtype}")
    if not value_checks_on():
        return
    if not bool(torch.isfinite(actions).all()):
        raise ValueError("actions contains NaN or inf; allowed: finite values in [-1, 1]")
    if actions.numel() and float(actions.abs().max()) > 1.0 + 1e-6:
        raise ValueError(f"actions has values up to {float(actions.abs().max()):.3f}; allowed [-1, 1]")


class ActionEmbedding(nn.Module):
    """actions (b, t, 2) or None, drop (b,) bool or None -> per-frame embedding ((b t), dim).

    `actions=None` gives the null embedding for every frame; `drop[i]` True replaces
    sample i's actions by the null (action dropout for guidance). zero_init: the output layer
    and the null start at zero, so a model started from one without actions starts unchanged.
    """

    def __init__(
        self, dim: int, num_frequencies: int = 6, hidden_dim: int | None = None, zero_init: bool = False
    ) -> None:
        super().__init__()
        if dim < 1 or num_frequencies < 0:
            raise ValueError(
                f"ActionEmbedding dim={dim} must be >= 1 and num_frequencies={num_frequencies} >= 0"
            )
        hidden = hidden_dim or dim
        self.dim = dim
        self.num_frequencies = num_frequencies
        self.mlp = nn.Sequential(
            nn.Linear(ACTION_DIM * (1 + 2 * num_frequencies), hidden), nn.SiLU(), nn.Linear(hidden, dim)
        )
        self.null = nn.Parameter(torch.zeros(dim))
        if zero_init:
            nn.init.zeros_(self.mlp[-1].weight)
            nn.init.zeros_(self.mlp[-1].bias)
        else:
            nn.init.normal_(self.null, std=0.02)

    def forward(
        self, actions: Tensor | None, batch: int, num_frames: int, drop: Tensor | None = None
    ) -> Tensor:
        null = repeat(self.null, "d -> (b t) d", b=batch, t=num_frames)  # (b t) d
        if actions is None:
            return null
        check_actions(actions, batch, num_frames)
        feats = fourier_features(actions.to(self.null.dtype), self.num_frequencies)  # b t f
        emb = rearrange(self.mlp(feats), "b t d -> (b t) d")
        if drop is None:
            return emb
        if drop.shape != (batch,) or drop.dtype != torch.bool:
            raise ValueError(f"drop must be bool of shape ({batch},), got {drop.dtype} {tuple(drop.shape)}")
        drop_frames = repeat(drop, "b -> (b t) 1", t=num_frames)  # (b t) 1
        return torch.where(drop_frames, null, emb)
