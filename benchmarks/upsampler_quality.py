"""Quality and speed of the x4 video upsampler: bicubic vs frame-by-frame vs temporal.

    python benchmarks/upsampler_quality.py --model runs/models/default \
        [--probes DIR --episodes 2 --frames 12 --steps 4 --tau-gamma 20 \
         --chunk-frames 8 --overlap 2 --threads 1 --out outputs/upsampler_quality]

Held-out world episodes (seeds never used in training) are rendered twice per step, at the
base size (64x128) and x4 (256x512), so the ground truth is exact. The low-res clips are
upsampled by (a) bicubic interpolation, (b) the image upsampler frame by frame (stage
"upsampler") and (c) the temporally aligned upsampler (stage "upsampler_temporal", chunked
over time with overlap), both with DDIM at `--steps` and the fixed noise level `--tau-gamma`.
For each: PSNR (dB) / SSIM against the ground truth, temporal flicker (paired mean
|delta_t upsampled - delta_t truth| in [0, 1] pixel units, and the unpaired motion-statistics
flicker of `drivesim.eval.temporal.flicker`), the FID-probe (Fréchet distance of frame-probe
features to the ground truth's; only when the probes exist; the probe sees frames resized to
its own input size) and seconds per upsampled frame on this CPU (wall and process CPU time).
Writes <out>/upsampler_quality.json and <out>/side_by_side.png (columns: low-res, bicubic,
frame-wise, temporal, ground truth; rows: a whole frame, a zoomed crop, and an x-t slice
(one image row over all frames: flicker shows as ragged vertical streaks)).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from drivesim.diffusion.upsampler import load_upsampler
from drivesim.diffusion.upsampler_temporal import load_temporal_upsampler
from drivesim.eval.temporal import flicker, psnr, ssim
from drivesim.paths import default_probes_dir
from drivesim.sampling.upsample import upsample_video
from drivesim.training.upsampler import bicubic
from drivesim.training.upsampler_data import WorldPairsConfig, render_pairs

BENCH_SEED = 2_000_000  # episodes from here on are never seen in training


def timed(fn: Callable[[], torch.Tensor], frames: int) -> tuple[torch.Tensor, float, float]:
    """Run fn once; (output, wall seconds per frame, process CPU seconds per frame)."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, (time.perf_counter() - wall) / frames, (time.process_time() - cpu) / frames


def fid_probe(probes_dir: Path, videos: dict[str, torch.Tensor], truth: torch.Tensor) -> dict[str, float] | None:
    if not (probes_dir / "frame_probe.safetensors").exists():
        return None
    from drivesim.eval.features import frame_features
    from drivesim.eval.frechet import frechet_from_features
    from drivesim.eval.probe_io import load_probes

    probe = load_probes(probes_dir).frame
    real = frame_features(probe, truth)
    return {name: frechet_from_features(frame_features(probe, v), real) for name, v in videos.items()}


def to_image(frame: torch.Tensor) -> np.ndarray:
    """(3, H, W) in [-1, 1] -> (H, W, 3) float in [0, 1]."""
    return rearrange((frame.clamp(-1, 1) + 1) / 2, "c h w -> h w c").numpy()


