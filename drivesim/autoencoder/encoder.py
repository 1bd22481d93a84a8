"""Convolutional encoder E: image (b, 3, H, W) -> posterior moments (b, 2C, H/f, W/f)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from drivesim.autoencoder.config import AutoencoderConfig
from drivesim.nn.resblock import Downsample, ResBlock, group_norm


class Encoder(nn.Module):
    def __init__(self, cfg: AutoencoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        chans = [cfg.base_channels * m for m in cfg.channel_mults]
        self.conv_in = nn.Conv2d(cfg.in_channels, chans[0], 3, padding=1)
        self.levels = nn.ModuleList()
        prev = chans[0]
        for i, ch in enumerate(chans):
            level = nn.Module()
            blocks = []
            for _ in range(cfg.num_res_blocks):
                blocks.append(ResBlock(prev, ch, dropout=cfg.dropout))
                prev = ch
            level.blocks = nn.ModuleList(blocks)
            level.downsample = Downsample(ch) if i < len(chans) - 1 else nn.Identity()
            self.levels.append(level)
        self.mid = nn.ModuleList([ResBlock(prev, prev, dropout=cfg.dropout) for _ in range(2)])
        self.norm_out = group_norm(prev)
        self.conv_out = nn.Conv2d(prev, 2 * cfg.latent_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (b, in_channels, H, W) in [-1, 1] -> moments (b, 2C, H/f, W/f)."""
        if x.ndim != 4 or x.shape[1] != self.cfg.in_channels:
            raise ValueError(f"Encoder input must be (b, {self.cfg.in_channels}, H, W), got {tuple(x.shape)}")
        self.cfg.latent_size(x.shape[-2], x.shape[-1])
        # channels-last inputs (e.g. a permuted `h w c` frame) are fine: every GroupNorm normalises in NCHW
        # (drivesim.nn.group_norm), away from torch 2.13's crashing channels-last CPU backward kernel
        h = self.conv_in(x)  # b c0 H W
        for level in self.levels:
            for block in level.blocks:
                h = block(h)
            h = level.downsample(h)  # b c_i H/2^i W/2^i
        for block in self.mid:
            h = block(h)
        return self.conv_out(F.silu(self.norm_out(h)))  # b 2C H/f W/f
