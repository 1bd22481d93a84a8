"""Env speed on this machine: steps/s and output frames/s for num_envs = 1, 8, 32, the cost
split per stage, and planner futures/s (K=16, H=8). Cost does not depend on the weights, so
by default a randomly initialised model of the default size is measured; pass --model DIR to
measure a trained folder. Prints JSON.

    python benchmarks/env_speed.py --num-envs 1 8 32 --steps 3
    python benchmarks/env_speed.py --model drivesim/assets/default_model --env drivesim/DriveWorldSteer-v0 --num-envs 1

`--env ID` takes the engine settings of a learned env id's YAML; the flags override them one by one.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _engine_args import add_engine_args, engine_config, resolve_engine_args

from drivesim.rollout.engine import LearnedEngine
from drivesim.rollout.engine_api import EngineConfig
from drivesim.rollout.random_model import RandomModelSpec, build_random_model
from drivesim.rollout.types import SceneRequest
from drivesim.rollout.world_model import load


class StageHooks:
    """Wraps the engine's per-step stage methods, its own `predict`, `fill`, `decode`, `upsample` and its reward
    reader's `read` (as "rewards"), each in `hook(label, fn, *args, **kwargs)`, which calls `fn`; `unwrap`
    restores them. `labels`: which of the stages to wrap."""

    LABELS = ("predict", "fill", "decode", "upsample", "rewards")

    def __init__(self, engine, hook, labels: tuple[str, ...] = LABELS) -> None:
        unknown = sorted(set(labels) - set(self.LABELS))
        if unknown:
            raise ValueError(f"stage labels {unknown} unknown; allowed: {list(self.LABELS)}")
        owners = {"rewards": (engine.reader, "read")}
        self.stages = {label: owners.get(label, (engine, label)) for label in labels}
        for label, (owner, name) in self.stages.items():
            fn = getattr(owner, name)

            def wrapped(*a, _fn=fn, _label=label, **kw):
                return hook(_label, _fn, *a, **kw)

            setattr(owner, name, wrapped)

    def unwrap(self) -> None:
        for owner, name in self.stages.values():
            delattr(owner, name)


class StageTimer(StageHooks):
    """Accumulates the wall time of the engine's stages (`StageHooks`; all but the upsampler) in `totals`."""

    def __init__(self, engine) -> None:
        labels = ("predict", "fill", "decode", "rewards")
        self.totals = dict.fromkeys(labels, 0.0)
        super().__init__(engine, self._timed, labels)

    def _timed(self, label: str, fn, *a, **kw):
        t0 = time.perf_counter()
        out = fn(*a, **kw)
        self.totals[label] += time.perf_counter() - t0
        return out


def measure(engine, num_envs: int, steps: int, warmup: int = 1) -> dict:
    reqs = [SceneRequest(i % 2, i % 3, seed=i) for i in range(num_envs)]
    state = engine.start(reqs).state
    acts = np.zeros((num_envs, 2), np.float32)
    t_warm = time.perf_counter()
    for _ in range(warmup):  # untimed: the first calls pay one-off costs (allocations, kernel selection)
        state = engine.step(state, acts).state
    warmup_seconds = time.perf_counter() - t_warm
    timer = StageTimer(engine)
    t0 = time.perf_counter()
    for _ in range(steps):
        state = engine.step(state, acts).state
    dt = time.perf_counter() - t0
    timer.unwrap()
    return {
        "num_envs": num_envs,
        "env_steps_per_s": num_envs * steps / dt,
        "frames_per_s": num_envs * steps * engine.frames_per_step / dt,
        "stage_seconds_per_step": {k: v / steps for k, v in timer.totals.items()},
        "warmup_seconds": warmup_seconds,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default=None)
    p.add_argument("--num-envs", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1, help="untimed steps before timing (as default_model_speed.py)")
    add_engine_args(p, keyframe_steps=10, interpolation_steps=8)
    p.add_argument("--prediction-window", type=int, default=0, help="0 = the trained window")
    p.add_argument("--fill-keys", type=int, default=EngineConfig.fill_keys, help="keyframes the interpolation sees")
    p.add_argument("--fill-rollouts", type=int, default=EngineConfig.fill_rollouts,
                   help="most rollouts per interpolation call (0 = all in one call)")
    p.add_argument("--decode-frames", type=int, default=EngineConfig.decode_frames,
                   help="most latent frames per decoder call (0 = all rollouts in one call)")
    p.add_argument("--codec-frames", type=int, default=EngineConfig.codec_frames,
                   help="most frames per encoder / decoder call of the ego-motion warp (0 = one call)")
    p.add_argument("--planner", action="store_true", help="also time imagine() with K=16, H=8")
    p.add_argument("--compile", action="store_true",
                   help="EngineConfig.compile: torch.compile the per-step networks; the warm-up steps pay the "
                        "compiling, reported as warmup_seconds")
    args = p.parse_args()
    print(f"engine: {resolve_engine_args(args)}", file=sys.stderr)  # what ran, whatever the flags were
    torch.set_num_threads(torch.get_num_threads())
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.model or build_random_model(Path(tmp), RandomModelSpec(size="default", height=64, width=128))
        cfg = engine_config(args, prediction_window=args.prediction_window, decode_frames=args.decode_frames,
                            codec_frames=args.codec_frames,
                            fill_keys=args.fill_keys, fill_rollouts=args.fill_rollouts, compile=args.compile)
        engine = LearnedEngine(load(folder), cfg)
        results = {
            "model": "random-init default size" if args.model is None else str(args.model),
            "threads": torch.get_num_threads(),
            "frame_size": list(engine.frame_size),
            "frames_per_step": engine.frames_per_step,
            "engine": cfg.__dict__,
            "warmup_steps": args.warmup,
            "compiled": args.compile,
            "runs": [measure(engine, n, args.steps, args.warmup) for n in args.num_envs],
        }
        if args.planner:
            state = engine.start([SceneRequest(0, 1, seed=0)]).state
            t0 = time.perf_counter()
            engine.imagine(state, np.zeros((16, 8, 2), np.float32), decode=False)
            results["planner_futures_per_s_K16_H8"] = 16 / (time.perf_counter() - t0)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
