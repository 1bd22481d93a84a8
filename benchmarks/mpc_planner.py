"""Example MPC planner over the planner API: random shooting / CEM over action sequences.

At each control step, imagine K futures of H steps from the live state (which is not
touched), score them with the reward heads' predicted returns, and execute the first
action of the best sequence. Prints JSON of the executed actions and returns.

    python benchmarks/mpc_planner.py --model DIR --steps 5 --k 16 --horizon 4
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from drivesim.rollout.engine import LearnedEngine
from drivesim.rollout.engine_api import EngineConfig
from drivesim.rollout.random_model import build_random_model
from drivesim.rollout.types import SceneRequest
from drivesim.rollout.world_model import load


def cem_plan(engine, state, k: int, horizon: int, iters: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Cross-entropy method: refit a Gaussian over action sequences to the top 25%."""
    mean = np.zeros((horizon, 2), np.float32)
    std = np.full((horizon, 2), 0.6, np.float32)
    best, best_return = mean, -np.inf
    for _ in range(iters):
        seqs = np.clip(mean + std * rng.standard_normal((k, horizon, 2)), -1, 1).astype(np.float32)
        returns = engine.imagine(state, seqs, decode=False).returns
        elite = seqs[np.argsort(returns)[-max(2, k // 4) :]]
        mean, std = elite.mean(0), elite.std(0) + 0.05
        if returns.max() > best_return:
            best, best_return = seqs[int(returns.argmax())], float(returns.max())
    return best, best_return


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default=None, help="model folder (default: a tiny random model, for a smoke run)")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--horizon", type=int, default=3)
    p.add_argument("--iters", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.model or build_random_model(Path(tmp))
        engine = LearnedEngine(load(folder), EngineConfig(keyframe_steps=4, first_frame_steps=4, interpolation_steps=2))
        state = engine.start([SceneRequest(0, 1, seed=args.seed)]).state
        log = []
        for _ in range(args.steps):
            plan, ret = cem_plan(engine, state, args.k, args.horizon, args.iters, rng)
            out = engine.step(state, plan[:1])
            state = out.state
            log.append({"action": plan[0].tolist(), "planned_return": ret, "collision": float(out.collision[0])})
    print(json.dumps({"model": str(args.model), "k": args.k, "horizon": args.horizon, "steps": log}, indent=2))


if __name__ == "__main__":
    main()
