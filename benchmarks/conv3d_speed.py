"""The 3-D convolutions of the temporal layers on this CPU: PyTorch's own dispatch (`conv(x)`, which
for a float32 batch of one clip picks its slow reference kernel) against `conv3d_inference` (oneDNN
called directly), side by side in one run: per convolution shape met in one env step of a model, and
whole env steps with either path. Prints JSON.

    python benchmarks/conv3d_speed.py --model drivesim/assets/default_model --env drivesim/DriveWorldSteer-v0
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from torch import nn

from drivesim.nn import temporal_conv
from drivesim.registration import engine_defaults, learned_env_ids
from drivesim.rollout.engine import LearnedEngine
from drivesim.rollout.engine_api import EngineConfig
from drivesim.rollout.types import SceneRequest
from drivesim.rollout.world_model import load


def shapes_of_one_step(engine, num_envs: int) -> list[tuple[tuple[int, ...], nn.Conv3d]]:
    """(input shape, conv) of every temporal 3-D convolution one env step runs, first of each shape."""
    seen: dict[tuple, nn.Conv3d] = {}
    original = temporal_conv.conv3d_inference

    def record(conv: nn.Conv3d, x: torch.Tensor) -> torch.Tensor:
        seen.setdefault((tuple(x.shape), tuple(conv.kernel_size)), conv)
        return original(conv, x)

    state = engine.start([SceneRequest(0, 1, seed=i) for i in range(num_envs)]).state
    temporal_conv.conv3d_inference = record
    try:
        engine.step(state, np.zeros((num_envs, 2), np.float32))
    finally:
        temporal_conv.conv3d_inference = original
    return [(shape, conv) for (shape, _), conv in seen.items()]


def time_call(fn, repeats: int) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats


def env_steps(engine, num_envs: int, steps: int, path: str) -> float:
    """Seconds per env step with the chosen path ("dispatch" = conv(x), "onednn" = conv3d_inference)."""
    original = temporal_conv.conv3d_inference
    if path == "dispatch":
        temporal_conv.conv3d_inference = lambda conv, x: conv(x)
    try:
        state = engine.start([SceneRequest(0, 1, seed=i) for i in range(num_envs)]).state
        acts = np.zeros((num_envs, 2), np.float32)
        state = engine.step(state, acts).state  # warm-up
        t0 = time.perf_counter()
        for _ in range(steps):
            state = engine.step(state, acts).state
        return (time.perf_counter() - t0) / steps
    finally:
        temporal_conv.conv3d_inference = original


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default="drivesim/assets/default_model")
    p.add_argument("--env", default="drivesim/DriveWorldSteer-v0", choices=learned_env_ids())
    p.add_argument("--num-envs", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5, help="timed calls per convolution shape")
    p.add_argument("--steps", type=int, default=6, help="timed env steps per path (alternating, twice)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    engine = LearnedEngine(load(args.model), EngineConfig(**engine_defaults(args.env)))
    rows = []
    with torch.no_grad():
        for shape, conv in shapes_of_one_step(engine, args.num_envs):
            x = torch.randn(shape)
            ref, fast = conv(x), temporal_conv.conv3d_inference(conv, x)
            rows.append({
                "input_shape": list(shape), "kernel": list(conv.kernel_size),
                "dispatch_ms": 1e3 * time_call(lambda: conv(x), args.repeats),  # noqa: B023
                "onednn_ms": 1e3 * time_call(lambda: temporal_conv.conv3d_inference(conv, x), args.repeats),  # noqa: B023
                "max_abs_diff": float((ref - fast).abs().max()),
            })  # fmt: skip
    per_step: dict[str, list[float]] = {"dispatch": [], "onednn": []}
    for _ in range(2):
        for path in per_step:
            per_step[path].append(env_steps(engine, args.num_envs, args.steps, path))
    fps = {k: [engine.frames_per_step * args.num_envs / s for s in v] for k, v in per_step.items()}
    print(json.dumps({
        "model": args.model, "env": args.env, "num_envs": args.num_envs, "threads": args.threads,
        "convolutions": rows,
        "env_seconds_per_step": per_step, "env_frames_per_s": fps,
        "speedup_env": float(np.mean(per_step["dispatch"]) / np.mean(per_step["onednn"])),
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
