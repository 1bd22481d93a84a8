"""Diffusion on the blend's residual (beyond the paper; `VideoUNetConfig.blend_residual`).

An interpolation model conditioned on keyframes may denoise the in-between frames as the linear
blend of the given frames plus a learned correction: with mu the per-frame blend of the given
(mask 1) latents, the network N sees and predicts the process of y = z - mu instead of z. Since
z_tau = alpha z + sigma eps, the same noise gives y_tau = z_tau - alpha mu, so the model keeps the
image model's schedule, target and sampler in z and only its input and output move:

    N's input:  z_tau - alpha_tau * mu
    its output: eps_z = eps_y (eps target);  v_z = v_y - sigma_tau * mu  (v = alpha eps - sigma x)

A network that predicts "no residual" (x_y = 0) gives the blend as its clean estimate; a sample
with no given frame (mask all 0, e.g. the unconditional half of keyframe guidance) has mu = 0 and is
the plain model. Shapes: latents (b, t, c, h, w), mask (b, t), tau (b,).
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn

from drivesim.diffusion.parameterization import Target, check_target
from drivesim.diffusion.schedule import NoiseSchedule


def blend_given_frames(latents: Tensor, mask: Tensor) -> Tensor:
    """Per frame, the linear blend of the nearest given frames before and after it (the nearest one
    alone beyond the first or last given frame); zero for samples with no given frame.

    latents (b, t, c, h, w) (read only where mask is 1), mask (b, t) of 0 / 1 -> (b, t, c, h, w)."""
    if latents.ndim != 5 or mask.shape != latents.shape[:2]:
        raise ValueError(
            f"latents {tuple(latents.shape)} and mask {tuple(mask.shape)}: expected (b, t, c, h, w) and (b, t)"
        )
    b, t = mask.shape
    idx = torch.arange(t, device=mask.device).expand(b, t)  # b t
    given = mask > 0.5
    before = torch.where(given, idx, -1).cummax(dim=1).values  # last given frame <= i, or -1
    after = torch.where(given, idx, t).flip(1).cummin(dim=1).values.flip(1)  # first given frame >= i, or t
    lo = torch.where(before >= 0, before, torch.where(after < t, after, 0))  # b t
    hi = torch.where(after < t, after, lo)  # b t
    weight = (idx - lo).to(latents.dtype) / (hi - lo).clamp(min=1).to(latents.dtype)  # b t, 0 where lo == hi
    pick = rearrange(lo, "b t -> b t 1 1 1").expand_as(latents)
    start = latents.gather(1, pick)
    end = latents.gather(1, rearrange(hi, "b t -> b t 1 1 1").expand_as(latents))
    w = rearrange(weight, "b t -> b t 1 1 1")
    any_given = rearrange(given.any(dim=1), "b -> b 1 1 1 1")
    return torch.where(any_given, start * (1 - w) + end * w, torch.zeros_like(latents))


class BlendShift(nn.Module):
    """The input and output shifts of diffusion on z - mu for one schedule and target.

    Holds alpha-bar of the schedule as a buffer (not saved with the weights: the stage config's
    schedule rebuilds it), so it moves with the network and indexes without value checks (compilable).
    """

    def __init__(self, schedule: NoiseSchedule, target: Target) -> None:
        super().__init__()
        self.target = check_target(target)
        self.register_buffer("alphas_cumprod", schedule.alphas_cumprod.float(), persistent=False)

    def _coefficients(self, tau: Tensor, like: Tensor) -> tuple[Tensor, Tensor]:
        a2 = rearrange(self.alphas_cumprod[tau.long()], "b -> b 1 1 1 1").to(like.dtype)  # b 1 1 1 1
        return a2.sqrt(), (1.0 - a2).sqrt()

    def shift_input(self, z: Tensor, tau: Tensor, mu: Tensor) -> Tensor:
        """z_tau -> y_tau = z_tau - alpha_tau mu."""
        alpha, _ = self._coefficients(tau, z)
        return z - alpha * mu.to(z.dtype)

    def shift_output(self, out: Tensor, tau: Tensor, mu: Tensor) -> Tensor:
        """The network's output for y -> the output for z (eps unchanged; v - sigma mu)."""
        if self.target == "eps":
            return out
        _, sigma = self._coefficients(tau, out)
        return out - sigma * mu.to(out.dtype)
