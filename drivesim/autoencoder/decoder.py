"""Convolutional image decoder D: latent (b, C, h, w) -> image (b, 3, h*f, w*f).

`forward` takes an optional `mixer`: a function called with a position name and the
features after the decoder's middle ("mid") and after each resolution level
("level<i>", i = 0 full resolution ... n-1 latent resolution). The temporal decoder
uses it to insert its temporal layers without duplicating the decoder's control flow.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from drivesim.autoencoder.config import AutoencoderConfig
from drivesim.nn.resblock import ResBlock, Upsample, group_norm

Mixer = Callable[[str, torch.Tensor], torch.Tensor]


def mixer_positions(cfg: AutoencoderConfig) -> list[str]:
    """Position names the decoder offers to a mixer, in call order."""
    return ["mid"] + [f"level{i}" for i in reversed(range(len(cfg.channel_mults)))]


class Decoder(nn.Module):
    def __init__(self, cfg: AutoencoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        chans = [cfg.base_channels * m for m in cfg.channel_mults]
        top = chans[-1]
        self.conv_in = nn.Conv2d(cfg.latent_channels, top, 3, padding=1)
        self.mid = nn.ModuleList([ResBlock(top, top, dropout=cfg.dropout) for _ in range(2)])
        # levels[i] runs at resolution H/2^i; they are applied from the last to the first.
        levels: list[nn.Module] = []
        prev = top
        for i in reversed(range(len(chans))):
            level = nn.Module()
            blocks = []
            for _ in range(cfg.decoder_res_blocks):
                blocks.append(ResBlock(prev, chans[i], dropout=cfg.dropout))
                prev = chans[i]
            level.blocks = nn.ModuleList(blocks)
            level.upsample = Upsample(chans[i]) if i > 0 else nn.Identity()
            levels.insert(0, level)
        self.levels = nn.ModuleList(levels)
        self.norm_out = group_norm(chans[0])
        self.conv_out = nn.Conv2d(chans[0], cfg.in_channels, 3, padding=1)

    def level_channels(self, position: str) -> int:
        """Feature channels at a mixer position."""
        if position == "mid":
            return self.cfg.base_channels * self.cfg.channel_mults[-1]
        if position.startswith("level") and position[5:].isdigit():
            index = int(position[5:])
            if index < len(self.cfg.channel_mults):
                return self.cfg.base_channels * self.cfg.channel_mults[index]
        raise ValueError(f"decoder position {position!r} unknown; expected one of {mixer_positions(self.cfg)}")

    @property
    def last_layer_weight(self) -> torch.Tensor:
        """Weight of the final convolution (for the adaptive adversarial weight)."""
        return self.conv_out.weight

    def forward(self, z: torch.Tensor, mixer: Mixer | None = None) -> torch.Tensor:
        """z: (b, C, h, w) -> image (b, in_channels, h*f, w*f), roughly in [-1, 1]."""
        if z.ndim != 4 or z.shape[1] != self.cfg.latent_channels:
            raise ValueError(f"Decoder input must be (b, {self.cfg.latent_channels}, h, w), got {tuple(z.shape)}")
        h = self.conv_in(z)  # b c_top h w (any memory format: see Encoder.forward)
        for block in self.mid:
            h = block(h)
        if mixer is not None:
            h = mixer("mid", h)
        for i in reversed(range(len(self.levels))):
            level = self.levels[i]
            for block in level.blocks:
                h = block(h)
            if mixer is not None:
                h = mixer(f"level{i}", h)
            h = level.upsample(h)  # b c_i 2h 2w (identity at level 0)
        return self.conv_out(F.silu(self.norm_out(h)))  # b 3 H W
