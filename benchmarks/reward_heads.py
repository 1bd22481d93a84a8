"""Reward heads on held-out real latent pairs, read at several pair strides.

The reward heads (`drivesim.rollout.reward_model`) read two latent frames `stride` source frames
apart and are trained at one stride (the stage's `extra.stride`). This measures what they give at
other strides: speed MAE and R^2 (m/s), off-road recall / precision, on the same held-out windows.
A head read at a stride it was not trained on sees motion it never saw; the engine therefore hands
it a pair at the trained stride (`drivesim.rollout.reward_reading`).

  python benchmarks/reward_heads.py --model drivesim/assets/default_model --latents data/world_latents \
      --strides 4 16

Prints JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from drivesim.autoencoder.latent_cache import LatentWindowConfig, LatentWindowDataset
from drivesim.rollout.world_model import load
from drivesim.training.reward import evaluate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="model folder (default: the bundled model)")
    ap.add_argument("--latents", required=True, help="latent cache of the world (held-out split read)")
    ap.add_argument("--strides", type=int, nargs="+", default=[4, 16])
    ap.add_argument("--split", default="val")
    ap.add_argument("--max-windows", type=int, default=2000)
    ap.add_argument("--stage", choices=["reward", "pose"], default="reward",
                    help="which heads: the reward heads or the pose stage beside them")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None, help="also write the JSON here")
    args = ap.parse_args()
    if any(s < 1 for s in args.strides):
        ap.error(f"--strides must be >= 1, got {args.strides}")
    if not Path(args.latents).is_dir():
        ap.error(f"--latents {args.latents} is not a folder")
    torch.set_num_threads(args.threads)
    world = load(args.model)
    heads, trained = (world.reward, world.reward_stride) if args.stage == "reward" else (world.pose, world.pose_stride)
    if heads is None:
        raise SystemExit(f"model folder {world.path} has no {args.stage} stage")
    results = {"model": str(world.path), "stage": args.stage, "trained_stride": trained, "split": args.split,
               "latents": args.latents, "strides": {}}
    for stride in args.strides:
        window = LatentWindowConfig(num_frames=heads.config.num_frames, stride=stride, split=args.split, window_step=1)
        ds = LatentWindowDataset(args.latents, window)
        results["strides"][str(stride)] = evaluate(heads, ds, args.max_windows, torch.device("cpu"))
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
