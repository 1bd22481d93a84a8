"""Sanity baselines for the evaluation metrics: real vs real, and real vs degraded real.

    python benchmarks/eval_sanity.py [--probes DIR] [--clips 24 --frames 90 \
        --threads 1 --out outputs/eval_sanity]

Two disjoint held-out sets of procedural-world clips are rendered: A (seeds 2_000_000 + i) is
the reference, B (seeds 3_000_000 + i) plays the generator. Every row evaluates a version of B
against A with `drivesim.eval.suite.evaluate`; B's own labels, boxes and actions are the
"requests". Degradation families, each at three strengths:
  blur (Gaussian sigma px), noise (std in [-1, 1] units), darken (brightness loss), shuffle
  (fraction of frames moved), wrong_labels (fraction of clips whose requested time of day and
  crowdedness are swapped), wrong_boxes (requested boxes shifted by this many box sizes),
  wrong_actions (fraction of clips whose commanded actions come from another clip).
PSNR / SSIM are paired: degraded A against A. A metric passes the sanity check for a family
when it gets worse at every step: real-vs-real < strength 1 < strength 2 < strength 3 (reversed
for higher-is-better metrics; paired metrics start at strength 1).
Prints the table as JSON and writes <out>/eval_sanity.json and <out>/eval_sanity.png.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from drivesim.eval.checks import uint8_to_video, video_to_uint8
from drivesim.eval.degrade import add_noise, darken, gaussian_blur, jitter_boxes, shuffle_frames, swap_labels
from drivesim.eval.probe_data import HELDOUT_SEED_BASE, REFERENCE_SEED_BASE, EpisodeConfig, Episodes, render_episodes
from drivesim.eval.probe_io import Probes, load_probes
from drivesim.eval.report import to_plain, write_json
from drivesim.eval.results import EvalReport
from drivesim.eval.suite import EvalOptions, evaluate, prepare_real
from drivesim.eval.temporal import psnr, ssim
from drivesim.eval.video_sets import EvalClip, VideoSet
from drivesim.paths import default_probes_dir
from drivesim.world.types import CROWDEDNESS, TIME_OF_DAY

STRENGTHS: dict[str, tuple[float, ...]] = {
    "blur": (0.5, 1.0, 2.0),
    "noise": (0.05, 0.1, 0.2),
    "darken": (0.2, 0.4, 0.6),
    "shuffle": (0.25, 0.5, 1.0),
    "wrong_labels": (0.25, 0.5, 1.0),
    "wrong_boxes": (0.25, 0.5, 1.0),
    "wrong_actions": (0.25, 0.5, 1.0),
}
# metric -> True when higher is worse
METRICS: dict[str, bool] = {
    "fid_probe": True,
    "fvd_probe": True,
    "flicker": True,
    "condition_both": False,
    "box_recall": False,
    "box_mean_iou": False,
    "steer_pearson": False,
    "accel_pearson": False,
    "psnr": False,
    "ssim": False,
}
RELEVANT: dict[str, tuple[str, ...]] = {
    "blur": ("fid_probe", "fvd_probe", "flicker", "psnr", "ssim"),
    "noise": ("fid_probe", "fvd_probe", "flicker", "psnr", "ssim"),
    "darken": ("fid_probe", "fvd_probe", "psnr", "ssim"),
    "shuffle": ("fvd_probe", "flicker", "psnr", "ssim"),
    "wrong_labels": ("condition_both",),
    "wrong_boxes": ("box_recall", "box_mean_iou"),
    "wrong_actions": ("steer_pearson", "accel_pearson"),
}
PAIRED = ("psnr", "ssim")


def to_video_set(eps: Episodes, prefix: str, fps: float) -> VideoSet:
    clips = []
    for i in range(eps.num_episodes):
        clips.append(
            EvalClip(
                id=f"{prefix}{i:03d}",
                frames=eps.frames[i],
                fps=fps,
                time_of_day=TIME_OF_DAY[int(eps.time_of_day[i])],
                crowdedness=CROWDEDNESS[int(eps.crowdedness[i])],
                boxes=list(eps.boxes[i]),
                actions=eps.actions[i],
            )
        )
    return VideoSet(tuple(clips), prefix)


def degrade_pixels(video: torch.Tensor, family: str, strength: float, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    if family == "blur":
        return gaussian_blur(video, strength)
    if family == "noise":
        return add_noise(video, strength, gen)
    if family == "darken":
        return darken(video, strength)
    return shuffle_frames(video, strength, gen)


def degrade_set(base: VideoSet, video: torch.Tensor, family: str, strength: float, seed: int) -> VideoSet:
    clips = list(base.clips)
    gen = torch.Generator().manual_seed(seed)
    if family in ("blur", "noise", "darken", "shuffle"):
        frames = video_to_uint8(degrade_pixels(video, family, strength, seed))
        clips = [replace(c, frames=frames[i]) for i, c in enumerate(clips)]
    elif family == "wrong_labels":
        tod = swap_labels([c.time_of_day for c in clips], strength, TIME_OF_DAY, torch.Generator().manual_seed(seed))
        crowd = swap_labels([c.crowdedness for c in clips], strength, CROWDEDNESS, torch.Generator().manual_seed(seed))
        clips = [replace(c, time_of_day=t, crowdedness=k) for c, t, k in zip(clips, tod, crowd)]
    elif family == "wrong_boxes":
        clips = [replace(c, boxes=jitter_boxes(c.boxes, strength, gen)) for c in clips]
    else:  # wrong_actions: chosen clips take the actions of the next chosen clip
        k = int(round(strength * len(clips)))
        chosen = torch.randperm(len(clips), generator=gen)[:k].tolist()
        actions = {i: clips[j].actions for i, j in zip(chosen, chosen[1:] + chosen[:1])}
        clips = [replace(c, actions=actions.get(i, c.actions)) for i, c in enumerate(clips)]
    return VideoSet(tuple(clips), f"{base.source}:{family}={strength}")


def row_metrics(report: EvalReport) -> dict[str, float | None]:
    def get(fn: Callable[[], float | None]) -> float | None:
        try:
            return fn()
        except AttributeError:
            return None

    return {
        "fid_probe": report.frechet.fid_probe,
        "fvd_probe": report.frechet.fvd_probe,
        "flicker": report.temporal.flicker,
        "time_of_day": get(lambda: report.condition.time_of_day),
        "crowdedness": get(lambda: report.condition.crowdedness),
        "condition_both": get(lambda: report.condition.both),
        "box_recall": get(lambda: report.box.recall),
        "box_mean_iou": get(lambda: report.box.mean_iou),
        "steer_pearson": get(lambda: report.action.steer.pearson),
        "accel_pearson": get(lambda: report.action.accel.pearson),
        "steer_mae": get(lambda: report.action.steer.mae),
        "accel_mae": get(lambda: report.action.accel.mae),
    }


def monotonic(rows: list[dict], baseline: dict) -> dict[str, dict[str, bool]]:
    out: dict[str, dict[str, bool]] = {}
    for family, metrics in RELEVANT.items():
        fam = sorted((r for r in rows if r["family"] == family), key=lambda r: r["strength"])
        out[family] = {}
        for m in metrics:
            values = [r[m] for r in fam]
            if m not in PAIRED:
                values = [baseline[m], *values]
            if any(v is None for v in values):
                out[family][m] = False
                continue
            worse = (lambda a, b: b > a) if METRICS[m] else (lambda a, b: b < a)
            out[family][m] = all(worse(a, b) for a, b in zip(values, values[1:]))
    return out


def plot(rows: list[dict], baseline: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(f, m) for f, ms in RELEVANT.items() for m in ms]
    cols = 5
    n_rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(n_rows, cols, figsize=(3.0 * cols, 2.3 * n_rows), squeeze=False)
    for ax, (family, metric) in zip(axes.flat, panels):
        fam = sorted((r for r in rows if r["family"] == family), key=lambda r: r["strength"])
        xs = [r["strength"] for r in fam]
        ys = [r[metric] for r in fam]
        ax.plot(xs, [np.nan if y is None else y for y in ys], marker="o")
        if metric not in PAIRED and baseline[metric] is not None:
            ax.axhline(baseline[metric], color="grey", ls="--", lw=1, label="real vs real")
        ax.set_title(f"{family}: {metric}", fontsize=8)
        ax.set_xlabel("strength", fontsize=7)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle("evaluation metrics vs degradation strength (dashed: real vs real held-out)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def run(probes: Probes, clips: int, frames: int, options: EvalOptions, seed: int = 0) -> dict:
    fps = probes.clip.config.fps
    episode = EpisodeConfig(height=64, width=128, fps=int(round(fps)), num_frames=frames, warmup_frames=30)
    set_a = to_video_set(render_episodes(episode, HELDOUT_SEED_BASE, clips, desc="set A"), "a", fps)
    set_b = to_video_set(render_episodes(episode, REFERENCE_SEED_BASE, clips, desc="set B"), "b", fps)
    prepared = prepare_real(set_a, probes, options)
    baseline = row_metrics(evaluate(prepared, set_b, probes, options))
    baseline.update({"family": "real_vs_real", "strength": 0.0, "psnr": None, "ssim": None})
    video_a = uint8_to_video([c.frames for c in set_a.clips])
    video_b = uint8_to_video([c.frames for c in set_b.clips])
    rows = []
    for family, strengths in STRENGTHS.items():
        for strength in strengths:
            generated = degrade_set(set_b, video_b, family, strength, seed)
            row = {
                "family": family,
                "strength": strength,
                **row_metrics(evaluate(prepared, generated, probes, options)),
            }
            if family in ("blur", "noise", "darken", "shuffle"):
                degraded_a = degrade_pixels(video_a, family, strength, seed)
                row["psnr"], row["ssim"] = psnr(degraded_a, video_a), ssim(degraded_a, video_a)
            else:
                row["psnr"] = row["ssim"] = None
            rows.append(row)
            print(json.dumps(to_plain(row)), flush=True)
    return {"baseline": baseline, "rows": rows, "monotonic": monotonic(rows, baseline)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--probes", default=str(default_probes_dir()), help="probes folder (default: bundled)")
    parser.add_argument("--clips", type=int, default=24, help="clips per set (cycling over the 6 label pairs)")
    parser.add_argument("--frames", type=int, default=90, help="frames per clip")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    parser.add_argument("--out", default="outputs/eval_sanity")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    probes = load_probes(args.probes)
    options = EvalOptions(frame_step=3, clip_hop=5, window_seconds=1e6)
    start = time.perf_counter()
    result = run(probes, args.clips, args.frames, options)
    result["settings"] = {
        "probes": str(args.probes),
        "clips_per_set": args.clips,
        "frames_per_clip": args.frames,
        "set_a_seeds": [HELDOUT_SEED_BASE, HELDOUT_SEED_BASE + args.clips],
        "set_b_seeds": [REFERENCE_SEED_BASE, REFERENCE_SEED_BASE + args.clips],
        "options": options,
        "seconds": round(time.perf_counter() - start, 1),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "eval_sanity.json", result)
    plot(result["rows"], result["baseline"], out / "eval_sanity.png")
    print(json.dumps(to_plain(result), indent=2))


if __name__ == "__main__":
    main()
