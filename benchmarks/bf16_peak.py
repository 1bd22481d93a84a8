"""Does this machine multiply bfloat16 natively? The 2048² matmul peak in float32 and bfloat16, and a
3×3 convolution at the prediction UNet's latent size (128 channels, 16×32, 4 frames per rollout) for
1, 8 and 32 rollouts in float32, bfloat16 weights and inputs, and float32 under bfloat16 autocast (what
the engine's `dtype: bfloat16` runs), each with NCHW and channels-last tensors, and a GroupNorm (32 groups,
64 channels, one 18-frame decoder group at 16x32) in both layouts, side by side in one run; with the CPU
flags PyTorch reports and what `EngineConfig.dtype="auto"` resolves to. Prints JSON.

    python benchmarks/bf16_peak.py --threads 2
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from default_model_speed import matmul_gflops
from torch import nn

from drivesim.rollout.compute_dtype import DTYPES, native_bf16, resolve_dtype

LAYOUTS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}


def best_seconds(fn: nn.Module, x: torch.Tensor, repeats: int, autocast: bool = False) -> float:
    """Best of `repeats` timed calls fn(x), after one untimed call (kernel selection)."""
    best = float("inf")
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        fn(x)
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn(x)
            best = min(best, time.perf_counter() - t0)
    return best


def conv_gflops(rollouts: int, mode: str, repeats: int, layout: str = "nchw", channels: int = 128,
                frames: int = 4) -> float:
    """GFLOP/s of one 3x3 convolution over `rollouts * frames` latent frames of 16x32 (weights and input in
    `layout`), best of `repeats`."""
    dtype = torch.bfloat16 if mode == "bfloat16" else torch.float32
    conv = nn.Conv2d(channels, channels, 3, padding=1).to(dtype).eval().to(memory_format=LAYOUTS[layout])
    x = torch.randn(rollouts * frames, channels, 16, 32).to(dtype).contiguous(memory_format=LAYOUTS[layout])
    flops = 2 * x.shape[0] * channels * channels * 9 * 16 * 32
    return flops / best_seconds(conv, x, repeats, autocast=mode == "autocast") / 1e9


def group_norm_ms(dtype: torch.dtype, layout: str, repeats: int) -> float:
    """Milliseconds of one GroupNorm(32, 64) over (18, 64, 16, 32) in `dtype` and `layout`, best of `repeats`."""
    norm = nn.GroupNorm(32, 64).to(dtype).eval()
    x = torch.randn(18, 64, 16, 32).to(dtype).contiguous(memory_format=LAYOUTS[layout])
    return 1e3 * best_seconds(norm, x, repeats)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--rollouts", type=int, nargs="+", default=[1, 8, 32])
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    checks = ("_is_avx512_supported", "_is_avx512_bf16_supported", "_is_amx_tile_supported")
    flags = {name: bool(getattr(torch.cpu, name)()) for name in checks if hasattr(torch.cpu, name)}
    print(json.dumps({
        "threads": args.threads, "torch": torch.__version__, "cpu_flags": flags,
        "native_bf16": native_bf16(cpu), "auto_resolves_to": resolve_dtype("auto", cpu),
        "matmul_2048_gflops": {name: matmul_gflops(dtype, 2048, args.repeats) for name, dtype in DTYPES.items()},
        "conv3x3_128ch_16x32_gflops": {
            str(n): {f"{mode}_{layout}": conv_gflops(n, mode, args.repeats, layout)
                     for mode in ("float32", "bfloat16", "autocast") for layout in LAYOUTS}
            for n in args.rollouts
        },
        "group_norm_18x64x16x32_ms": {
            f"{name}_{layout}": group_norm_ms(dtype, layout, args.repeats) for name, dtype in DTYPES.items()
            for layout in LAYOUTS
        },
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
