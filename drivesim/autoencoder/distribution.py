"""Diagonal Gaussian posterior q(z|x) = N(mean, exp(logvar)) of the KL autoencoder."""

from __future__ import annotations

import torch


class DiagonalGaussian:
    """Posterior over latents of shape (b, c, h, w) from moments (b, 2c, h, w).

    The log-variance is clamped to [-30, 20] for numerical safety.
    """

    def __init__(self, moments: torch.Tensor) -> None:
        if moments.ndim != 4 or moments.shape[1] % 2:
            raise ValueError(f"moments must be (b, 2c, h, w), got {tuple(moments.shape)}")
        self.mean, logvar = moments.chunk(2, dim=1)  # b c h w each
        self.logvar = logvar.clamp(-30.0, 20.0)
        self.std = torch.exp(0.5 * self.logvar)
        self.var = torch.exp(self.logvar)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        noise = torch.randn(self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.mean + self.std * noise

    def mode(self) -> torch.Tensor:
        return self.mean

    def kl(self) -> torch.Tensor:
        """KL(q || N(0, I)) per sample, summed over c, h, w: shape (b,).

        Closed form for diagonal Gaussians: 0.5 * sum(mean^2 + var - 1 - logvar).
        """
        return 0.5 * (self.mean.pow(2) + self.var - 1.0 - self.logvar).sum(dim=(1, 2, 3))
