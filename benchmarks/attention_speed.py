"""Attention in bfloat16 on this CPU: PyTorch's fused kernel (`F.scaled_dot_product_attention`) against
explicit matmuls and a softmax (`drivesim.nn.attention.explicit_attention`, `attend`'s path for short
sequences), at the shapes the bundled
model's attention runs at (temporal attention over 3 or 9 frames for 1 and 32 rollouts; box cross-attention;
spatial self-attention), with the mean error of each against float32. Prints JSON.

    python benchmarks/attention_speed.py --threads 2
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from drivesim.nn.attention import SHORT_SEQUENCE, explicit_attention

# (batch, heads, queries, keys, head_dim): temporal attention is (rollouts x h x w, heads, frames, frames)
SHAPES = {
    "temporal, 3 frames, 1 rollout, 16x32": (512, 2, 3, 3, 32),
    "temporal, 9 frames, 1 rollout, 8x16": (128, 2, 9, 9, 32),
    "temporal, 3 frames, 32 rollouts, 16x32": (16384, 2, 3, 3, 32),
    "temporal, 9 frames, 32 rollouts, 8x16": (4096, 2, 9, 9, 32),
    "box cross-attention, 16 boxes": (32, 4, 128, 16, 32),
    "spatial self-attention, 8x16": (32, 4, 128, 128, 32),
}


def best_ms(fn, args: tuple[torch.Tensor, ...], repeats: int) -> float:
    fn(*args)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    rows = []
    with torch.no_grad():
        for name, (b, h, n, m, d) in SHAPES.items():
            q, k, v = (torch.randn(b, h, s, d, generator=g) for s in (n, m, m))
            ref = F.scaled_dot_product_attention(q, k, v)
            qb, kb, vb = q.bfloat16(), k.bfloat16(), v.bfloat16()
            row = {"shape": name, "b_h_n_m_d": [b, h, n, m, d], "explicit_in_attend": max(n, m) <= SHORT_SEQUENCE,
                   "float32_fused_ms": best_ms(F.scaled_dot_product_attention, (q, k, v), args.repeats)}
            paths = (("bfloat16_fused", F.scaled_dot_product_attention), ("bfloat16_explicit", explicit_attention))
            for label, fn in paths:
                row[f"{label}_ms"] = best_ms(fn, (qb, kb, vb), args.repeats)
                row[f"{label}_mean_abs_error"] = float((fn(qb, kb, vb).float() - ref).abs().mean())
            row["explicit_speedup"] = row["bfloat16_fused_ms"] / row["bfloat16_explicit_ms"]
            rows.append(row)
    print(json.dumps({"threads": torch.get_num_threads(), "short_sequence": SHORT_SEQUENCE, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
