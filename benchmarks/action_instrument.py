"""Can the probes read the actions off the world's own video under the commands a benchmark gives?

Action adherence (issue 6: Pearson r >= 0.8 between commanded and probe-read actions) is only a
test of the world model if the ground-truth world, driven by the same commands, scores well on
it. Two ways of commanding, each from `--starts` held-out world starts (seeds 3_000_000 + i after
2 s of the behaviour policy), `--seconds` long:
- `open_loop`: the patterns `video_ldm_quality.py` commanded before session 29: steer 0.8 sin(2 pi t / P
  + phi), P ~ U(3.2, 7.5) s, accel held 1.6 s at U(-0.8, 0.8), whatever the car does;
- `pattern_driver`: `drivesim.world.pattern_driver.PatternDriver` (weaving in the lane with the
  road's curvature fed forward, accel holds kept within 10-34 m/s), as `video_ldm_quality.py` now
  commands.
For each, the fraction of frames off the road, the speed range, and Pearson r of steer / accel
read by every `--probes` folder's clip probe and action probe (where it has one) against the
applied actions, window by window (hop 4 source frames). Prints JSON.

    python benchmarks/action_instrument.py --starts 16 --threads 2 [--probes DIR ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from drivesim.eval.adherence import action_adherence, recover_actions, window_action_targets
from drivesim.eval.checks import uint8_to_video
from drivesim.eval.probe_data import REFERENCE_SEED_BASE
from drivesim.eval.probe_io import load_probes
from drivesim.eval.report import to_plain
from drivesim.paths import default_probes_dir
from drivesim.world import World

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _video_eval import pattern_actor, world_clips  # noqa: E402

DRIVER_SEED_BASE = 7_000_000  # as video_ldm_quality.py's action rollouts


def open_loop_actor(rng: np.random.Generator, seconds: float, fps: int) -> Callable[[World, int], np.ndarray]:
    """video_ldm_quality.py's former open-loop pattern as an actor: steer 0.8 sin(2 pi t / P + phi),
    P ~ U(3.2, 7.5) s, accel held 1.6 s at U(-0.8, 0.8), whatever the car does."""
    n, hold = round(seconds * fps), round(1.6 * fps)
    period, phase = rng.uniform(3.2, 7.5), rng.uniform(0, 2 * np.pi)
    steer = 0.8 * np.sin(2 * np.pi * np.arange(n) / fps / period + phase)
    accel = np.repeat(rng.uniform(-0.8, 0.8, -(-n // hold)), hold)[:n]
    return lambda _world, k: np.array([steer[k], accel[k]], np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--probes", nargs="+", default=[str(default_probes_dir())])
    parser.add_argument("--starts", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=6.4)
    parser.add_argument("--hop", type=int, default=4, help="source frames between probe windows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/action_instrument")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    probes = {p: load_probes(p) for p in args.probes}
    cfg = next(iter(probes.values())).clip.config
    size, fps = (cfg.height, cfg.width), int(round(cfg.fps))
    rng = np.random.default_rng(args.seed)
    actors = {
        "open_loop": lambda i: open_loop_actor(rng, args.seconds, fps),
        "pattern_driver": lambda i: pattern_actor(DRIVER_SEED_BASE + 1000 * args.seed + i),
    }
    sets = {
        name: world_clips(REFERENCE_SEED_BASE, args.starts, args.seconds, size, fps, a) for name, a in actors.items()
    }
    result: dict = {"starts": args.starts, "seconds": args.seconds, "hop": args.hop, "commands": {}}
    for name, (clips, off) in sets.items():
        row: dict = {"off_road_fraction": off, "speed_min_max": [float(clips.speed.min()), float(clips.speed.max())]}
        video = uint8_to_video(clips.frames)
        for folder, p in probes.items():
            readers = {"clip_probe": p.clip} | ({} if p.action is None else {"action_probe": p.action})
            for name_r, reader in readers.items():
                c = reader.config
                recovered = recover_actions(reader, video, args.hop, c.frame_stride)
                targets = window_action_targets(clips.actions, c.num_frames, c.frame_stride, args.hop)
                row[f"{folder}:{name_r}"] = to_plain(action_adherence(targets, recovered))
        result["commands"][name] = row
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "action_instrument.json").write_text(json.dumps(to_plain(result), indent=2))
    print(json.dumps(to_plain(result), indent=2))


if __name__ == "__main__":
    main()
