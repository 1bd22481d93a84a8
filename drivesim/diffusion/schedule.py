"""Variance-preserving noise schedule with discrete diffusion time.

Forward process (paper Sec. 3, the denoising objective of Eq. (1)):

    z_tau = alpha_tau * x + sigma_tau * eps,   eps ~ N(0, I),   sigma_tau^2 = 1 - alpha_tau^2

Diffusion time is an integer index ``tau in {0, ..., num_steps - 1}`` (0 = least noise,
``num_steps - 1`` = most noise); training draws ``tau ~ U{0, ..., num_steps - 1}``. The paper
writes U{0, 1000}; we use the 1000 indices 0..999 of the same DDPM discretisation: index
``tau`` is DDPM step ``tau + 1``, so ``alpha_tau^2 = prod_{i <= tau} (1 - beta_i)`` (the
cumulative product "alpha-bar") and ``alpha_tau`` is its square root, the signal scale.

Beta choices (``ScheduleConfig.kind``):
- ``"linear"``: beta linear from ``beta_start`` to ``beta_end`` (DDPM: 1e-4 -> 2e-2).
- ``"scaled_linear"``: sqrt(beta) linear from sqrt(beta_start) to sqrt(beta_end) (the LDM
  schedule, 0.00085 -> 0.012). The default, as the latent models of the paper use it.
- ``"cosine"``: alpha-bar(t) = cos^2(((t / T + s) / (1 + s)) * pi / 2) / alpha-bar(0) with
  beta clipped to ``max_beta`` (Nichol & Dhariwal 2021); ``beta_start``/``beta_end`` unused.

Tables are kept in float64 on the CPU; lookups return float64 on the device of ``tau``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from einops import rearrange
from torch import Tensor

ScheduleKind = Literal["linear", "scaled_linear", "cosine"]
SCHEDULE_KINDS: tuple[str, ...] = ("linear", "scaled_linear", "cosine")


@dataclass(frozen=True)
class ScheduleConfig:
    """Beta schedule of the variance-preserving process.

    Defaults: the LDM scaled-linear schedule, 1000 steps, 0.00085 -> 0.012.
    For the DDPM linear schedule use ``kind="linear", beta_start=1e-4, beta_end=2e-2``.
    """

    num_steps: int = 1000
    kind: ScheduleKind = "scaled_linear"
    beta_start: float = 0.00085
    beta_end: float = 0.012
    cosine_offset: float = 0.008
    max_beta: float = 0.999

    def __post_init__(self) -> None:
        if self.num_steps < 2:
            raise ValueError(f"ScheduleConfig.num_steps={self.num_steps} must be >= 2")
        if self.kind not in SCHEDULE_KINDS:
            raise ValueError(
                f"ScheduleConfig.kind={self.kind!r} is not allowed; expected one of {SCHEDULE_KINDS}"
            )
        if not 0.0 < self.beta_start < self.beta_end < 1.0:
            raise ValueError(
                f"ScheduleConfig.beta_start={self.beta_start}, beta_end={self.beta_end}: "
                "need 0 < beta_start < beta_end < 1"
            )
        if not 0.0 < self.max_beta < 1.0:
            raise ValueError(f"ScheduleConfig.max_beta={self.max_beta} must be in (0, 1)")
        if self.cosine_offset < 0.0:
            raise ValueError(f"ScheduleConfig.cosine_offset={self.cosine_offset} must be >= 0")


def _betas(config: ScheduleConfig) -> Tensor:
    n = config.num_steps
    if config.kind == "linear":
        return torch.linspace(config.beta_start, config.beta_end, n, dtype=torch.float64)
    if config.kind == "scaled_linear":
        return torch.linspace(config.beta_start**0.5, config.beta_end**0.5, n, dtype=torch.float64) ** 2
    s = config.cosine_offset
    t = torch.arange(n + 1, dtype=torch.float64) / n  # (n+1,)
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    return (1.0 - f[1:] / f[:-1]).clamp(max=config.max_beta)  # (n,)


def broadcast_to_sample(coef: Tensor, x: Tensor) -> Tensor:
    """Per-sample coefficients (b,) -> (b, 1, ..., 1) so they broadcast against x (b, ...)."""
    if coef.ndim != 1 or coef.shape[0] != x.shape[0]:
        raise ValueError(
            f"coefficients of shape {tuple(coef.shape)} do not match batch of x {tuple(x.shape)}"
        )
    pattern = "b -> b" + " 1" * (x.ndim - 1)
    return rearrange(coef, pattern)  # (b, 1, ..., 1)


class NoiseSchedule:
    """Lookup of alpha_tau, sigma_tau and log-SNR for integer diffusion times tau."""

    def __init__(self, config: ScheduleConfig | None = None) -> None:
        self.config = config or ScheduleConfig()
        self.betas = _betas(self.config)  # (T,) float64
        self.alphas_cumprod = torch.cumprod(1.0 - self.betas, dim=0)  # (T,) alpha_tau^2

    @property
    def num_steps(self) -> int:
        return self.config.num_steps

    def _check_tau(self, tau: Tensor) -> None:
        if not isinstance(tau, Tensor) or tau.dtype not in (torch.int32, torch.int64):
            raise ValueError(
                f"tau must be an integer tensor, got {type(tau).__name__} {getattr(tau, 'dtype', '')}"
            )
        if tau.numel() and (int(tau.min()) < 0 or int(tau.max()) >= self.num_steps):
            raise ValueError(
                f"tau has values in [{int(tau.min())}, {int(tau.max())}]; allowed 0..{self.num_steps - 1}"
            )

    def alpha(self, tau: Tensor) -> Tensor:
        """Signal scale alpha_tau = sqrt(alpha-bar_tau), float64, same shape/device as tau."""
        self._check_tau(tau)
        return self.alphas_cumprod.to(tau.device)[tau.long()].sqrt()

    def sigma(self, tau: Tensor) -> Tensor:
        """Noise scale sigma_tau = sqrt(1 - alpha_tau^2), float64, same shape/device as tau."""
        self._check_tau(tau)
        return (1.0 - self.alphas_cumprod.to(tau.device)[tau.long()]).sqrt()

    def log_snr(self, tau: Tensor) -> Tensor:
        """lambda_tau = log(alpha_tau^2 / sigma_tau^2); strictly decreasing in tau."""
        self._check_tau(tau)
        a2 = self.alphas_cumprod.to(tau.device)[tau.long()]
        return torch.log(a2) - torch.log1p(-a2)

    def sample_tau(
        self, batch: int, generator: torch.Generator, device: torch.device | str | None = None
    ) -> Tensor:
        """tau ~ U{0, ..., num_steps - 1}, shape (batch,), drawn from `generator` only."""
        tau = torch.randint(0, self.num_steps, (batch,), generator=generator, device=generator.device)
        return tau.to(device if device is not None else generator.device)

    def add_noise(self, x0: Tensor, eps: Tensor, tau: Tensor) -> Tensor:
        """z_tau = alpha_tau * x0 + sigma_tau * eps, per-sample tau of shape (b,)."""
        if x0.shape != eps.shape:
            raise ValueError(f"x0 shape {tuple(x0.shape)} and eps shape {tuple(eps.shape)} differ")
        alpha = broadcast_to_sample(self.alpha(tau).to(x0.dtype), x0)  # (b, 1, ..., 1)
        sigma = broadcast_to_sample(self.sigma(tau).to(x0.dtype), x0)  # (b, 1, ..., 1)
        return alpha * x0 + sigma * eps
