"""The engine's memory layout for its per-step networks: NCHW, or channels-last convolution weights.

With channels-last weights every convolution returns channels-last activations, and the elementwise ops
after it keep them; GroupNorm normalises in NCHW (`drivesim.nn.group_norm`), whose CPU kernel is far faster
there. In bfloat16 on a CPU with AMX this runs the 3x3 convolutions at the latent sizes 2-4x faster
(`benchmarks/bf16_peak.py`) and the env measurably faster at 1 and 32 envs (docs/results.md,
*Channels-last weights in bfloat16*); in float32 the convolutions gain little, so "auto" is channels-last
exactly where the compute dtype resolves to bfloat16.
"""

from __future__ import annotations

import torch
from torch import nn

LAYOUT_CHOICES = ("auto", "nchw", "channels_last")


def resolve_layout(name: str, compute_dtype: str) -> str:
    """"nchw" or "channels_last" for `EngineConfig.layout` given the resolved compute dtype."""
    if name not in LAYOUT_CHOICES:
        raise ValueError(f"layout={name!r}; allowed: {list(LAYOUT_CHOICES)}")
    if name != "auto":
        return name
    return "channels_last" if compute_dtype == "bfloat16" else "nchw"


def apply_layout(name: str, compute_dtype: str, *modules: nn.Module | None) -> str:
    """Resolve `name` (`resolve_layout`) and, for "channels_last", convert `modules` in place; the layout."""
    layout = resolve_layout(name, compute_dtype)
    if layout == "channels_last":
        to_channels_last(*modules)
    return layout


def to_channels_last(*modules: nn.Module | None) -> None:
    """In place: 4-D parameters and buffers (Conv2d weights) to channels_last, 5-D (Conv3d) to channels_last_3d
    (`Module.to(memory_format=...)` refuses 5-D tensors); None entries are skipped. Inputs stay as given:
    convolutions pick the weight's format."""
    for module in modules:
        if module is None:
            continue
        for tensor in [*module.parameters(), *module.buffers()]:
            if tensor.ndim == 4:
                tensor.data = tensor.data.contiguous(memory_format=torch.channels_last)
            elif tensor.ndim == 5:
                tensor.data = tensor.data.contiguous(memory_format=torch.channels_last_3d)
