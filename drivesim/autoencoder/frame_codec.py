"""Single frames <-> scaled latents with a model folder's encoder and decoder.

Used where a model works in latent space but needs a pixel-space operation on single frames in
between (`drivesim.diffusion.ego_warp`: moving a frame forward along the road is a resampling in
pixels; resampling the f = 4 latents directly gives latents the encoder would not produce).
The temporal decoder, when there is one, decodes each frame as a clip of one frame (its image
decoder predates the current world's look; measured in docs/results.md). Frames are independent here, so
`max_frames` may split a call into chunks without changing a frame: on a CPU, one network call over many
frames is slower per frame (docs/results.md, *Batched envs*; the engine's `EngineConfig.codec_frames`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from drivesim.autoencoder.model import Autoencoder
from drivesim.autoencoder.temporal_decoder import TemporalDecoder


@dataclass(frozen=True)
class FrameCodec:
    """decode: scaled latents (n, C, h, w) -> frames (n, 3, H, W) in [-1, 1]; encode: back (posterior mode).
    max_frames: most frames per network call (0 = all in one call)."""

    autoencoder: Autoencoder
    decoder: TemporalDecoder | None = None
    max_frames: int = 0

    def __post_init__(self) -> None:
        if self.max_frames < 0:
            raise ValueError(f"FrameCodec.max_frames={self.max_frames}; allowed: 0 (one call) or a positive count")

    def _chunked(self, fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
        """fn over x (n, ...) in chunks of at most max_frames frames (one call, no copy, when they fit)."""
        if self.max_frames == 0 or x.shape[0] <= self.max_frames:
            return fn(x)
        return torch.cat([fn(part) for part in x.split(self.max_frames)])

    @torch.no_grad()
    def decode(self, z: Tensor) -> Tensor:
        if z.ndim != 4:
            raise ValueError(f"FrameCodec.decode expects scaled latents (n, C, h, w), got {tuple(z.shape)}")
        if self.decoder is not None:
            scale = self.decoder.latent_scale.to(z.dtype)
            return self._chunked(lambda part: self.decoder.decode(part / scale, num_frames=1), z)
        scale = self.autoencoder.latent_scale.to(z.dtype)
        return self._chunked(lambda part: self.autoencoder.decode(part / scale), z)

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"FrameCodec.encode expects frames (n, 3, H, W) in [-1, 1], got {tuple(x.shape)}")
        scale = self.autoencoder.latent_scale.to(x.dtype)
        return self._chunked(lambda part: self.autoencoder.encode(part).mode() * scale, x)
