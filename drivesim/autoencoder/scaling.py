"""The latent scale factor: 1 / std of latents over a sample of frames (LDM Sec. 4.3 / Appendix G).

Diffusion models expect roughly unit-variance inputs; `latent_scale * z` has it. We use
posterior means (the latents the cache stores), pooled over all channels and positions.
"""

from __future__ import annotations

import torch

from drivesim.autoencoder.model import Autoencoder


@torch.no_grad()
def compute_latent_scale(autoencoder: Autoencoder, frames: torch.Tensor, batch_size: int = 32) -> float:
    """1 / std of the posterior means of `frames` (n, c, H, W) in [-1, 1]."""
    if frames.ndim != 4 or frames.shape[0] < 1:
        raise ValueError(f"frames must be a non-empty (n, c, H, W) batch, got {tuple(frames.shape)}")
    was_training = autoencoder.training
    autoencoder.eval()
    means = [autoencoder.encode(frames[i : i + batch_size]).mode() for i in range(0, frames.shape[0], batch_size)]
    autoencoder.train(was_training)
    std = torch.cat(means).double().std().item()
    if not std > 0:
        raise ValueError(f"latents have std={std}; cannot compute a latent scale")
    return 1.0 / std
