"""DDIM sampling (Song, Meng & Ermon 2021) over a denoiser callable.

The denoiser is any callable ``(z_tau, tau) -> output`` where ``tau`` is an integer tensor
(b,) and the output is in the ``target`` parameterisation (eps or v). Conditioning and
guidance are bound into the callable beforehand (see `drivesim.sampling.guidance`).

Steps are an evenly spaced descending sub-sequence of the training times (`ddim_timesteps`):
"linspace" runs from ``T - 1`` down to ``0``, so its last step, at tau = 0, only confirms the
estimate before it and n steps make n - 1 jumps (2 steps: one prediction from pure noise);
"trailing" starts at ``T - 1`` and ends at ``T / n - 1``, every step a jump of T / n (Lin et al.
2024, "Common diffusion noise schedules and sample steps are flawed", Table 2). One update,
with signal/noise scales (alpha, sigma) at the current time and (alpha', sigma') at the next (DDIM Eq. (12)):

    x0, eps = denoised(output)
    s       = eta * (sigma' / sigma) * sqrt(1 - alpha^2 / alpha'^2)
    z'      = alpha' * x0 + sqrt(sigma'^2 - s^2) * eps + s * noise

eta = 0 is the deterministic DDIM; eta = 1 matches DDPM's ancestral variance. After the
last step the sampler returns the clean estimate x0. All randomness (x_T and the
eta noise) comes from the passed generator; noise is drawn on ``generator.device``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor
from tqdm.auto import tqdm

from drivesim.diffusion.parameterization import Target, check_target, denoised_from_output
from drivesim.diffusion.schedule import NoiseSchedule

Denoiser = Callable[[Tensor, Tensor], Tensor]


SPACINGS = ("linspace", "trailing")


def check_spacing(spacing: str) -> None:
    if spacing not in SPACINGS:
        raise ValueError(f"spacing={spacing!r}; allowed: {list(SPACINGS)}")


def ddim_timesteps(num_train_steps: int, steps: int, spacing: str = "linspace") -> Tensor:
    """Descending, evenly spaced integer diffusion times (steps,): "linspace" from T-1 to 0,
    "trailing" from T-1 to T/steps - 1."""
    check_spacing(spacing)
    if not 1 <= steps <= num_train_steps:
        raise ValueError(f"steps={steps} is not allowed; expected 1..{num_train_steps}")
    if steps == 1:
        return torch.tensor([num_train_steps - 1], dtype=torch.long)
    if spacing == "trailing":
        starts = torch.linspace(num_train_steps, 0, steps + 1, dtype=torch.float64)[:-1]  # T, T - T/n, ..., T/n
        return starts.round().long() - 1  # (steps,)
    return torch.linspace(num_train_steps - 1, 0, steps, dtype=torch.float64).round().long()  # (steps,)


def _scales(schedule: NoiseSchedule, tau: int) -> tuple[float, float]:
    t = torch.tensor([tau], dtype=torch.long)
    return float(schedule.alpha(t)[0]), float(schedule.sigma(t)[0])


def _noise(
    shape: tuple[int, ...], generator: torch.Generator, device: torch.device, dtype: torch.dtype
) -> Tensor:
    return torch.randn(shape, generator=generator, device=generator.device, dtype=dtype).to(device)


def start_latents(guess: Tensor, noise: Tensor, schedule: NoiseSchedule, steps: int, skip: int,
                  spacing: str = "linspace") -> Tensor:
    """alpha_tau guess + sigma_tau noise at tau = ddim_timesteps(...)[skip]: where `ddim_sample(...,
    skip=skip)` starts from a guess of the clean latents (SDEdit)."""
    if not 0 <= skip < steps:
        raise ValueError(f"skip={skip} is not allowed; expected 0..steps-1={steps - 1}")
    alpha, sigma = _scales(schedule, int(ddim_timesteps(schedule.num_steps, steps, spacing)[skip]))
    return alpha * guess + sigma * noise


@torch.no_grad()
def ddim_sample(
    denoiser: Denoiser,
    shape: tuple[int, ...],
    schedule: NoiseSchedule,
    steps: int,
    eta: float,
    generator: torch.Generator,
    target: Target = "eps",
    x_T: Tensor | None = None,
    progress: bool = False,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    spacing: str = "linspace",
    skip: int = 0,
    eta_noise: Tensor | None = None,
) -> Tensor:
    """Sample a batch of shape `shape` (b, ...) with DDIM at the `spacing` of `ddim_timesteps`.

    x_T: starting noise; by default N(0, I) from `generator`. Its device/dtype win over
    `device`/`dtype`, which otherwise default to the generator's device and float32.
    skip: leave out the first `skip` of the `steps` times; x_T is then the latent at the time
    `ddim_timesteps(...)[skip]` (SDEdit: a guess noised to that level; `start_latents`).
    eta_noise: (steps - skip - 1, *shape) the noise eta > 0 adds after each jump, row i after the i-th;
        default drawn from `generator` (pass it to draw each batch row from its own generator).
    Returns the clean estimate x0 after the last step, shape `shape`.
    """
    target = check_target(target)
    if eta < 0:
        raise ValueError(f"eta={eta} must be >= 0")
    shape = tuple(int(s) for s in shape)
    if not 0 <= skip < steps:
        raise ValueError(f"skip={skip} is not allowed; expected 0..steps-1={steps - 1}")
    taus = ddim_timesteps(schedule.num_steps, steps, spacing).tolist()[skip:]
    if skip and x_T is None:
        raise ValueError("skip > 0 needs x_T: the latent at the first time kept (start_latents)")
    if eta_noise is not None and tuple(eta_noise.shape) != (len(taus) - 1, *shape):
        raise ValueError(f"eta_noise has shape {tuple(eta_noise.shape)}; expected {(len(taus) - 1, *shape)}")
    if x_T is None:
        dev = torch.device(device) if device is not None else generator.device
        z = _noise(shape, generator, dev, dtype)
    else:
        if tuple(x_T.shape) != shape:
            raise ValueError(f"x_T shape {tuple(x_T.shape)} differs from shape {shape}")
        z = x_T
    b = shape[0]
    x0 = z
    for i, tau in enumerate(tqdm(taus, desc="ddim", disable=not progress, leave=False)):
        alpha, sigma = _scales(schedule, tau)
        tau_batch = torch.full((b,), tau, dtype=torch.long, device=z.device)  # (b,)
        output = denoiser(z, tau_batch)
        if output.shape != z.shape:
            raise ValueError(
                f"denoiser output shape {tuple(output.shape)} differs from z shape {tuple(z.shape)}"
            )
        pred = denoised_from_output(output.to(z.dtype), z, alpha, sigma, target)
        x0 = pred.x0
        if i + 1 == len(taus):
            break
        alpha_next, sigma_next = _scales(schedule, taus[i + 1])
        s = eta * (sigma_next / sigma) * math.sqrt(max(0.0, 1.0 - alpha**2 / alpha_next**2))
        s = min(s, sigma_next)
        z = alpha_next * x0 + math.sqrt(sigma_next**2 - s**2) * pred.eps
        if s > 0:
            noise = _noise(shape, generator, z.device, z.dtype) if eta_noise is None else eta_noise[i]
            z = z + s * noise.to(device=z.device, dtype=z.dtype)
    return x0
