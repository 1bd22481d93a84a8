"""3-D-convolution residual block over time (a temporal layer l_phi of the Video LDM).

Input and output are frames flattened into the batch, `(b t) c h w`, as the spatial
layers see them; inside, the block works on `b c t h w`. Normalisation is GroupNorm per
frame, so a frame's output depends only on frames within the block's temporal receptive
field (never on statistics of the whole clip): decoding a long video in overlapping
chunks then equals decoding it whole. Time is zero-padded at the clip ends.

The last convolution starts at zero, so a new block is the identity and a model with
blocks inserted starts out equal to the image model it was built from.

On CPU, PyTorch's heuristic runs a float32 3-D convolution over one clip (batch 1, the env's
case) on its slow reference kernel, up to ~2x slower than oneDNN's at the default model's larger
shapes (slightly faster at its smallest; `benchmarks/conv3d_speed.py`); without gradients the block
calls oneDNN directly (`conv3d_inference`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from drivesim.nn.resblock import group_norm, zero_module


def conv3d_inference(conv: nn.Conv3d, x: torch.Tensor) -> torch.Tensor:
    """conv(x) for x (b, c, t, h, w); without autograd or autocast on a float32 CPU tensor it calls
    oneDNN's convolution, which PyTorch's dispatch skips for small batches (same result up to float
    rounding; `benchmarks/conv3d_speed.py` times both)."""
    if torch.compiler.is_compiling():  # traced with fake tensors, which the direct op does not take
        return conv(x)
    fast = (
        x.device.type == "cpu" and x.dtype == torch.float32 and conv.weight.dtype == torch.float32
        and conv.padding_mode == "zeros" and isinstance(conv.padding, tuple)
        and torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled
        and not torch.is_autocast_enabled("cpu")
        and not (torch.is_grad_enabled() and (x.requires_grad or conv.weight.requires_grad))
    )  # fmt: skip
    if not fast:
        return conv(x)
    return torch.ops.aten.mkldnn_convolution(
        x.contiguous(), conv.weight, conv.bias, list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups
    )


def _check_kernel(kernel_size: tuple[int, int, int]) -> tuple[int, int, int]:
    kernel = tuple(int(k) for k in kernel_size)
    if len(kernel) != 3 or any(k < 1 or k % 2 == 0 for k in kernel):
        raise ValueError(f"kernel_size={kernel_size} must be three odd positive ints (t, h, w)")
    return kernel  # type: ignore[return-value]


class TemporalConvBlock(nn.Module):
    """x + conv3d(silu(norm(conv3d(silu(norm(x)))))) with `kernel_size` = (t, h, w).

    `emb_channels` lets a per-frame embedding (b t, emb_channels) scale and shift the
    normalised features after the first convolution (e.g. a diffusion time or action
    embedding). The temporal receptive field
    of one block is `receptive_radius` frames on each side.
    """

    def __init__(
        self,
        channels: int,
        kernel_size: tuple[int, int, int] = (3, 3, 3),
        emb_channels: int | None = None,
        dropout: float = 0.0,
        zero_init: bool = True,
    ) -> None:
        super().__init__()
        kernel = _check_kernel(kernel_size)
        padding = tuple(k // 2 for k in kernel)
        self.channels = channels
        self.kernel_size = kernel
        self.norm1 = group_norm(channels)
        self.conv1 = nn.Conv3d(channels, channels, kernel, padding=padding)
        self.emb_proj = nn.Linear(emb_channels, 2 * channels) if emb_channels else None
        self.norm2 = group_norm(channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv3d(channels, channels, kernel, padding=padding)
        if zero_init:
            zero_module(self.conv2)

    @property
    def receptive_radius(self) -> int:
        """Frames on each side that can influence one output frame."""
        return 2 * (self.kernel_size[0] // 2)

    def forward(self, x: torch.Tensor, num_frames: int, emb: torch.Tensor | None = None) -> torch.Tensor:
        if num_frames < 1 or x.shape[0] % num_frames != 0:
            raise ValueError(
                f"num_frames={num_frames} must be >= 1 and divide the flattened batch size {x.shape[0]}"
            )
        h = F.silu(self.norm1(x))  # (b t) c h w, normalised per frame
        h = rearrange(h, "(b t) c h w -> b c t h w", t=num_frames)
        h = conv3d_inference(self.conv1, h)  # b c t h w
        h = rearrange(h, "b c t h w -> (b t) c h w")
        h = self.norm2(h)  # normalises in NCHW whatever the view's strides (drivesim.nn.group_norm)
        if self.emb_proj is not None:
            if emb is None:
                raise ValueError("TemporalConvBlock built with emb_channels needs `emb` of shape (b t, e)")
            scale, shift = self.emb_proj(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
            h = h * (1 + scale) + shift
        h = self.dropout(F.silu(h))
        h = rearrange(h, "(b t) c h w -> b c t h w", t=num_frames)
        h = conv3d_inference(self.conv2, h)  # b c t h w
        h = rearrange(h, "b c t h w -> (b t) c h w").contiguous()
        return x + h
