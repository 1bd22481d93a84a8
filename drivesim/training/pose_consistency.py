"""Pose consistency of predicted keyframes (`VideoLDMTrainConfig.pose_weight`).

A lane keeper drives the steer env by the pose (lateral offset from the road centre, heading to the road) that
the frozen pose heads read from a pair of keyframes. Weighing the cells under the vehicles more in the denoising
loss (`box_weight`) keeps more cars but weighs the road less, and the keeper then leaves the road more often
(docs/results.md, *More box-weighted steps*). This term asks the model's clean estimate of each predicted frame
to read, by those heads, the pose its true frame reads:

    pose loss = Σ_{clips b, predicted frames t ≥ 1} α(τ_b)² · (|o(z_{t−1}, x̂_t) − o(z_{t−1}, z_t)|
                + |h(z_{t−1}, x̂_t) − h(z_{t−1}, z_t)| / heading_scale) / #(predicted frames t ≥ 1)

with o / h the heads' lateral offset (lane widths) and heading (rad), z the true latents, x̂ the model's clean
estimate (in the graph) and α(τ)² the signal weight of the clip's noise level, so estimates at high noise, which
carry little of the frame, count little (as the action-consistency term does). The heads' weights are frozen;
the gradient reaches the model through x̂ only. The heads must read pairs as many source frames apart as the
keyframes are (their trained stride).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from einops import rearrange
from torch import Tensor

from drivesim.rollout.reward_model import RewardModel, load_heads


@dataclass(frozen=True)
class PoseConsistency:
    """Frozen pose heads and the weight of their term in the prediction stage's loss."""

    heads: RewardModel
    weight: float

    def loss(self, z: Tensor, x0: Tensor, mask: Tensor, alpha2: Tensor) -> Tensor:
        """z, x0: (b, t, c, h, w) true latents and the model's clean estimates; mask (b, t): 1 on given context
        frames; alpha2 (b,): α(τ)² of each clip's noise level. The weighted pose error (a scalar), 0 when no frame
        after the first is predicted."""
        if z.shape != x0.shape or z.ndim != 5 or mask.shape != z.shape[:2] or alpha2.shape != z.shape[:1]:
            raise ValueError(
                f"pose consistency needs z and x0 (b, t, c, h, w) alike, mask (b, t) and alpha2 (b,); got "
                f"{tuple(z.shape)}, {tuple(x0.shape)}, {tuple(mask.shape)}, {tuple(alpha2.shape)}"
            )
        b = mask.shape[0]
        predicted = 1.0 - mask[:, 1:].to(x0.dtype)  # b (t-1): frames read as the newer of a pair
        previous = rearrange(z[:, :-1], "b t c h w -> (b t) c h w")
        made = torch.stack([previous, rearrange(x0[:, 1:], "b t c h w -> (b t) c h w")], dim=1)  # (b t-1) 2 c h w
        with torch.no_grad():
            truth = self.heads(torch.stack([previous, rearrange(z[:, 1:], "b t c h w -> (b t) c h w")], dim=1))
        read = self.heads(made)
        scale = self.heads.config.heading_scale
        error = (read.lateral_offset - truth.lateral_offset).abs() + (read.heading - truth.heading).abs() / scale
        error = rearrange(error, "(b t) -> b t", b=b)
        weight = predicted * rearrange(alpha2.to(x0.dtype), "b -> b 1")
        return (weight * error).sum() / predicted.sum().clamp_min(1.0)


def load_pose_consistency(folder: str | Path, weight: float, frame_stride: int) -> PoseConsistency:
    """The "pose" stage of model folder `folder` as a frozen `PoseConsistency` of `weight`; an error that names
    what is wrong when the folder has no pose heads or they read pairs at another stride than `frame_stride`."""
    folder = Path(folder)
    heads, stride = load_heads(folder, None, "pose")
    if heads is None or not heads.config.pose:
        raise ValueError(f"pose_weight={weight} needs pose heads: model folder {folder} has no 'pose' stage that "
                         "reads the pose (pose_from names the folder; default: init_from, else model_dir)")
    if stride != frame_stride:
        raise ValueError(f"pose_weight={weight}: the pose heads of {folder} read pairs {stride} source frames apart, "
                         f"the keyframes are frame_stride={frame_stride} apart; they must be equal")
    heads.requires_grad_(False)
    return PoseConsistency(heads=heads, weight=weight)
