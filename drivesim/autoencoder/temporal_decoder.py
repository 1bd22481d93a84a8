"""Video decoder: the image decoder with temporal layers inserted (DESIGN.md §1 stage 2).

Video LDM Sec. 3.1.1 / Fig. 3: the decoder is fine-tuned on video with temporal layers
so decoded frames do not flicker; the encoder stays frozen so latents do not move. At
each chosen decoder position the features h of all frames go through a 3-D-conv
residual block and are blended with the spatial path: `alpha * h + (1 - alpha) * l_phi(h)`.
With every alpha = 1 the output is the image decoder's exactly.

Long videos are decoded in chunks of `chunk_frames` frames, each with `overlap` context
frames on both sides that are decoded and dropped. With overlap >= `receptive_radius`
(the default) every kept frame sees exactly the frames it would see in a full decode, so
chunked decoding equals full decoding and there is no seam; working memory is that of
one chunk.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from einops import rearrange
from torch import nn

from drivesim.autoencoder.config import AutoencoderConfig, TemporalDecoderConfig
from drivesim.autoencoder.decoder import Decoder, mixer_positions
from drivesim.autoencoder.model import Autoencoder
from drivesim.nn.alpha_blender import AlphaBlender
from drivesim.nn.temporal_conv import TemporalConvBlock


class TemporalDecoder(nn.Module):
    def __init__(self, ae_cfg: AutoencoderConfig, cfg: TemporalDecoderConfig) -> None:
        super().__init__()
        self.ae_cfg = ae_cfg
        self.cfg = cfg
        num_levels = len(ae_cfg.channel_mults)
        bad = [lv for lv in cfg.temporal_levels if lv >= num_levels]
        if bad:
            raise ValueError(
                f"temporal_levels={list(cfg.temporal_levels)} has levels {bad} outside the decoder's "
                f"levels 0..{num_levels - 1}"
            )
        self.decoder = Decoder(ae_cfg)
        positions = (["mid"] if cfg.temporal_mid else []) + [f"level{lv}" for lv in cfg.temporal_levels]
        self.temporal = nn.ModuleDict(
            {
                pos: TemporalConvBlock(self.decoder.level_channels(pos), kernel_size=cfg.temporal_kernel)
                for pos in positions
            }
        )
        self.blenders = nn.ModuleDict({pos: AlphaBlender(cfg.init_alpha, mode=cfg.blend_mode) for pos in positions})
        self.register_buffer("latent_scale", torch.ones(()))

    @classmethod
    def from_autoencoder(cls, autoencoder: Autoencoder, cfg: TemporalDecoderConfig) -> TemporalDecoder:
        """A temporal decoder whose spatial path is a copy of `autoencoder`'s decoder."""
        model = cls(autoencoder.cfg, cfg)
        model.decoder.load_state_dict(autoencoder.decoder.state_dict())
        model.latent_scale.copy_(autoencoder.latent_scale)
        return model

    @property
    def receptive_radius(self) -> int:
        """Frames on each side that can influence one decoded frame."""
        return sum(block.receptive_radius for block in self.temporal.values())

    def set_alpha(self, value: float) -> None:
        """Set every blend factor; 1.0 turns this into the image decoder exactly."""
        for blender in self.blenders.values():
            blender.set_alpha(value)

    def alphas(self) -> dict[str, float]:
        return {pos: float(b.alpha().detach()) for pos, b in self.blenders.items()}

    def temporal_parameters(self) -> list[nn.Parameter]:
        """Parameters of the temporal layers and blend factors (what fine-tuning trains)."""
        return [p for m in (self.temporal, self.blenders) for p in m.parameters()]

    @property
    def last_temporal_weight(self) -> torch.Tensor:
        """Last convolution of the last temporal block in call order (for the adaptive GAN weight
        when only temporal layers train)."""
        order = [pos for pos in mixer_positions(self.ae_cfg) if pos in self.temporal]
        if not order:
            raise ValueError("this temporal decoder has no temporal layers (temporal_levels empty, temporal_mid off)")
        return self.temporal[order[-1]].conv2.weight

    def decode(self, z: torch.Tensor, num_frames: int) -> torch.Tensor:
        """Unscaled latents of whole clips ((b t), C, h, w) -> frames ((b t), 3, H, W)."""
        if num_frames < 1 or z.shape[0] % num_frames:
            raise ValueError(f"num_frames={num_frames} must be >= 1 and divide the batch size {z.shape[0]}")

        def mix(position: str, h: torch.Tensor) -> torch.Tensor:
            if position not in self.temporal:
                return h
            return self.blenders[position](h, self.temporal[position](h, num_frames))

        return self.decoder(z, mixer=mix)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        """Unscaled latents (b, t, C, h, w) -> video (b, t, 3, H, W), decoded in one piece."""
        t = latents.shape[1]
        frames = self.decode(rearrange(latents, "b t c h w -> (b t) c h w"), num_frames=t)
        return rearrange(frames, "(b t) c h w -> b t c h w", t=t)  # b t 3 H W

    @torch.no_grad()
    def iter_decode_video(
        self,
        latents: torch.Tensor,
        chunk_frames: int = 16,
        overlap: int | None = None,
        scaled: bool = True,
    ) -> Iterator[torch.Tensor]:
        """Decode (b, t, C, h, w) chunk by chunk, yielding (b, n, 3, H, W) pieces in order.

        `overlap` context frames (default: `receptive_radius`, which makes the result equal to
        decoding the whole video at once) are decoded on each side of a chunk and dropped.
        `scaled` latents are divided by `latent_scale` first.
        """
        if latents.ndim != 5:
            raise ValueError(f"latents must be (b, t, c, h, w), got {tuple(latents.shape)}")
        if chunk_frames < 1:
            raise ValueError(f"chunk_frames={chunk_frames} must be >= 1")
        overlap = self.receptive_radius if overlap is None else overlap
        if overlap < 0:
            raise ValueError(f"overlap={overlap} must be >= 0")
        if scaled:
            latents = latents / self.latent_scale
        t = latents.shape[1]
        for start in range(0, t, chunk_frames):
            stop = min(t, start + chunk_frames)
            lo, hi = max(0, start - overlap), min(t, stop + overlap)
            window = self(latents[:, lo:hi])  # b (hi-lo) 3 H W
            yield window[:, start - lo : stop - lo]  # b (stop-start) 3 H W

    @torch.no_grad()
    def decode_video(
        self,
        latents: torch.Tensor,
        chunk_frames: int = 16,
        overlap: int | None = None,
        scaled: bool = True,
    ) -> torch.Tensor:
        """(b, t, C, h, w) -> (b, t, 3, H, W) in [-1, 1] (clamped), decoded in chunks."""
        pieces = self.iter_decode_video(latents, chunk_frames=chunk_frames, overlap=overlap, scaled=scaled)
        return torch.cat([p.clamp(-1.0, 1.0) for p in pieces], dim=1)  # b t 3 H W
