"""How much of the clip probe's accel target is visible in a video at all: an upper bound.

    python benchmarks/accel_observability.py [--episodes 96 --frames 96 --num-frames 16 \
        --frame-stride 3 --hop 6 --out outputs/accel_observability]

The clip probe regresses the window mean of the commanded accel. A video shows the ego speed,
not the command: throttle fades near max_speed, speed clamps at 0 and max_speed. This script
takes the TRUE ego speed of held-out procedural-world episodes (seeds HELDOUT_SEED_BASE + i, as
the probes' own accuracy) and recovers each probe window's mean command from it, two ways:
  - exact inversion of the ego dynamics per transition (drivesim.world.ego.command_for);
  - a least-squares line on the window's speed change alone (2-fold cross-validated).
Their R² bound what any probe that sees speed perfectly can reach. Prints JSON, writes
<out>/accel_observability.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from drivesim.eval.adherence import r_squared
from drivesim.eval.probe_data import HELDOUT_SEED_BASE, EpisodeConfig, render_episodes
from drivesim.eval.report import write_json
from drivesim.world import WorldConfig
from drivesim.world.ego import command_for


def window_starts(num_frames: int, span: int, hop: int) -> list[int]:
    return list(range(0, num_frames - span + 1, hop))


def inverted_commands(speed: np.ndarray, fps: float, max_speed: float) -> np.ndarray:
    """(t,) true speeds -> (t-1,) commands that explain each transition (on-road dynamics)."""
    accel = np.diff(speed.astype(np.float64)) * fps  # (t-1,) m/s^2
    return np.array([command_for(a, float(v), max_speed) for a, v in zip(accel, speed[:-1])])


def cross_validated_line(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Predictions of y from [1, x] fitted on the other half (even / odd rows)."""
    design = np.stack([np.ones_like(x), x], 1)  # (n, 2)
    out = np.zeros_like(y)
    rows = np.arange(len(y))
    for k in (0, 1):
        fit, test = rows % 2 != k, rows % 2 == k
        w, *_ = np.linalg.lstsq(design[fit], y[fit], rcond=None)
        out[test] = design[test] @ w
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--episodes", type=int, default=96)
    ap.add_argument("--frames", type=int, default=96, help="frames kept per episode")
    ap.add_argument("--num-frames", type=int, default=16, help="probe frames per window")
    ap.add_argument("--frame-stride", type=int, default=3)
    ap.add_argument("--hop", type=int, default=6, help="source frames between window starts")
    ap.add_argument("--out", default="outputs/accel_observability")
    args = ap.parse_args()
    span = (args.num_frames - 1) * args.frame_stride + 1
    if args.frames < span:
        raise SystemExit(f"--frames={args.frames} is shorter than one window ({span} source frames)")
    config = EpisodeConfig(num_frames=args.frames)
    episodes = render_episodes(config, HELDOUT_SEED_BASE, args.episodes, desc="render held-out episodes")
    max_speed = WorldConfig().max_speed
    target, inverted, delta_v = [], [], []
    for e in range(episodes.num_episodes):
        for s in window_starts(args.frames, span, args.hop):
            speed = episodes.speed[e, s : s + span]
            target.append(float(episodes.actions[e, s + 1 : s + span, 1].mean()))
            inverted.append(float(inverted_commands(speed, config.fps, max_speed).mean()))
            delta_v.append(float(speed[-1] - speed[0]))
    target_a = np.array(target)
    result = {
        "windows": len(target),
        "window_seconds": (span - 1) / config.fps,
        "accel_target_std": float(target_a.std()),
        "r2_exact_inversion_of_true_speed": r_squared(target_a, np.array(inverted)),
        "r2_line_on_true_speed_change": r_squared(target_a, cross_validated_line(np.array(delta_v), target_a)),
        "seeds": [HELDOUT_SEED_BASE, HELDOUT_SEED_BASE + args.episodes],
    }
    write_json(Path(args.out) / "accel_observability.json", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
