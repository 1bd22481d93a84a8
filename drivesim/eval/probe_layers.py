"""Small convolutional building blocks shared by the frame and clip probes."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


class ConvBNAct(nn.Sequential):
    """3×3 (or k×k) convolution, batch norm, ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, kernel: int = 3) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        )


@dataclass(frozen=True)
class TrunkFeatures:
    """Feature maps at strides 4, 8 and 16 of the input, and their global average pool (b, c16)."""

    stride4: torch.Tensor
    stride8: torch.Tensor
    stride16: torch.Tensor
    pooled: torch.Tensor


class Trunk(nn.Module):
    """stem (stride 2) -> stride 4 -> stride 8 -> stride 16, two convs per level.

    widths: channels at strides 2, 4, 8, 16.
    """

    def __init__(self, in_channels: int, widths: tuple[int, int, int, int]) -> None:
        super().__init__()
        if len(widths) != 4 or min(widths) < 1:
            raise ValueError(f"widths={list(widths)} must be 4 positive channel counts (strides 2, 4, 8, 16)")
        w2, w4, w8, w16 = widths
        self.stem = nn.Sequential(ConvBNAct(in_channels, w2, stride=2), ConvBNAct(w2, w2))
        self.level4 = nn.Sequential(ConvBNAct(w2, w4, stride=2), ConvBNAct(w4, w4))
        self.level8 = nn.Sequential(ConvBNAct(w4, w8, stride=2), ConvBNAct(w8, w8))
        self.level16 = nn.Sequential(ConvBNAct(w8, w16, stride=2), ConvBNAct(w16, w16))
        self.out_channels = w16

    def forward(self, x: torch.Tensor) -> TrunkFeatures:
        s4 = self.level4(self.stem(x))  # (b, w4, h/4, w/4)
        s8 = self.level8(s4)  # (b, w8, h/8, w/8)
        s16 = self.level16(s8)  # (b, w16, h/16, w/16)
        pooled = s16.mean(dim=(2, 3))  # (b, w16)
        return TrunkFeatures(stride4=s4, stride8=s8, stride16=s16, pooled=pooled)


def resize_frames(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinear (antialiased) resize of `b c h w` frames to (height, width); no-op when equal."""
    if frames.shape[-2:] == (height, width):
        return frames
    return F.interpolate(frames, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
