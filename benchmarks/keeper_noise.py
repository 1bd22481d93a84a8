"""How the lane keeper's heading source copes with a noisy pose reading (closed-loop driving, issues 6 / 9).

The learned world's pose heads read the lateral offset with step-to-step noise (on generated frames
the reading jumped by 0.3-0.7 lane widths in session 19's guided demo start). This drives the
procedural world itself, where the truth is known, with the keeper (`drivesim.rollout.lane_keeper`)
acting every `--every` frames on the true offset plus noise: Gaussian noise of `--noise` lane widths
per act, and with probability `--jump-p` a jump of +-`--jump` lane widths. `--steer-gain` below 1
scales the steer the world receives (a world model that turns less than the world for a steer: the
stride-4 stage's slope is 0.63, docs/results.md *Steering model*). Every heading source in `--sources` drives
the same starts with the same noise; a lane change is commanded every `--change-every` seconds.

Printed as JSON per (every, noise, steer gain, source), means over `--seeds`: mean |offset - target
lane centre| (lane widths), the fraction of frames off the road, the fraction of acts whose steer is
saturated (|steer| >= 0.99). Drawn: keeper_noise.png (lane error and off-road against the noise).

  python benchmarks/keeper_noise.py
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import matplotlib
import numpy as np

from drivesim.eval.report import write_json
from drivesim.rollout.lane_keeper import HEADING_FROM, LaneKeeper, LaneKeeperConfig
from drivesim.world.config import WorldConfig
from drivesim.world.world import World

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def drive(source: str, every: int, noise: float, steer_gain: float, seed: int, args: argparse.Namespace) -> dict:
    """One drive of `args.seconds` from the world's start at `seed` -> lane error, off-road and saturation."""
    world = World(WorldConfig(height=32, width=64))
    world.reset(seed=seed, crowdedness="low")
    cfg, ego = world.config, world.ego_car
    keeper = LaneKeeper(LaneKeeperConfig(heading_from=source))
    rng = np.random.default_rng(seed)
    action, errors, off_road, saturated, acts = np.zeros(2, np.float32), [], 0, 0, 0
    dt, change_every = every / cfg.fps, max(1, int(round(args.change_every * cfg.fps / every)))
    for f in range(int(args.seconds * cfg.fps)):
        if f % every == 0:
            k = f // every
            if k > 0 and k % change_every == 0:
                keeper.change_lane(1 if keeper.target_lane[0] == 0 else -1)  # towards / away from the middle
            jump = args.jump * rng.choice([-1.0, 1.0]) if rng.random() < args.jump_p else 0.0
            read = ego.x / cfg.lane_width + noise * rng.standard_normal() + jump
            action = keeper.act(np.array([read]), np.array([ego.heading]), np.array([ego.speed]), dt)[0].copy()
            saturated += bool(abs(action[0]) >= 0.99)
            acts += 1
            action[0] *= steer_gain
        off_road += world.advance(action).off_road
        errors.append(abs(ego.x / cfg.lane_width - keeper.lane_centre(keeper.target_lane)[0]))
    frames = len(errors)
    return {"lane_error": float(np.mean(errors)), "off_road": off_road / frames, "steer_saturated": saturated / acts}


def plot(rows: list[dict], args: argparse.Namespace, path: Path) -> None:
    fig, axes = plt.subplots(len(args.every), 2, figsize=(10, 3.2 * len(args.every)), squeeze=False)
    for i, every in enumerate(args.every):
        for j, key in enumerate(("lane_error", "off_road")):
            ax = axes[i, j]
            for source, gain in itertools.product(args.sources, args.steer_gain):
                pts = [(r["noise"], r[key]) for r in rows
                       if r["every"] == every and r["source"] == source and r["steer_gain"] == gain]
                ax.plot(*zip(*pts), marker="o", label=f"{source}, steer x{gain:g}")
            ax.set_xlabel("reading noise (lane widths)")
            ax.set_ylabel(key.replace("_", " "))
            ax.set_title(f"keeper every {every} frames ({every / WorldConfig().fps:.2f} s)")
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sources", nargs="+", default=["offset_rate", "observer"], choices=list(HEADING_FROM))
    parser.add_argument("--every", type=int, nargs="+", default=[4, 16], help="frames per act (4: the stride-4 stage)")
    parser.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.05, 0.1, 0.2])
    parser.add_argument("--jump", type=float, default=0.0, help="lane widths of an occasional jump in the reading")
    parser.add_argument("--jump-p", type=float, default=0.1, help="probability of a jump per act")
    parser.add_argument("--steer-gain", type=float, nargs="+", default=[1.0, 0.6])
    parser.add_argument("--seeds", type=int, nargs="+", default=[3, 4, 5])
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--change-every", type=float, default=10.0)
    parser.add_argument("--out", default="benchmarks/results/keeper_noise")
    args = parser.parse_args(argv)
    if min(args.every) < 1 or min(args.noise) < 0 or args.seconds <= 0 or args.change_every <= 0:
        parser.error("need --every >= 1, --noise >= 0, --seconds > 0, --change-every > 0")
    if not 0 <= args.jump_p <= 1 or min(args.steer_gain) <= 0:
        parser.error("need 0 <= --jump-p <= 1 and --steer-gain > 0")
    rows = []
    for every, noise, gain, source in itertools.product(args.every, args.noise, args.steer_gain, args.sources):
        runs = [drive(source, every, noise, gain, seed, args) for seed in args.seeds]
        rows.append({"every": every, "noise": noise, "steer_gain": gain, "source": source}
                    | {k: float(np.mean([r[k] for r in runs])) for k in runs[0]})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot(rows, args, out / "keeper_noise.png")
    result = {"command": vars(args), "rows": rows, "plot": str(out / "keeper_noise.png")}
    write_json(out / "keeper_noise.json", result)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
