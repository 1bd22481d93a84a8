"""The engine's compute dtype: float32, bfloat16 autocast, or "auto" (bfloat16 where the hardware
multiplies it natively).

On a CPU with AVX512-BF16 or AMX tiles, bfloat16 convolutions and matmuls run several times faster
than float32 (this machine: 2048² matmul ~1.8 TFLOP/s vs ~0.33, `benchmarks/bf16_peak.py`), so
batched envs gain most; on a CPU without them PyTorch emulates bfloat16 and it is slower than
float32, so "auto" keeps float32 there.
docs/results.md *bfloat16 (session 23)* gives the measured speed and the closed-loop quality at each.
"""

from __future__ import annotations

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
DTYPE_CHOICES = (*DTYPES, "auto")


def native_bf16(device: torch.device) -> bool:
    """Whether `device` multiplies bfloat16 natively: a CUDA device that supports it, or a CPU with
    AVX512-BF16 or AMX tiles (as PyTorch's CPU capability checks report)."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(check is not None and bool(check()) for check in checks)


def resolve_dtype(name: str, device: torch.device) -> str:
    """"float32" or "bfloat16" for the engine's `dtype` setting on `device`."""
    if name not in DTYPE_CHOICES:
        raise ValueError(f"dtype={name!r}; allowed: {list(DTYPE_CHOICES)}")
    if name != "auto":
        return name
    return "bfloat16" if native_bf16(device) else "float32"
