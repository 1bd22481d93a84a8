"""GroupNorm that normalises in NCHW whatever the input's memory format.

The engine can run its networks with channels-last convolution weights (`EngineConfig.layout`), where
bfloat16 convolutions on this class of CPU are up to 4x faster. PyTorch 2.13's CPU GroupNorm kernel for
channels-last input is not: up to 35x slower in bfloat16 at the latent sizes (`benchmarks/bf16_peak.py`),
and its channels-last backward crashes on some shapes. So this GroupNorm makes its input contiguous first
(a no-op for NCHW input, so training and float32 inference are unchanged); the next convolution with
channels-last weights turns the result back. Parameters and state-dict keys are nn.GroupNorm's.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class ContiguousGroupNorm(nn.GroupNorm):
    """nn.GroupNorm over x.contiguous(): (b, c, ...) -> (b, c, ...) in the default (NCHW) memory format."""

    def forward(self, x: Tensor) -> Tensor:
        return F.group_norm(x.contiguous(), self.num_groups, self.weight, self.bias, self.eps)
