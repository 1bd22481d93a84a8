"""Does the world model render the ego speed it is told? (issue 6: accel adherence)

The accel is followed only if the speed is: a speed-conditioned prediction model
(`video.speed_conditioning`) is told the engine's ego speed (`drivesim.rollout.ego_speed`), so the
speed the clip probe reads off its frames should rise with the speed it was told. From each of
`--starts` real world frames, one rollout per told speed (`--speeds`), holding that speed (steer 0,
the accel command that cancels drag, `drivesim.world.ego.command_for`) for `--seconds`; the clip
probe reads the speed of every window after the first `--settle` seconds. A model that ignores
the told speed keeps the start frame's motion whatever it is told: slope ~0. Printed as JSON
(per told speed the read mean and std, the slope and Pearson r of read vs told over rollouts, the
probe on the real starts' own video as reference) and drawn in speed_response.png.

Where is the motion lost? `--pipeline` also reads the real clips after each model stage with the
true latents: encoded and decoded (autoencoder + temporal decoder), true keyframes at the
model's stride blended linearly in latent space (a reference: how the probe reads a ghosted
in-between) and filled in by its interpolation model (told the true actions and, if it reads
them, the true keyframe speeds), then decoded; drawn in pipeline.png.

  python benchmarks/speed_response.py --model M [--model M2 ...] --threads 2 [--prediction video_ldm_stride4]

With several --model, the models are measured in one run on the same starts and seeds.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib
import numpy as np
import torch
from einops import reduce
from torch import Tensor

from drivesim.diffusion.conditioning import Conditioning
from drivesim.diffusion.ego_warp import GroundCamera, warp_forward
from drivesim.eval.adherence import pearson, recover_speed
from drivesim.eval.checks import uint8_to_video
from drivesim.eval.probe_data import HELDOUT_SEED_BASE
from drivesim.eval.probe_io import load_probes
from drivesim.eval.report import write_json
from drivesim.paths import default_probes_dir
from drivesim.rollout.ego_speed import DEFAULT_SPEED, MAX_SPEED
from drivesim.rollout.engine import LearnedEngine, to_uint8
from drivesim.rollout.engine_api import EngineConfig
from drivesim.rollout.keyframe_fill import FILLS
from drivesim.rollout.world_model import WorldModel, load
from drivesim.sampling.ddim import SPACINGS
from drivesim.sampling.interpolation import blend_keyframes
from drivesim.world.ego import command_for

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _video_eval import probe_stride, render_real, rollout  # noqa: E402


def read_speeds(probes, frames: np.ndarray, fps: float, settle_frames: int, hop: int) -> np.ndarray:
    """(b,) mean clip-probe speed (m/s) over the windows of frames (b, t, h, w, 3) after `settle_frames`."""
    video = uint8_to_video(frames[:, settle_frames:])
    speed = recover_speed(probes.clip, video, hop, probe_stride(probes, fps))  # (b * n,)
    return reduce(speed, "(b n) -> b", "mean", b=len(frames))


def fit(told: np.ndarray, read: np.ndarray) -> dict:
    slope, intercept = np.polyfit(told, read, 1)
    return {"slope": float(slope), "intercept": float(intercept), "pearson": pearson(told, read)}


def measure(model: str, world: WorldModel, args: argparse.Namespace, probes, real) -> dict:
    settings = EngineConfig(keyframe_steps=args.keyframe_steps, interpolation_steps=args.interpolation_steps,
                            spacing=args.spacing, prediction=args.prediction,
                            warp_start=args.warp_start, fill=args.fill)  # fmt: skip
    engine = LearnedEngine(world, settings)
    steps = max(2, round(args.seconds * world.fps / engine.keyframe_stride))
    settle = int(round(args.settle * engine.output_fps))
    told_all, read_all, per_speed = [], [], {}
    for v in args.speeds:
        hold = command_for(0.0, v, MAX_SPEED)  # the accel command that keeps v on the road
        actions = np.tile(np.array([0.0, hold], np.float32), (len(real.ids), steps, 1))
        starts = real.frames[:, 0]
        speeds = np.full(len(starts), v, np.float32)
        chunks = rollout(engine, starts, real.time_of_day, real.crowdedness, actions, args.seed, f"{model} {v} m/s",
                         speeds)  # fmt: skip
        frames = np.concatenate(list(chunks), axis=1)  # (b, 1 + steps * f, h, w, 3)
        read = read_speeds(probes, frames, engine.output_fps, settle, args.hop)
        per_speed[f"{v:g}"] = {"read_mean": float(read.mean()), "read_std": float(read.std()), "hold_accel": hold}
        told_all += [v] * len(read)
        read_all += read.tolist()
    return {
        "model": model,
        "keyframe_stride": engine.keyframe_stride,
        "prediction": args.prediction,
        "warp_start": args.warp_start,
        "fill": args.fill,
        "speed_conditioning": bool(engine.video.model.config.speed_conditioning),
        "ego_warp": bool(engine.video.model.config.ego_warp),
        "per_told_speed": per_speed,
        **fit(np.array(told_all), np.array(read_all)),
        "frames_per_rollout": 1 + steps * engine.frames_per_step,
    }


@torch.no_grad()
def pipeline(world: WorldModel, args: argparse.Namespace, probes, real) -> dict:
    """Read speed (m/s, per clip) of the real clips through the model's stages with their true latents."""
    engine = LearnedEngine(world, EngineConfig(interpolation_steps=args.interpolation_steps, spacing=args.spacing,
                                       prediction=args.prediction))
    video = uint8_to_video(real.frames)  # b t 3 h w in [-1, 1]
    z = world.autoencoder.encode_video(video)  # b t c h w, scaled
    settle = 0  # true latents: no rollout start to settle from

    def read(latents: Tensor) -> list[float]:
        return read_speeds(probes, to_uint8(engine.decode(z[:, :0], latents)), world.fps, settle, args.hop).tolist()

    out = {"decoded": read(z)}
    if engine.levels:
        b, stride = len(real.ids), engine.keyframe_stride
        keys = z[:, ::stride]  # true keyframes
        n = stride * (keys.shape[1] - 1) + 1
        out["blended_true_keyframes"] = read(blend_keyframes(keys, stride)[:, stride:n])  # b n c h w before the slice
        cond = Conditioning.from_labels(real.time_of_day, real.crowdedness, [None] * b, [None] * b)
        gens = [torch.Generator().manual_seed(args.seed + i) for i in range(b)]
        key_speeds = torch.from_numpy(np.nan_to_num(real.speed[:, :n:stride], nan=DEFAULT_SPEED))  # b k
        actions = torch.from_numpy(real.actions[:, :n])  # b n 2; actions[:, i] led to frame i
        filled = [keys[:, 1:2]]  # keyframe 1, then each interval up to the next keyframe
        for k in range(2, keys.shape[1]):  # each interval told the mean of the actions that led through it
            act = reduce(actions[:, stride * (k - 1) + 1 : stride * k + 1], "b t a -> b a", "mean")
            filled.append(engine.fill(keys[:, k - 2 : k + 1], act, cond, gens, key_speeds[:, k - 2 : k + 1]))
        out["interpolated_true_keyframes"] = read(torch.cat(filled, dim=1))
    return out


