"""Peak RSS of a short vs a 10x longer rollout (issue 7: equal within 5%), printed as JSON.

Each rollout runs in its own subprocess (so peaks do not mix) and streams its frames to an
MP4 the way `drivesim generate` does; the engine keeps only its context window, so memory
must not grow with the rollout length.

    python benchmarks/rollout_memory.py --random tiny --seconds 60 600 --out bench_memory.json
    python benchmarks/rollout_memory.py --model runs/models/default --seconds 60 600
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from drivesim.rollout.engine import LearnedEngine


@dataclass
class Row:
    seconds_of_video: float
    steps: int
    frames: int
    peak_rss_mb: float
    wall_seconds: float


def _rollout(model: str, seconds: float, threads: int, fast: bool) -> Row:
    """Child process: one streamed rollout; reports its own peak RSS."""
    import torch

    from drivesim.data.video import VideoWriter
    from drivesim.rollout.engine_api import EngineConfig
    from drivesim.rollout.policies import policy_actions
    from drivesim.rollout.types import SceneRequest
    from drivesim.rollout.world_model import load

    torch.set_num_threads(threads)
    steps_cfg = {"keyframe_steps": 1, "first_frame_steps": 1, "interpolation_steps": 1} if fast else {}
    engine = LearnedEngine(load(model), EngineConfig(**steps_cfg))
    steps_per_second = engine.output_fps / engine.frames_per_step
    n = max(1, int(round(seconds * steps_per_second)))
    actions = policy_actions("weave", n, 0, steps_per_second)
    h, w = engine.frame_size
    start = time.perf_counter()
    out = engine.start([SceneRequest(time_of_day=0, crowdedness=1, seed=0)])  # day, medium
    frames = 1
    with tempfile.TemporaryDirectory() as tmp, VideoWriter(Path(tmp) / "r.mp4", engine.output_fps, h, w) as writer:
        writer.write(out.frames[0, -1])
        state = out.state
        for i in range(n):
            step = engine.step(state, actions[i : i + 1])
            state = step.state
            for frame in step.frames[0]:
                writer.write(frame)
                frames += 1
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    return Row(seconds, n, frames, peak_mb, time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="model folder (default: the bundled one)")
    p.add_argument("--random", choices=["tiny", "default"], help="build a random model of this size instead")
    p.add_argument("--seconds", type=float, nargs="+", default=[60.0, 600.0], help="video lengths to compare")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--full-steps", action="store_true", help="the engine's default sampling steps (slow)")
    p.add_argument("--out")
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        row = _rollout(args.child[0], float(args.child[1]), args.threads, not args.full_steps)
        print(json.dumps(asdict(row)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if args.random:
            from drivesim.rollout.random_model import RandomModelSpec, build_random_model

            model = str(build_random_model(Path(tmp) / "model", RandomModelSpec(size=args.random)))
        if model is None:
            from drivesim.paths import default_model_dir

            model = str(default_model_dir())
        rows = []
        for seconds in args.seconds:
            cmd = [sys.executable, __file__, "--child", model, str(seconds), "--threads", str(args.threads)]
            cmd += ["--full-steps"] if args.full_steps else []
            done = subprocess.run(cmd, check=True, capture_output=True, text=True)
            rows.append(Row(**json.loads(done.stdout.strip().splitlines()[-1])))
            print(f"{seconds:.0f} s of video: peak RSS {rows[-1].peak_rss_mb:.0f} MB", file=sys.stderr)
    peaks = np.array([r.peak_rss_mb for r in rows])
    result = {
        "model": args.model or ("random " + args.random if args.random else "bundled default"),
        "fast_sampling": not args.full_steps,
        "rows": [asdict(r) for r in rows],
        "peak_rss_spread": float(peaks.max() / peaks.min() - 1.0),
        "target": "peak RSS equal within 5% (spread <= 0.05)",
        "passes": bool(peaks.max() / peaks.min() - 1.0 <= 0.05),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
