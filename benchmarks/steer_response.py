"""Does the world model steer where it is told? Steer adherence in lane widths (issue 6).

From each of `--starts` held-out world states (an episode warmed up by the behaviour policy for
`--warmup` seconds), the steer is held at each `--steers` value for `--seconds`, the accel at the
command that holds the start speed: in the procedural world (the truth) and in each `--model`,
which starts from the same frame. The lateral offset from the road centre (lane widths) is read
off the frames by the pose heads of `--heads` (a model folder with a "pose" stage or reward heads
with `pose`; default the bundled model): every frame is encoded and the heads read it with the frame
as many source frames before it as they were trained on. The same heads read the world's own
frames too, which says how well they read. Printed as JSON, per steer and source (true offset,
heads on the world, heads on each model): the mean change of offset from the start to the last
`--end` seconds; per model the slope and Pearson r of its change against the true change over
all rollouts (a model that ignores the steer: slope ~0); drawn in steer_response.png.

  python benchmarks/steer_response.py --model drivesim/assets/default_model --model runs/models/default_stride4

Engine settings as in closed_loop.py: `--env ID` (a learned env id's YAML, e.g. drivesim/DriveWorldSteer-v0)
with flags overriding it; without either, EngineConfig's (context guidance 1.5 at every step) with 4
keyframe steps.

With several --model, the models are measured in one run on the same starts and seeds.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import torch
from _engine_args import add_engine_args, engine_config, resolve_engine_args
from einops import rearrange

from drivesim.eval.adherence import pearson
from drivesim.eval.checks import uint8_to_video
from drivesim.eval.report import write_json
from drivesim.rollout.ego_speed import MAX_SPEED
from drivesim.rollout.engine import LearnedEngine
from drivesim.rollout.world_model import WorldModel, load
from drivesim.world.ego import command_for

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _video_eval import heldout_start, rollout  # noqa: E402


def world_runs(args: argparse.Namespace, h: int, w: int, fps: int) -> dict:
    """The truth: per start, the start frame, labels and speed, and per steer the world's frames
    (n, s, t + 1, h, w, 3) and true lateral offsets (n, s, t + 1)."""
    n, steers, t = args.starts, args.steers, int(round(args.seconds * fps))
    frames = np.zeros((n, len(steers), t + 1, h, w, 3), np.uint8)
    offset = np.zeros((n, len(steers), t + 1), np.float32)
    labels, speed = [], np.zeros(n, np.float32)
    for i in range(n):
        world, frame, tod, crowd = heldout_start(i, h, w, fps, args.warmup)
        labels.append((tod, crowd))
        speed[i] = frame.ego.speed
        hold = command_for(0.0, frame.ego.speed, MAX_SPEED)
        for j, steer in enumerate(steers):
            run, f = copy.deepcopy(world), frame
            frames[i, j, 0], offset[i, j, 0] = f.image, f.ego.lateral_offset
            for k in range(1, t + 1):
                f = run.step(np.array([steer, hold], np.float32))
                frames[i, j, k], offset[i, j, k] = f.image, f.ego.lateral_offset
    return {"frames": frames, "offset": offset, "labels": labels, "speed": speed}


@torch.no_grad()
def read_offsets(heads: WorldModel, frames: np.ndarray, batch: int = 64) -> np.ndarray:
    """(b, t, h, w, 3) uint8 -> (b, t) lateral offsets the pose heads read (NaN for the first frames,
    which have no partner `stride` frames before them)."""
    pose_heads, stride = heads.pose_heads()
    b, t = frames.shape[:2]
    out = np.full((b, t), np.nan, np.float32)
    for i in range(b):
        video = uint8_to_video(frames[i])  # 1 t c h w
        z = heads.autoencoder.encode_video(video)[0]  # t c h w (scaled)
        pairs = torch.stack([z[:-stride], z[stride:]], dim=1)  # (t - stride) 2 c h w
        read = torch.cat([pose_heads(pairs[k : k + batch]).lateral_offset for k in range(0, len(pairs), batch)])
        out[i, stride:] = read.numpy()
    return out


def change(offsets: np.ndarray, start: np.ndarray, end_frames: int) -> np.ndarray:
    """(..., t) offsets -> (...) mean over the last end_frames minus the true start offset."""
    return np.nanmean(offsets[..., -end_frames:], axis=-1) - start


def fit(true: np.ndarray, read: np.ndarray) -> dict:
    slope = float(np.polyfit(true.ravel(), read.ravel(), 1)[0])
    return {"slope_vs_true": slope, "pearson_r_vs_true": pearson(true.ravel(), read.ravel())}


def measure(name: str, world: WorldModel, args: argparse.Namespace, truth: dict, heads: WorldModel) -> dict:
    engine = LearnedEngine(world, engine_config(args))
    if engine.output_fps != world.fps:
        raise SystemExit(f"{name}: {engine.output_fps:g} output frames/s, not the source rate {world.fps:g}")
    steps = int(round(args.seconds * world.fps / engine.keyframe_stride))
    n = len(truth["labels"])
    starts = truth["frames"][:, 0, 0]
    tods, crowds = [t for t, _ in truth["labels"]], [c for _, c in truth["labels"]]
    offsets = []
    for steer in args.steers:
        hold = np.array([command_for(0.0, float(v), MAX_SPEED) for v in truth["speed"]], np.float32)
        actions = np.zeros((n, steps, 2), np.float32)
        actions[:, :, 0], actions[:, :, 1] = steer, hold[:, None]
        chunks = rollout(engine, starts, tods, crowds, actions, args.seed, f"{name} steer {steer:+g}", truth["speed"])
        offsets.append(read_offsets(heads, np.concatenate(list(chunks), axis=1)))
    frames = 1 + steps * engine.frames_per_step
    return {"offsets": rearrange(np.stack(offsets), "s n t -> n s t"), "frames_per_rollout": frames}


def plot(series: dict[str, np.ndarray], steers: list[float], fps: float, path: Path) -> None:
    fig, axes = plt.subplots(1, len(steers), figsize=(4 * len(steers), 3.2), sharey=True, squeeze=False)
    for j, (ax, steer) in enumerate(zip(axes[0], steers)):
        for name, off in series.items():
            with warnings.catch_warnings():  # the first frames have no reading: NaN for every start
                warnings.simplefilter("ignore", RuntimeWarning)
                curve = np.nanmean(off[:, j], axis=0)
            ax.plot(np.arange(len(curve)) / fps, curve, "-" if name == "world (true)" else "--", label=name)
        ax.set_title(f"steer {steer:+g}")
        ax.set_xlabel("s")
    axes[0][0].set_ylabel("lateral offset (lane widths), mean of starts")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="world model folder (repeatable)")
    parser.add_argument("--heads", default=None, help="model folder with pose heads (default: bundled)")
    parser.add_argument("--steers", type=float, nargs="+", default=[-0.4, 0.0, 0.4])
    parser.add_argument("--starts", type=int, default=4, help="held-out world episodes")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of the behaviour policy before the start")
    parser.add_argument("--seconds", type=float, default=2.0, help="the steer is held this long")
    parser.add_argument("--end", type=float, default=0.25, help="seconds at the end whose reading is averaged")
    add_engine_args(parser)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/steer_response")
    args = parser.parse_args(argv)
    print(f"engine: {resolve_engine_args(args)}", file=sys.stderr)  # what ran, whatever the flags were
    bad = [v for v in args.steers if not -1.0 <= v <= 1.0]
    if bad:
        parser.error(f"--steers {bad} out of range; allowed -1..1")
    if args.starts < 1 or args.seconds <= args.end or args.end <= 0:
        parser.error(f"need --starts >= 1 and 0 < --end < --seconds; got {args.starts}, {args.end}, {args.seconds}")
    torch.set_num_threads(args.threads)
    heads = load(args.heads)
    if heads.pose_heads() is None:
        parser.error(f"--heads {heads.path}: no pose stage, and its reward heads do not read pose")
    h, w = heads.metadata.get("autoencoder", {}).get("image_size", [64, 128])
    truth = world_runs(args, int(h), int(w), int(heads.fps))
    end = max(1, int(round(args.end * heads.fps)))
    start = truth["offset"][:, :, 0]  # n s
    true_change = change(truth["offset"], start, end)
    series = {"world (true)": truth["offset"], "heads on the world": read_offsets(heads, rearrange(
        truth["frames"], "n s t h w c -> (n s) t h w c")).reshape(truth["offset"].shape)}  # fmt: skip
    runs = {m: measure(m, load(m), args, truth, heads) for m in args.model}
    series.update({m: r["offsets"] for m, r in runs.items()})
    per_steer = {
        f"{steer:+g}": {name: float(change(off[:, j], start[:, j], end).mean()) for name, off in series.items()}
        for j, steer in enumerate(args.steers)
    }
    fits = {name: fit(true_change, change(off, start, end)) for name, off in series.items() if name != "world (true)"}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot(series, args.steers, heads.fps, out / "steer_response.png")
    report = {
        "offset_change_lanes_per_steer": per_steer,
        "fit_vs_true_change": fits,
        "frames_per_rollout": {m: r["frames_per_rollout"] for m, r in runs.items()},
        "start_speed_mps": truth["speed"].tolist(),
        "heads": str(heads.path),
        "settings": vars(args),
    }
    write_json(out / "steer_response.json", report)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
