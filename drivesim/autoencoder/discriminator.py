"""Patch discriminators: 2-D for frames (stage 1), 3-D for clips (stage 2).

PatchGAN-style (Isola et al. 2017, as used by the LDM autoencoders): strided
convolutions with LeakyReLU give one real/fake logit per image patch. GroupNorm instead
of BatchNorm, so small CPU batches behave the same in training and evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange
from torch import nn

from drivesim.nn.resblock import group_norm


@dataclass
class DiscriminatorConfig:
    base_channels: int = 32
    num_layers: int = 3

    def __post_init__(self) -> None:
        if self.base_channels < 1 or self.num_layers < 1:
            raise ValueError(
                f"DiscriminatorConfig base_channels={self.base_channels} and num_layers={self.num_layers} must be >= 1"
            )


class PatchDiscriminator(nn.Module):
    """Images (b, c, H, W) -> patch logits (b, 1, H', W')."""

    def __init__(self, in_channels: int = 3, cfg: DiscriminatorConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or DiscriminatorConfig()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, cfg.base_channels, 4, stride=2, padding=1)]
        layers.append(nn.LeakyReLU(0.2))
        ch = cfg.base_channels
        for i in range(1, cfg.num_layers + 1):
            out = cfg.base_channels * min(2**i, 8)
            stride = 2 if i < cfg.num_layers else 1
            layers += [nn.Conv2d(ch, out, 4, stride=stride, padding=1), group_norm(out), nn.LeakyReLU(0.2)]
            ch = out
        layers.append(nn.Conv2d(ch, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.contiguous())  # b 1 H' W'


class PatchDiscriminator3d(nn.Module):
    """Videos (b, t, c, H, W) -> spatio-temporal patch logits (b, 1, t', H', W').

    Kernels are 3 frames deep, strided in space only, so it judges motion between
    neighbouring frames (temporal consistency) as well as appearance.
    """

    def __init__(self, in_channels: int = 3, cfg: DiscriminatorConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or DiscriminatorConfig()
        layers: list[nn.Module] = [
            nn.Conv3d(in_channels, cfg.base_channels, (3, 4, 4), stride=(1, 2, 2), padding=(1, 1, 1)),
            nn.LeakyReLU(0.2),
        ]
        ch = cfg.base_channels
        for i in range(1, cfg.num_layers + 1):
            out = cfg.base_channels * min(2**i, 8)
            stride = (1, 2, 2) if i < cfg.num_layers else (1, 1, 1)
            layers += [
                nn.Conv3d(ch, out, (3, 4, 4), stride=stride, padding=(1, 1, 1)),
                group_norm(out),
                nn.LeakyReLU(0.2),
            ]
            ch = out
        layers.append(nn.Conv3d(ch, 1, (3, 4, 4), stride=1, padding=(1, 1, 1)))
        self.net = nn.Sequential(*layers)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        if video.ndim != 5:
            raise ValueError(f"PatchDiscriminator3d input must be (b, t, c, h, w), got {tuple(video.shape)}")
        x = rearrange(video, "b t c h w -> b c t h w").contiguous()
        return self.net(x)  # b 1 t' H' W'