def plot(videos: dict[str, torch.Tensor], metrics: dict[str, dict[str, float | None]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(videos)
    t, _, height, width = videos[names[0]].shape[1:]
    frame = t // 2
    y0, x0, ch, cw = height // 2, width // 4, height // 4, width // 4  # zoom: road and roadside
    row = int(height * 0.62)
    fig, axes = plt.subplots(3, len(names), figsize=(3.4 * len(names), 6.6), squeeze=False)
    for j, name in enumerate(names):
        v = videos[name][0]  # (t, 3, H, W), episode 0
        whole = to_image(v[frame])
        axes[0, j].imshow(whole, interpolation="nearest")
        m = metrics.get(name, {})
        title = name if m.get("psnr_db") is None else f"{name}\n{m['psnr_db']:.2f} dB, flicker {m['flicker']:.4f}"
        axes[0, j].set_title(title, fontsize=8)
        axes[1, j].imshow(whole[y0 : y0 + ch, x0 : x0 + cw], interpolation="nearest")
        xt = np.stack([to_image(v[k])[row] for k in range(t)])  # (t, W, 3)
        axes[2, j].imshow(np.repeat(xt, 6, axis=0), interpolation="nearest", aspect="auto")
        for i in range(3):
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
    axes[0, 0].set_ylabel(f"frame {frame}")
    axes[1, 0].set_ylabel("zoom")
    axes[2, 0].set_ylabel(f"x-t slice (row {row})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="runs/models/default", help="folder with upsampler stages")
    parser.add_argument("--probes", default=str(default_probes_dir()), help="probes folder (default: bundled)")
    parser.add_argument("--episodes", type=int, default=2)
    parser.add_argument("--frames", type=int, default=12, help="consecutive frames per episode (30 fps)")
    parser.add_argument("--steps", type=int, default=4, help="DDIM steps")
    parser.add_argument("--tau-gamma", type=int, default=None, help="noise-augmentation level (default: model's)")
    parser.add_argument("--chunk-frames", type=int, default=8)
    parser.add_argument("--overlap", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="outputs/upsampler_quality")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    image_model = load_upsampler(args.model)
    temporal_model = load_temporal_upsampler(args.model)
    scale = image_model.scale
    data = WorldPairsConfig(num_episodes=args.episodes, frames_per_episode=args.frames, frame_stride=1, warmup_steps=30)
    low, truth = render_pairs(data, scale, first_seed=BENCH_SEED + args.seed).video()
    frames = low.shape[0] * low.shape[1]

    def diffusion(model: object, overlap: int) -> Callable[[], torch.Tensor]:
        return lambda: upsample_video(
            model,  # type: ignore[arg-type]
            low,
            args.steps,
            torch.Generator().manual_seed(args.seed),
            tau_gamma=args.tau_gamma,
            chunk_frames=args.chunk_frames,
            overlap=overlap,
            progress=True,
        )

    runs = {
        "bicubic": lambda: bicubic(low, scale),
        "frame_by_frame": diffusion(image_model, 0),
        "temporal": diffusion(temporal_model, args.overlap),
    }
    nearest = F.interpolate(rearrange(low, "b t c h w -> (b t) c h w"), scale_factor=scale)  # for display only
    videos: dict[str, torch.Tensor] = {"low_res": rearrange(nearest, "(b t) c h w -> b t c h w", b=low.shape[0])}
    metrics: dict[str, dict[str, float | None]] = {}
    for name, fn in runs.items():
        video, wall, cpu = timed(fn, frames)
        videos[name] = video
        fl = flicker(video, truth, paired=True)
        metrics[name] = {
            "psnr_db": psnr(video, truth),
            "ssim": ssim(video, truth),
            "flicker": fl.paired_delta_error,
            "flicker_unpaired": fl.flicker,
            "seconds_per_frame": wall,
            "cpu_seconds_per_frame": cpu,
        }
        print(f"{name}: {json.dumps(metrics[name])}")
    videos["ground_truth"] = truth
    fids = fid_probe(Path(args.probes), {k: videos[k] for k in runs}, truth)
    for name in runs:
        metrics[name]["fid_probe"] = None if fids is None else fids[name]

    t, fw, bc = metrics["temporal"], metrics["frame_by_frame"], metrics["bicubic"]
    flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None)
    report = {
        "command": f"python benchmarks/upsampler_quality.py {flags}",
        "episodes": args.episodes,
        "frames_per_episode": args.frames,
        "low_res": list(low.shape[-2:]),
        "high_res": list(truth.shape[-2:]),
        "ddim_steps": args.steps,
        "tau_gamma": args.tau_gamma if args.tau_gamma is not None else image_model.config.sample_noise_level,
        "threads": args.threads,
        "methods": metrics,
        "checks": {
            "temporal_flicker_below_frame_by_frame": bool(t["flicker"] < fw["flicker"]),
            "temporal_psnr_above_bicubic": bool(t["psnr_db"] > bc["psnr_db"]),
            "frame_by_frame_psnr_above_bicubic": bool(fw["psnr_db"] > bc["psnr_db"]),
        },
        "alphas": temporal_model.alphas(),
        "upsampler_config": dataclasses.asdict(image_model.config),
        "temporal_config": dataclasses.asdict(temporal_model.config),
        "fid_probe_note": "probe features of frames resized to the probe input; few frames, so only comparable "
        "between methods of this run" if fids is not None else f"no probes at {args.probes}",
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "upsampler_quality.json").write_text(json.dumps(report, indent=2))
    plot(videos, metrics, out / "side_by_side.png")
    print(json.dumps(report["checks"]))
    print(f"wrote {out / 'upsampler_quality.json'} and {out / 'side_by_side.png'}")


if __name__ == "__main__":
    main()
