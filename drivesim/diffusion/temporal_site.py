"""The temporal layers after one spatial block of the video UNet: [3-D conv, blend], attention, blend.

Each merges as alpha * z + (1 - alpha) * z' with a learned alpha (`AlphaBlender`); the context
features (masked context, forecast, ego warp, summed) are added to the input of both layers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor, nn

from drivesim.nn.alpha_blender import AlphaBlender
from drivesim.nn.temporal_attention import TemporalAttentionBlock
from drivesim.nn.temporal_conv import TemporalConvBlock

if TYPE_CHECKING:
    from drivesim.diffusion.video_unet_config import VideoUNetConfig


class TemporalSite(nn.Module):
    """The temporal layers after one spatial block: [conv3d, blend], attention, blend."""

    def __init__(self, channels: int, emb_dim: int, cfg: VideoUNetConfig) -> None:
        super().__init__()
        self.conv: TemporalConvBlock | None = None
        self.conv_blend: AlphaBlender | None = None
        if cfg.temporal_layers == "attention+conv3d":
            self.conv = TemporalConvBlock(channels, cfg.conv_kernel, emb_channels=emb_dim, zero_init=cfg.zero_init)
            self.conv_blend = AlphaBlender(cfg.init_alpha, cfg.blend_mode)
        self.attn = TemporalAttentionBlock(
            channels,
            heads=max(1, channels // cfg.attention_head_dim),
            head_dim=min(cfg.attention_head_dim, channels),
            emb_dim=emb_dim,
            position_dim=cfg.position_dim,
            ff_mult=cfg.ff_mult,
            zero_init=cfg.zero_init,
        )
        self.attn_blend = AlphaBlender(cfg.init_alpha, cfg.blend_mode)

    def blenders(self) -> list[AlphaBlender]:
        return [b for b in (self.conv_blend, self.attn_blend) if b is not None]

    def forward(self, h: Tensor, num_frames: int, emb: Tensor, context: Tensor | None) -> Tensor:
        """h (b t) c H W; emb (b t, e); context (b t) c H W features of c_S or None."""
        if self.conv is not None and self.conv_blend is not None:
            x = h if context is None else h + context
            h = self.conv_blend(h, self.conv(x, num_frames, emb))  # α·z + (1 − α)·z'
        x = h if context is None else h + context
        return self.attn_blend(h, self.attn(x, num_frames, emb))  # α·z + (1 − α)·z'
