"""Model-output parameterisations (eps and v) and the denoising training loss.

With z = alpha * x + sigma * eps and alpha^2 + sigma^2 = 1 the target is either eps or
v = alpha * eps - sigma * x (paper Sec. 3, the objective of Eq. (1)). Every conversion
below is exact algebra of these two identities:

    x   = (z - sigma * eps) / alpha          eps = (z - alpha * x) / sigma
    x   = alpha * z - sigma * v              eps = sigma * z + alpha * v
    v   = alpha * eps - sigma * x            v   = (alpha * z - x) / sigma = (eps - sigma * z) / alpha

`alpha` and `sigma` are tensors that broadcast against z (use
`schedule.broadcast_to_sample`). Preconditioning stays outside the network: the denoiser
returns the raw target and the samplers convert with these functions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from einops import reduce
from torch import Tensor

from drivesim.diffusion.schedule import NoiseSchedule, broadcast_to_sample

Target = Literal["eps", "v"]
TARGETS: tuple[str, ...] = ("eps", "v")


def check_target(target: str) -> Target:
    if target not in TARGETS:
        raise ValueError(f"target={target!r} is not allowed; expected one of {TARGETS}")
    return target  # type: ignore[return-value]


def v_from_x_eps(x: Tensor, eps: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
    return alpha * eps - sigma * x


def x_from_z_eps(z: Tensor, eps: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
    return (z - sigma * eps) / alpha


def eps_from_z_x(z: Tensor, x: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
    return (z - alpha * x) / sigma


def x_from_z_v(z: Tensor, v: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
    return alpha * z - sigma * v


def eps_from_z_v(z: Tensor, v: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
    return sigma * z + alpha * v


def v_from_z_x(z: Tensor, x: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
    return (alpha * z - x) / sigma


def v_from_z_eps(z: Tensor, eps: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
    return (eps - sigma * z) / alpha


@dataclass(frozen=True)
class Denoised:
    """What a model output implies at noisy z: the clean estimate x0 and the noise eps."""

    x0: Tensor
    eps: Tensor


def denoised_from_output(output: Tensor, z: Tensor, alpha: Tensor, sigma: Tensor, target: Target) -> Denoised:
    """Turn a model output in the `target` parameterisation into (x0, eps) estimates."""
    if check_target(target) == "eps":
        return Denoised(x0=x_from_z_eps(z, output, alpha, sigma), eps=output)
    return Denoised(x0=x_from_z_v(z, output, alpha, sigma), eps=eps_from_z_v(z, output, alpha, sigma))


def output_from_x0(x0: Tensor, z: Tensor, alpha: Tensor, sigma: Tensor, target: Target) -> Tensor:
    """The model output (in `target`) that is consistent with clean data x0 at noisy z."""
    if check_target(target) == "eps":
        return eps_from_z_x(z, x0, alpha, sigma)
    return v_from_z_x(z, x0, alpha, sigma)


@dataclass(frozen=True)
class DiffusionLoss:
    """loss: scalar mean; per_sample: (b,) mean squared error per sample; tau: (b,) used;
    x0: the model's clean estimate at those tau (x0's shape, in the graph)."""

    loss: Tensor
    per_sample: Tensor
    tau: Tensor
    x0: Tensor


def diffusion_loss(
    denoiser: Callable[[Tensor, Tensor, Any], Tensor],
    x0: Tensor,
    cond: Any,
    schedule: NoiseSchedule,
    generator: torch.Generator,
    target: Target = "eps",
    tau: Tensor | None = None,
    weight: Tensor | None = None,
) -> DiffusionLoss:
    """E ||y - f(z_tau; c, tau)||^2 with y = eps or v (paper Eq. (1)).

    denoiser: callable (z_tau, tau, cond) -> output of x0's shape in the `target` parameterisation.
    x0: clean data (b, ...) with any number of trailing axes.
    tau: optional fixed diffusion times (b,); by default tau ~ U{0..T-1} from `generator`.
    weight: optional weights broadcastable to x0 (e.g. 0 on given context frames); the
        per-sample loss is then sum(w * err) / sum(w) over the non-batch axes.
    Noise and tau are drawn on `generator.device` and moved to x0's device.
    """
    target = check_target(target)
    b = x0.shape[0]
    if tau is None:
        tau = schedule.sample_tau(b, generator, device=x0.device)
    elif tau.shape != (b,):
        raise ValueError(f"tau shape {tuple(tau.shape)} must be (batch,) = ({b},)")
    eps = torch.randn(x0.shape, generator=generator, device=generator.device, dtype=x0.dtype).to(x0.device)
    alpha = broadcast_to_sample(schedule.alpha(tau).to(x0.dtype), x0)  # (b, 1, ..., 1)
    sigma = broadcast_to_sample(schedule.sigma(tau).to(x0.dtype), x0)  # (b, 1, ..., 1)
    z = alpha * x0 + sigma * eps
    y = eps if target == "eps" else v_from_x_eps(x0, eps, alpha, sigma)
    output = denoiser(z, tau, cond)
    if output.shape != x0.shape:
        raise ValueError(
            f"denoiser output shape {tuple(output.shape)} differs from x0 shape {tuple(x0.shape)}"
        )
    loss_dtype = torch.promote_types(output.dtype, torch.float32)
    err = (output.to(loss_dtype) - y.to(loss_dtype)) ** 2
    if weight is None:
        per_sample = reduce(err, "b ... -> b", "mean")  # (b,)
    else:
        w = torch.broadcast_to(weight.to(err), err.shape)
        per_sample = reduce(w * err, "b ... -> b", "sum") / reduce(w, "b ... -> b", "sum").clamp_min(1e-12)
    x0_hat = denoised_from_output(output, z, alpha.to(output.dtype), sigma.to(output.dtype), target).x0
    return DiffusionLoss(loss=per_sample.mean(), per_sample=per_sample, tau=tau, x0=x0_hat)
