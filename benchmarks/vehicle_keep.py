"""Do a prediction stage's keyframes keep the true vehicles? Scored against the world's boxes (issues 6 and 9).

Clip crowdedness, vehicle counts and the FID/FVD-probes all read car-coloured smears and blobs as traffic
(docs/results.md, *Crowdedness over whole clips*). Here each model's engine starts from two true keyframes of
`--clips` held-out world episodes (frames 0 and s, s its stage's keyframe stride; labels cycle over the 6 pairs)
and is told the true actions (each interval's mean) for `--steps` keyframes. The env's frame at each new keyframe is
scored against the true frame of the same time by `drivesim.eval.vehicle_keep`: recall of the true boxes and
precision of the detections at IoU 0.5 (and 0.3), per keyframe ahead and per crowdedness level, beside the true
frames' own scores (the detector's ceiling) and the true keyframes encoded and decoded (the autoencoder's). Over a
few keyframes the other cars move little, so a stage that keeps them scores near the decoded truth; a blob that is
not where a car is lowers precision. JSON, a plot and a storyboard (true boxes drawn on every row).

    python benchmarks/vehicle_keep.py --env drivesim/DriveWorldSteer-v0 --model A --model B --clips 48 --steps 6
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
import torch
from einops import rearrange
from tqdm import tqdm

from drivesim.data.atomic import atomic_path, atomic_write_text, save_figure
from drivesim.eval.checks import uint8_to_video, video_to_uint8
from drivesim.eval.detection import Detections
from drivesim.eval.probe_data import HELDOUT_SEED_BASE, EpisodeConfig, Episodes, render_episodes
from drivesim.eval.probe_io import load_probes
from drivesim.eval.vehicle_keep import detect_frames, keep_scores
from drivesim.paths import default_model_dir, default_probes_dir
from drivesim.rollout.engine import LearnedEngine
from drivesim.rollout.engine_api import SceneRequest
from drivesim.rollout.world_model import load
from drivesim.world.storyboard import storyboard
from drivesim.world.types import CROWDEDNESS, Boxes

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _engine_args import add_engine_args, engine_config, resolve_engine_args  # noqa: E402

IOUS = (0.5, 0.3)


@torch.no_grad()
def rollout_keys(engine, eps: Episodes, steps: int, seed: int, batch: int, desc: str) -> np.ndarray:
    """The env's frame at each of `steps` new keyframes, from true keyframes 0 and s with the true actions:
    (n, steps, h, w, 3) uint8."""
    s, n = engine.keyframe_stride, eps.num_episodes
    out = []
    for i in tqdm(range(0, n, batch), desc=desc, leave=False):
        rows = range(i, min(n, i + batch))
        requests = [SceneRequest(int(eps.time_of_day[k]), int(eps.crowdedness[k]), seed + k,
                                 initial_frames=eps.frames[k, [0, s]], speed=float(eps.speed[k, s]))
                    for k in rows]  # fmt: skip
        state = engine.start(requests).state
        keys = []
        for j in range(steps):  # step j predicts the keyframe at frame (j + 2) s
            act = eps.actions[rows.start : rows.stop, (j + 1) * s + 1 : (j + 2) * s + 1].mean(1)
            step = engine.step(state, act.astype(np.float32))
            state = step.state
            keys.append(step.frames[:, -1])
        out.append(np.stack(keys, 1))
    return np.concatenate(out)


@torch.no_grad()
def decoded_truth(engine, frames: np.ndarray) -> np.ndarray:
    """True frames (n, k, h, w, 3) encoded and decoded by the engine's frame codec."""
    x = rearrange(uint8_to_video(frames), "n k c h w -> (n k) c h w").to(engine.device)
    y = engine.frame_codec.decode(engine.frame_codec.encode(x)).float().clamp(-1, 1)
    return video_to_uint8(rearrange(y, "(n k) c h w -> n k c h w", n=frames.shape[0]))


def score_table(dets: list[list[Detections]], truth: list[list[np.ndarray]], levels: list[str]) -> dict:
    """Per IoU threshold and per level ("all" and each crowdedness level): per keyframe ahead, `KeepScores`
    fields as lists. dets / truth: [clip][keyframe]."""
    table: dict = {}
    steps = len(dets[0])
    for iou in IOUS:
        per_level = {}
        for level in ["all", *CROWDEDNESS]:
            rows = [i for i, lv in enumerate(levels) if level in ("all", lv)]
            if not rows:
                continue
            scores = [asdict(keep_scores([dets[i][j] for i in rows], [truth[i][j] for i in rows], iou))
                      for j in range(steps)]  # fmt: skip
            per_level[level] = {k: [sc[k] for sc in scores] for k in scores[0]}
        table[f"iou_{iou:g}"] = per_level
    return table


def detections_of(probe, frames: np.ndarray) -> list[list[Detections]]:
    """(n, k, h, w, 3) -> [clip][keyframe] detections (frames of another size resized to the probe's: the boxes
    are normalised)."""
    n, k = frames.shape[:2]
    flat = rearrange(frames, "n k h w c -> (n k) h w c")
    size = (probe.config.height, probe.config.width)
    if flat.shape[1:3] != size:
        flat = np.stack([cv2.resize(f, size[::-1], interpolation=cv2.INTER_AREA) for f in flat])
    flat = detect_frames(probe, flat)
    return [flat[i * k : (i + 1) * k] for i in range(n)]


