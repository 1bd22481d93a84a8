"""The KL image autoencoder: z ~ q(z|x) = E(x), x_hat = D(z) (DESIGN.md §1 stage 1).

Diffusion works on *scaled* latents `latent_scale * z` with unit variance; the scale is
computed from data after training (`drivesim.autoencoder.scaling`) and stored both as a
buffer of this module and in the checkpoint's `extra`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange
from torch import nn

from drivesim.autoencoder.config import AutoencoderConfig
from drivesim.autoencoder.decoder import Decoder
from drivesim.autoencoder.distribution import DiagonalGaussian
from drivesim.autoencoder.encoder import Encoder


@dataclass(frozen=True)
class AutoencoderOutput:
    reconstruction: torch.Tensor  # b c H W
    posterior: DiagonalGaussian
    latent: torch.Tensor  # b C h w (unscaled)


class Autoencoder(nn.Module):
    def __init__(self, cfg: AutoencoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.register_buffer("latent_scale", torch.ones(()))

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        """x: (b, 3, H, W) in [-1, 1] -> posterior over (b, C, H/f, W/f)."""
        return DiagonalGaussian(self.encoder(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Unscaled latent (b, C, h, w) -> image (b, 3, h*f, w*f)."""
        return self.decoder(z)

    def forward(
        self, x: torch.Tensor, sample: bool = True, generator: torch.Generator | None = None
    ) -> AutoencoderOutput:
        posterior = self.encode(x)
        z = posterior.sample(generator) if sample else posterior.mode()
        return AutoencoderOutput(reconstruction=self.decode(z), posterior=posterior, latent=z)

    @torch.no_grad()
    def encode_video(self, video: torch.Tensor, chunk_frames: int = 32, scaled: bool = True) -> torch.Tensor:
        """Posterior means of a video (b, t, 3, H, W) -> (b, t, C, h, w), `chunk_frames` frames at a
        time; multiplied by `latent_scale` when `scaled`."""
        if video.ndim != 5:
            raise ValueError(f"video must be (b, t, c, h, w), got {tuple(video.shape)}")
        b = video.shape[0]
        frames = rearrange(video, "b t c h w -> (b t) c h w")
        parts = [self.encode(frames[i : i + chunk_frames]).mode() for i in range(0, frames.shape[0], chunk_frames)]
        z = torch.cat(parts)  # (b t) C h w
        if scaled:
            z = z * self.latent_scale
        return rearrange(z, "(b t) c h w -> b t c h w", b=b)

    @torch.no_grad()
    def decode_video(self, latents: torch.Tensor, chunk_frames: int = 32, scaled: bool = True) -> torch.Tensor:
        """Frame-by-frame decoding (the image decoder) of (b, t, C, h, w) -> (b, t, 3, H, W)."""
        if latents.ndim != 5:
            raise ValueError(f"latents must be (b, t, c, h, w), got {tuple(latents.shape)}")
        b = latents.shape[0]
        z = rearrange(latents, "b t c h w -> (b t) c h w")
        if scaled:
            z = z / self.latent_scale
        parts = [self.decode(z[i : i + chunk_frames]) for i in range(0, z.shape[0], chunk_frames)]
        return rearrange(torch.cat(parts), "(b t) c h w -> b t c h w", b=b)  # b t 3 H W
