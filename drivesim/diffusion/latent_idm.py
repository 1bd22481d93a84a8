"""Latent inverse dynamics and the action-consistency loss (training-only; beyond the paper).

Measured (docs/results.md): the prediction model's denoising loss, and the action
forecaster's MSE, gain only 2-9% from the true actions, so training by MSE alone spends almost
nothing on following them (action r <= 0.37 against a target of 0.8), although a probe reads the
actions off real video at r 0.99 / 0.92. The signal that says "this future does not match the
commanded action" is missing from the loss, not from the data.

`LatentInverseDynamics` g regresses the mean [steer, accel] that led from latent frame a to a
later frame b of one clip, from (z_a, z_b, z_b - z_a, gap / MAX_GAP). It is fit on real latent
pairs of the training windows (`real_pairs`, its own optimiser). Its current weights, detached,
score what the model makes: the action-consistency loss

    sum_j w_j |g(z_L, x^_j) - mean(a_{L+1..j})|^2 / (number of scored frames)

over the frames j after the last context frame L of clips whose actions the model was told
(`context_pairs`), with w_j = alpha(tau)^2 for the denoiser's clean estimate x^ (it says
little at high noise) and 1 for the action forecast. Its gradient reaches only the model, which
is pushed to produce the motion the commanded actions imply, as inverse-dynamics consistency
losses do in action-conditioned video models. The evaluation probes are separate networks on
decoded pixels, so a model that merely fooled g would not score on them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange, reduce, repeat
from torch import Tensor, nn
from torch.func import functional_call

from drivesim.diffusion.action_embedding import ACTION_DIM
from drivesim.diffusion.action_forecast import forecast_frames

MAX_GAP = 4  # real pairs are at most this many frames apart; the gap is given as gap / MAX_GAP


@dataclass(frozen=True)
class LatentPairs:
    """n latent pairs: first, second (n, c, h, w); gap (n,) frames; target (n, 2) the mean
    action between them; weight (n,) (0 = not scored)."""

    first: Tensor
    second: Tensor
    gap: Tensor
    target: Tensor
    weight: Tensor


def _interval_mean(actions: Tensor, rows: Tensor, start: Tensor, end: Tensor) -> Tensor:
    """(n, 2) mean of actions[rows, start+1 .. end] (actions[:, j] leads from frame j-1 to j)."""
    csum = torch.cumsum(actions, dim=1)  # b t 2
    total = csum[rows, end] - csum[rows, start]  # n 2
    return total / rearrange((end - start).clamp_min(1).to(actions.dtype), "n -> n 1")


def real_pairs(z: Tensor, actions: Tensor, has_actions: Tensor, max_gap: int = MAX_GAP) -> LatentPairs:
    """Every pair (i, j), 0 < j - i <= max_gap, of real clips z (b, t, c, h, w) with actions
    (b, t, 2); pairs of clips without actions (has_actions (b,) False) get weight 0."""
    b, t = z.shape[:2]
    idx = [(i, j) for i in range(t) for j in range(i + 1, min(t, i + max_gap + 1))]
    if not idx:
        raise ValueError(f"real_pairs needs clips of >= 2 frames; got t={t}")
    first_idx = torch.tensor([i for i, _ in idx], device=z.device)
    second_idx = torch.tensor([j for _, j in idx], device=z.device)
    p = len(idx)
    rows = repeat(torch.arange(b, device=z.device), "b -> (b p)", p=p)
    start, end = repeat(first_idx, "p -> (b p)", b=b), repeat(second_idx, "p -> (b p)", b=b)
    return LatentPairs(
        first=z[rows, start],
        second=z[rows, end],
        gap=(end - start).to(z.dtype),
        target=_interval_mean(actions, rows, start, end),
        weight=has_actions.to(z.dtype)[rows],
    )


def context_pairs(
    context: Tensor, made: Tensor, mask: Tensor, actions: Tensor, told: Tensor, frame_weight: Tensor | None = None
) -> LatentPairs:
    """The pairs (last context frame L, made frame j) for every frame j after L.

    context (b, t, c, h, w) real latents (frame L is read from it); made (b, t, c, h, w) the
    model's frames (x^ or a forecast); mask (b, t) given frames; actions (b, t, 2); told (b,)
    bool: the model was given the actions; frame_weight (b,) extra per-clip weight (alpha^2).
    Clips with no context frame, frames at or before L and clips not told the actions get weight 0.
    """
    b, t = context.shape[:2]
    last, valid = forecast_frames(mask)  # (b,), (b, t)
    rows = repeat(torch.arange(b, device=context.device), "b -> (b t)", t=t)
    frames = repeat(torch.arange(t, device=context.device), "t -> (b t)", b=b)
    start = repeat(last, "b -> (b t)", t=t)
    end = torch.maximum(frames, start)  # frames at or before L are weight 0; keep the mean well defined
    weight = valid * rearrange(told.to(valid.dtype), "b -> b 1")
    if frame_weight is not None:
        weight = weight * rearrange(frame_weight.to(valid.dtype), "b -> b 1")
    return LatentPairs(
        first=context[rows, start],
        second=rearrange(made, "b t c h w -> (b t) c h w"),
        gap=(frames - start).clamp_min(0).to(context.dtype),
        target=_interval_mean(actions, rows, start, end),
        weight=rearrange(weight, "b t -> (b t)"),
    )


class LatentInverseDynamics(nn.Module):
    """forward(first, second (n, c, h, w), gap (n,)) -> (n, 2) estimated mean [steer, accel].

    Three stride-2 convolutions over (z_a, z_b, z_b - z_a, gap plane), pooled to a 2 x 4 grid (so
    where in the image the change happens counts) and a linear read-out.
    """

    def __init__(self, latent_channels: int, channels: int = 64) -> None:
        super().__init__()
        if latent_channels < 1 or channels < 1:
            raise ValueError(
                f"LatentInverseDynamics latent_channels={latent_channels}, channels={channels} must be >= 1"
            )
        self.latent_channels = latent_channels
        self.features = nn.Sequential(
            nn.Conv2d(3 * latent_channels + 1, channels, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(channels, channels, 3, stride=2, padding=1),
            nn.SiLU(),
            nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1),
            nn.SiLU(),
            nn.Conv2d(2 * channels, 2 * channels, 3, stride=2, padding=1),
            nn.SiLU(),
            nn.AdaptiveAvgPool2d((2, 4)),
        )
        self.head = nn.Linear(2 * channels * 8, ACTION_DIM)

    def forward(self, first: Tensor, second: Tensor, gap: Tensor) -> Tensor:
        n, c, h, w = first.shape
        if c != self.latent_channels or second.shape != first.shape or gap.shape != (n,):
            raise ValueError(
                f"LatentInverseDynamics expects first, second (n, {self.latent_channels}, h, w) of one shape and "
                f"gap (n,); got {tuple(first.shape)}, {tuple(second.shape)}, {tuple(gap.shape)}"
            )
        gap_plane = repeat(gap.to(first.dtype) / MAX_GAP, "n -> n 1 h w", h=h, w=w)
        x = self.features(torch.cat([first, second, second - first, gap_plane], dim=1))
        return self.head(rearrange(x, "n k gh gw -> n (k gh gw)"))


def pair_loss(idm: nn.Module, pairs: LatentPairs, frozen: bool = False) -> Tensor:
    """sum_n weight_n |g(pair_n) - target_n|^2 / #(weight_n > 0) (0, keeping the graph, if none).

    frozen: g's parameters are detached (the gradient reaches only the inputs): the
    consistency loss of the model's frames. Else g is fit (the inputs are data).
    """
    if frozen:
        params = {k: v.detach() for k, v in idm.named_parameters()}
        estimate = functional_call(idm, params, (pairs.first, pairs.second, pairs.gap))
    else:
        estimate = idm(pairs.first.detach(), pairs.second.detach(), pairs.gap)
    err = reduce(F.mse_loss(estimate, pairs.target.to(estimate.dtype), reduction="none"), "n k -> n", "mean")
    w = pairs.weight.to(err.dtype)
    return (err * w).sum() / (w > 0).sum().clamp_min(1)
