"""Held-out accuracy of the evaluation probes (they bound every metric built on them).

    python benchmarks/probe_accuracy.py [--probes DIR] [--episodes 24 --frames 240 \
        --threads 1 --out outputs/probe_accuracy]

Renders `--episodes` procedural-world episodes from the held-out seeds HELDOUT_SEED_BASE + i
(2_000_000 + i; probe training uses 1_000_000 + i), cycling over the 6 (time_of_day,
crowdedness) pairs, and prints JSON: time-of-day / crowdedness accuracy per frame and per 1 s
clip, vehicle-count MAE, detector recall / precision / mean IoU at IoU 0.5 on vehicles taller
than 8 px, and the clip probe's R² / Pearson r for steer, accel (window means) and speed,
together with the issue's targets and whether each is met (steer / accel from the action probe where
the folder has one). `--pattern-fraction 1` drives every episode, after its warm-up, by a PatternDriver
(random accel holds the speed does not explain). Writes <out>/probe_accuracy.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from drivesim.eval.probe_accuracy import probe_accuracy
from drivesim.eval.probe_data import HELDOUT_SEED_BASE, EpisodeConfig, render_episodes
from drivesim.eval.probe_io import load_probes
from drivesim.eval.report import to_plain, write_json
from drivesim.paths import default_probes_dir

TARGETS = {
    "time_of_day_accuracy": 0.99,
    "crowdedness_accuracy": 0.90,
    "crowdedness_clip_accuracy": 0.90,
    "detector_recall": 0.80,
    "steer_r2": 0.80,
    "accel_r2": 0.80,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--probes", default=str(default_probes_dir()), help="probes folder (default: bundled)")
    parser.add_argument("--episodes", type=int, default=24)
    parser.add_argument("--frames", type=int, default=240, help="frames kept per episode")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    parser.add_argument("--out", default="outputs/probe_accuracy")
    parser.add_argument("--pattern-fraction", type=float, default=0.0,
                        help="fraction of episodes driven by a PatternDriver after the warm-up (EpisodeConfig)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    probes = load_probes(args.probes)
    episode = EpisodeConfig(
        height=64, width=128, fps=int(round(probes.clip.config.fps)), num_frames=args.frames, warmup_frames=30,
        pattern_fraction=args.pattern_fraction,
    )
    start = time.perf_counter()
    episodes = render_episodes(episode, HELDOUT_SEED_BASE, args.episodes, desc="held-out episodes")
    render_s = time.perf_counter() - start
    start = time.perf_counter()
    acc = probe_accuracy(probes, episodes)
    result = {
        "probes": str(args.probes),
        "heldout_seeds": [HELDOUT_SEED_BASE, HELDOUT_SEED_BASE + args.episodes],
        "episode": dataclasses.asdict(episode),
        "accuracy": to_plain(acc),
        "targets": {
            k: {"target": v, "value": getattr(acc, k), "met": getattr(acc, k) >= v} for k, v in TARGETS.items()
        },
        "render_seconds": round(render_s, 1),
        "eval_seconds": round(time.perf_counter() - start, 1),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "probe_accuracy.json", result)
    print(json.dumps(to_plain(result), indent=2))


if __name__ == "__main__":
    main()
