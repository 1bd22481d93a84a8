"""Single frames <-> scaled latents with a model folder's encoder and decoder.

Used where a model works in latent space but needs a pixel-space operation on single frames in
between (`drivesim.diffusion.ego_warp`: moving a frame forward along the road is a resampling in
pixels; resampling the f = 4 latents directly gives latents the encoder would not produce).
The temporal decoder, when there is one, decodes each frame as a clip of one frame (its image
decoder predates the current world's look; measured in docs/results.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from drivesim.autoencoder.model import Autoencoder
from drivesim.autoencoder.temporal_decoder import TemporalDecoder


@dataclass(frozen=True)
class FrameCodec:
    """decode: scaled latents (n, C, h, w) -> frames (n, 3, H, W) in [-1, 1]; encode: back (posterior mode)."""

    autoencoder: Autoencoder
    decoder: TemporalDecoder | None = None

    @torch.no_grad()
    def decode(self, z: Tensor) -> Tensor:
        if z.ndim != 4:
            raise ValueError(f"FrameCodec.decode expects scaled latents (n, C, h, w), got {tuple(z.shape)}")
        if self.decoder is not None:
            return self.decoder.decode(z / self.decoder.latent_scale.to(z.dtype), num_frames=1)
        return self.autoencoder.decode(z / self.autoencoder.latent_scale.to(z.dtype))

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"FrameCodec.encode expects frames (n, 3, H, W) in [-1, 1], got {tuple(x.shape)}")
        return self.autoencoder.encode(x).mode() * self.autoencoder.latent_scale.to(x.dtype)
