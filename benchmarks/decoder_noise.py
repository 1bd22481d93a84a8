"""Decoders on perturbed latents: paired PSNR and flicker when each frame's latent carries its own noise.

    python benchmarks/decoder_noise.py --model drivesim/assets/default_model \
        --decoders runs/models/tdec_frame runs/models/tdec_temporal --baseline tdec_frame \
        [--dataset data/world --clips 8 --frames 32 --levels 0 0.04 0.08 0.15 --lowres 1 2 \
         --interp-clips 8 --interp-keys 3 --threads 2 --seed 0 --out outputs/decoder_noise]

Encoded real clips are consistent from frame to frame; sampled latents are not, and that is what
the temporal decoder of Video LDM Sec. 3.1.1 is for. Here held-out clips (val + test) are encoded
to posterior means, every frame gets its own noise (`drivesim.autoencoder.latent_noise`: level in
scaled-latent units; `--lowres F` draws it on a grid F times coarser, upsampled, so it is smooth in
space), and each decoder decodes the same perturbed latents. Because the clean clip is known, the
scores are paired: per-frame PSNR against the original and the evaluation suite's paired flicker,
mean |(x̂_{t+1} − x̂_t) − (x_{t+1} − x_t)| ×255. Level 0 is plain reconstruction
(`benchmarks/autoencoder_quality.py`). Decoders: the model's image decoder, the model's temporal
decoder and the temporal decoder of each `--decoders` folder (one with every alpha fixed at 1 is
a frame-wise decoder); all must share the model's encoder. `--baseline NAME` adds each decoder's
flicker change and PSNR change against that decoder at the same noise.

Generated latents with a known truth (`--interp-clips N`, default 8; 0 skips): the test clips' true
keyframes, as far apart as the engine's (`--interp-keys` of them), are filled by the model's
interpolation model level by level at the engine's default interpolation steps and spacing
(`benchmarks/_interp_eval.py`, as `video_ldm_quality.py` scores interpolation), and every decoder
decodes the same filled latents; scored on all frames against the real clip, and on the true
latents of the same frames (reconstruction) for reference.

Prints JSON; writes <out>/decoder_noise.json and <out>/decoder_noise.png (flicker and PSNR vs level).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from drivesim.autoencoder.latent_noise import LatentNoiseConfig, perturb_latents
from drivesim.rollout.engine_api import EngineConfig
from drivesim.rollout.world_model import WorldModel, load
from drivesim.sampling.video import VideoSamplingConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _interp_eval import interpolated_latents, interpolation_levels  # noqa: E402
from _video_eval import load_split  # noqa: E402
from autoencoder_quality import held_out_clips, quality  # noqa: E402
from decoder_flicker_generated import folder_decoders  # noqa: E402


def interpolated_scores(
    world: WorldModel, decoders: dict, dataset: str, size: tuple[int, int], clips: int, keys: int, seed: int
) -> dict[str, dict[str, dict[str, float]]]:
    """decoder -> {"interpolated", "reconstruction"} -> PSNR / SSIM / flicker over all frames."""
    plan = interpolation_levels(world)
    length = plan[0][0] * (keys - 1) + 1
    real = load_split(dataset, "test", length, *size)
    real = real.take(list(range(min(clips, len(real.ids)))))
    engine = EngineConfig()
    sampling = VideoSamplingConfig(steps=engine.interpolation_steps, spacing=engine.spacing)
    filled = interpolated_latents(world, real, plan, keys, sampling, torch.Generator().manual_seed(seed))
    out: dict = {}
    for name, decode in decoders.items():
        out[name] = {}
        for source, z in (("interpolated", filled.filled), ("reconstruction", filled.true_latents)):
            q = quality(decode(z, scaled=True).float(), filled.truth)
            out[name][source] = {k: q[k] for k in ("psnr_db", "ssim", "flicker_x255")}
    return out


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_f, ax_p) = plt.subplots(1, 2, figsize=(10, 3.6))
    styles = {1: "-", 2: "--", 4: ":"}
    for name, by_lowres in result["decoders"].items():
        for lowres, rows in by_lowres.items():
            levels = [r["level"] for r in rows]
            ls = styles.get(int(lowres), "-.")
            ax_f.plot(levels, [r["flicker_x255"] for r in rows], ls, marker="o", label=f"{name}, lowres {lowres}")
            ax_p.plot(levels, [r["psnr_db"] for r in rows], ls, marker="o", label=f"{name}, lowres {lowres}")
    ax_f.set_xlabel("latent noise level (scaled-latent std)")
    ax_f.set_ylabel("paired flicker (x255)")
    ax_p.set_xlabel("latent noise level (scaled-latent std)")
    ax_p.set_ylabel("PSNR (dB)")
    ax_f.legend(fontsize=6)
    fig.suptitle("decoders on latents with frame-independent noise (held-out clips)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="drivesim/assets/default_model")
    parser.add_argument("--decoders", nargs="*", default=[], help="model folders with a temporal_decoder stage")
    parser.add_argument("--baseline", default=None, help="decoder name the others are compared with")
    parser.add_argument("--dataset", default="data/world", help="held-out real clips (val + test)")
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--levels", type=float, nargs="+", default=[0.0, 0.04, 0.08, 0.15])
    parser.add_argument("--lowres", type=int, nargs="+", default=[1, 2], help="noise grid coarsening factors")
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--interp-clips", type=int, default=8, help="test clips filled by interpolation; 0: skip")
    parser.add_argument("--interp-keys", type=int, default=3, help="true keyframes per interpolated clip (>= 2)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="outputs/decoder_noise")
    args = parser.parse_args()
    if any(level < 0 for level in args.levels):
        parser.error(f"--levels {args.levels}: every level must be >= 0")
    if any(f < 1 for f in args.lowres):
        parser.error(f"--lowres {args.lowres}: every factor must be >= 1")
    if args.interp_clips < 0 or args.interp_keys < 2:
        parser.error(f"--interp-clips {args.interp_clips} must be >= 0 and --interp-keys {args.interp_keys} >= 2")
    torch.set_num_threads(args.threads)

    model_dir = Path(args.model)
    world = load(model_dir)
    ae = world.autoencoder
    decoders = {"image decoder": ae.decode_video}
    if world.temporal_decoder is not None:
        decoders[f"{model_dir.name} (temporal)"] = world.temporal_decoder.decode_video
    decoders |= folder_decoders(args.decoders, float(ae.latent_scale))
    if args.baseline is not None and args.baseline not in decoders:
        parser.error(f"--baseline {args.baseline!r} is not one of the decoders: {list(decoders)}")

    video = held_out_clips(args.dataset, args.height, args.width, args.clips, args.frames)
    scale = float(ae.latent_scale)
    result: dict = {
        "model": str(model_dir),
        "dataset": args.dataset,
        "clips": int(video.shape[0]),
        "frames_per_clip": int(video.shape[1]),
        "levels": args.levels,
        "seed": args.seed,
        "decoders": {name: {} for name in decoders},
    }
    with torch.no_grad():
        latents = ae.encode_video(video, scaled=False)  # n t C h w
        clean: dict[str, dict] = {}  # level 0 is the same for every noise grid: decoded once
        for lowres in args.lowres:
            cfg = LatentNoiseConfig(max_std=max(args.levels), lowres_factor=lowres)
            for level in args.levels:
                generator = torch.Generator().manual_seed(args.seed)  # the same noise for every decoder
                noisy = perturb_latents(latents, scale, cfg, generator, torch.full((latents.shape[0],), level))
                for name, decode in decoders.items():
                    if level > 0 or name not in clean:
                        q = quality(decode(noisy, scaled=False).float(), video)
                        row = {"level": level} | {k: q[k] for k in ("psnr_db", "ssim", "flicker_x255")}
                        if level == 0:
                            clean[name] = row
                    else:
                        row = dict(clean[name])
                    result["decoders"][name].setdefault(str(lowres), []).append(row)
    if args.interp_clips > 0 and world.interpolation is not None:
        with torch.no_grad():
            result["interpolated"] = interpolated_scores(
                world, decoders, args.dataset, (args.height, args.width), args.interp_clips, args.interp_keys, args.seed
            )
    if args.baseline is not None:
        base = result["decoders"][args.baseline]
        for by_lowres in result["decoders"].values():
            for lowres, rows in by_lowres.items():
                for row, ref in zip(rows, base[lowres], strict=True):
                    row["flicker_change_vs_baseline"] = row["flicker_x255"] / ref["flicker_x255"] - 1.0
                    row["psnr_change_db_vs_baseline"] = row["psnr_db"] - ref["psnr_db"]
        result["baseline"] = args.baseline
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "decoder_noise.json").write_text(json.dumps(result, indent=2))
    plot(result, out / "decoder_noise.png")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