def plot(results: dict, seconds: list[float], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(lv, m) for lv in ("all", "high") for m in ("recall", "precision")]
    fig, axes = plt.subplots(2, 2, figsize=(9, 6), sharex=True)
    for ax, (level, metric) in zip(axes.flat, panels):
        for name, table in results.items():
            values = table["iou_0.5"].get(level, {}).get(metric)
            if values is None:
                continue
            style = "k--" if name == "true frames" else "k:" if name == "true, decoded" else "-o"
            ax.plot(seconds, [np.nan if v is None else v for v in values], style, ms=3, label=name)
        ax.set_title(f"{metric} at IoU 0.5, {level} clips", fontsize=9)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("seconds ahead of the true context")
    axes[0, 0].legend(fontsize=7)
    return save_figure(fig, path)


def board(frames: dict[str, np.ndarray], eps: Episodes, clips: list[int], stride: int, path: Path) -> Path:
    """Per clip one row per source (true frames first), one column per keyframe; true boxes on every tile."""
    tiles, boxes, labels = [], [], []
    h, w = eps.frames.shape[2:4]
    for i in clips:
        for name, video in frames.items():
            for j in range(video.shape[1]):
                true = eps.boxes[i][(j + 2) * stride] * np.array([w, h, w, h], np.float32)
                tiles.append(video[i, j])
                boxes.append(Boxes(true, np.zeros(len(true), np.int64), np.arange(len(true)), (h, w)))
                labels.append(f"{name[:14]} {CROWDEDNESS[int(eps.crowdedness[i])]}" if j == 0 else f"+{j + 1}")
    grid = storyboard(tiles, boxes, labels, cols=next(iter(frames.values())).shape[1])
    with atomic_path(path, suffix=".png") as tmp:
        cv2.imwrite(str(tmp), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", default=None,
                        help="model folder (repeatable: scored side by side; default the bundled one)")
    add_engine_args(parser, keyframe_steps=4)
    parser.add_argument("--clips", type=int, default=48, help="held-out world episodes (labels cycle over 6 pairs)")
    parser.add_argument("--steps", type=int, default=6, help="keyframes predicted from the two true ones")
    parser.add_argument("--batch", type=int, default=16, help="rollouts per engine call")
    parser.add_argument("--storyboard-clips", type=int, default=3, help="clips drawn (high traffic first)")
    parser.add_argument("--seed", type=int, default=0, help="the rollouts' noise")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/vehicle_keep")
    parser.add_argument("--probes", default=None, help="probes folder (default the bundled ones)")
    args = parser.parse_args()
    for flag in ("clips", "steps", "batch"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} {getattr(args, flag)}: must be >= 1")
    if args.storyboard_clips < 0:
        parser.error(f"--storyboard-clips {args.storyboard_clips}: must be >= 0")
    models = args.model or [str(default_model_dir())]
    names = [Path(m).name if [Path(x).name for x in models].count(Path(m).name) == 1 else f"{i}:{Path(m).name}"
             for i, m in enumerate(models)]  # fmt: skip
    settings = resolve_engine_args(args)
    torch.set_num_threads(args.threads)
    probe = load_probes(args.probes or default_probes_dir()).frame
    engines = [LearnedEngine(load(m), engine_config(args)) for m in models]
    strides = {e.keyframe_stride for e in engines}
    if len(strides) != 1 or len({e.frame_size for e in engines}) != 1:
        parser.error(f"the models' {args.prediction} stages have keyframe strides {sorted(strides)} and frame sizes "
                     f"{sorted({e.frame_size for e in engines})}; need one of each to score them side by side")
    stride = strides.pop()
    fps = float(engines[0].world.fps)
    h, w = engines[0].frame_size
    eps = render_episodes(EpisodeConfig(height=h, width=w, num_frames=(args.steps + 1) * stride + 1,
                                        fps=int(round(fps))), HELDOUT_SEED_BASE, args.clips)  # fmt: skip
    key_idx = [(j + 2) * stride for j in range(args.steps)]
    truth = [[eps.boxes[i][t] for t in key_idx] for i in range(args.clips)]
    levels = [CROWDEDNESS[int(c)] for c in eps.crowdedness]
    frames = {"true frames": eps.frames[:, key_idx], "true, decoded": decoded_truth(engines[0], eps.frames[:, key_idx])}
    for name, engine in zip(names, engines):
        frames[name] = rollout_keys(engine, eps, args.steps, args.seed, args.batch, name)
    results = {name: score_table(detections_of(probe, video), truth, levels) for name, video in frames.items()}
    seconds = [(j + 1) * stride / fps for j in range(args.steps)]
    out = Path(args.out)
    report = {
        "seconds_ahead": seconds,
        "keyframe_stride": stride,
        "models": dict(zip(names, models)),
        "results": results,
        "plot": str(plot(results, seconds, out / "vehicle_keep.png")),
        "engine": settings,
        "settings": {k: v for k, v in vars(args).items() if k not in settings and not k.startswith("_")},
    }
    order = sorted(range(args.clips), key=lambda i: -int(eps.crowdedness[i]))[: args.storyboard_clips]
    if order:
        report["storyboard"] = str(board(frames, eps, order, stride, out / "vehicle_keep_storyboard.png"))
    atomic_write_text(out / "vehicle_keep.json", json.dumps(report, indent=2) + "\n")
    summary = {name: {lv: {m: t["iou_0.5"][lv][m] for m in ("recall", "precision")} for lv in ("all", "high")
                      if lv in t["iou_0.5"]} for name, t in results.items()}  # fmt: skip
    print(json.dumps({"seconds_ahead": seconds, "iou_0.5": summary, "out": str(out)}, indent=1))


if __name__ == "__main__":
    main()