@torch.no_grad()
def warped_start(probes, real, fps: float, args: argparse.Namespace) -> dict[str, float]:
    """Told speed -> mean probe speed of each real start frame warped forward by speed * time, frame by
    frame over --seconds (`ego_warp.warp_forward`: the road moves, nothing else; no model)."""
    start = uint8_to_video(real.frames[:, :1])[:, 0]  # b 3 h w
    n = int(round(args.seconds * fps)) + 1
    out = {}
    for v in args.speeds:
        frames = torch.stack([warp_forward(start, torch.full((len(start),), v * i / fps), GroundCamera())
                              for i in range(n)], dim=1)  # b n 3 h w
        speed = recover_speed(probes.clip, frames.clamp(-1.0, 1.0), args.hop, probe_stride(probes, fps))
        out[f"{v:g}"] = float(speed.mean())
    return out


def plot(results: list[dict], reference: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5, 4))
    for r in results:
        told = [float(k) for k in r["per_told_speed"]]
        mean = [v["read_mean"] for v in r["per_told_speed"].values()]
        std = [v["read_std"] for v in r["per_told_speed"].values()]
        label = f"{Path(r['model']).name} (slope {r['slope']:.2f})"
        ax.errorbar(told, mean, yerr=std, marker="o", capsize=3, label=label)
    lo, hi = 0.0, 42.0
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="read = told")
    ax.scatter(reference["true"], reference["read"], c="grey", s=12, label="real video (probe)")
    ax.set_xlabel("told ego speed (m/s)")
    ax.set_ylabel("clip-probe speed of the frames (m/s)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_pipeline(reference: dict, path: Path) -> None:
    """Bars: mean read speed per stage (decoded, blended, interpolated) and model, real video's as a line."""
    stages = ["decoded", "blended_true_keyframes", "interpolated_true_keyframes"]
    models = list(reference["pipeline"])
    fig, ax = plt.subplots(figsize=(6, 3.5))
    width = 0.8 / len(models)
    for i, m in enumerate(models):
        means = [float(np.mean(reference["pipeline"][m].get(s, [np.nan]))) for s in stages]
        ax.bar(np.arange(len(stages)) + i * width, means, width, label=Path(m).name)
    ax.axhline(float(np.mean(reference["read"])), color="k", ls="--", lw=0.8, label="real video (probe)")
    ax.set_xticks(np.arange(len(stages)) + 0.4 - width / 2, ["decoded", "blended keys", "interpolated keys"])
    ax.set_ylabel("clip-probe speed, mean (m/s)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="world model folder (repeatable)")
    parser.add_argument("--probes", default=str(default_probes_dir()))
    parser.add_argument("--speeds", type=float, nargs="*", default=[8.0, 16.0, 24.0, 32.0],
                        help="told speeds; none (with --pipeline): the pipeline reading only")
    parser.add_argument("--starts", type=int, default=4, help="real start frames (held-out world episodes)")
    parser.add_argument("--seconds", type=float, default=2.5, help="rollout; holds --settle + one probe window")
    parser.add_argument("--settle", type=float, default=0.5, help="seconds left out at the start of each rollout")
    parser.add_argument("--hop", type=int, default=4)
    parser.add_argument("--keyframe-steps", type=int, default=4)
    parser.add_argument("--interpolation-steps", type=int, default=2)
    parser.add_argument("--spacing", default=EngineConfig.spacing, choices=SPACINGS, help="DDIM times")
    parser.add_argument("--prediction", default=EngineConfig.prediction,
                        help="keyframe-prediction stage of each model folder (e.g. video_ldm_stride4)")
    parser.add_argument("--warp-start", type=int, default=0,
                        help="keyframe DDIM steps replaced by the ego-motion warp (EngineConfig.warp_start)")
    parser.add_argument("--fill", default=EngineConfig.fill, choices=list(FILLS),
                        help="frames between keyframes: the interpolation model or blending (EngineConfig.fill)")
    parser.add_argument("--warp-reference", action="store_true",
                        help="also read each real start frame warped forward at each told speed (geometry only)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/speed_response")
    parser.add_argument("--pipeline", action="store_true", help="also read real clips through each model's stages")
    args = parser.parse_args(argv)
    bad = [v for v in args.speeds if not 0.0 <= v <= MAX_SPEED]
    if bad:
        parser.error(f"--speeds {bad} out of range; allowed 0..{MAX_SPEED:g} m/s (the world's max speed)")
    if not args.speeds and not args.pipeline:
        parser.error("--speeds is empty and --pipeline is off: nothing to measure")
    if args.seconds <= args.settle:
        parser.error(f"--seconds={args.seconds} must exceed --settle={args.settle}")
    torch.set_num_threads(args.threads)
    probes = load_probes(args.probes)
    worlds = {m: load(m) for m in args.model}  # each model folder read once
    first = worlds[args.model[0]]
    h, w = first.metadata.get("autoencoder", {}).get("image_size", [64, 128])
    real_frames = int(round(args.seconds * first.fps)) + 1
    real = render_real(HELDOUT_SEED_BASE, args.starts, real_frames, int(h), int(w), int(first.fps))
    settle_real = int(round(args.settle * first.fps))
    reference = {
        "true": real.start_speed.tolist(),
        "read": read_speeds(probes, real.frames, first.fps, settle_real, args.hop).tolist(),
    }
    if args.pipeline:
        reference["pipeline"] = {m: pipeline(w, args, probes, real) for m, w in worlds.items()}
    if args.warp_reference:
        reference["warped_start"] = warped_start(probes, real, first.fps, args)
    results = [measure(m, w, args, probes, real) for m, w in worlds.items()] if args.speeds else []
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot(results, reference, out / "speed_response.png")
    if args.pipeline:
        plot_pipeline(reference, out / "pipeline.png")
    report = {"results": results, "real_reference": reference, "settings": vars(args)}
    write_json(out / "speed_response.json", report)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
