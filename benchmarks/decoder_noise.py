"""Decoders on perturbed latents: paired PSNR and flicker when each frame's latent carries its own noise.

    python benchmarks/decoder_noise.py --model drivesim/assets/default_model \
        --decoders runs/models/tdec_frame runs/models/tdec_temporal --baseline tdec_frame \
        [--dataset data/world --clips 8 --frames 32 --levels 0 0.04 0.08 0.15 --lowres 1 2 \
         --threads 2 --seed 0 --out outputs/decoder_noise]

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

Prints JSON; writes <out>/decoder_noise.json and <out>/decoder_noise.png (flicker and PSNR vs level).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from drivesim.autoencoder.latent_noise import LatentNoiseConfig, perturb_latents
from drivesim.autoencoder.loading import load_autoencoder, load_temporal_decoder

sys.path.insert(0, str(Path(__file__).resolve().parent))

from autoencoder_quality import held_out_clips, quality  # noqa: E402


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
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="outputs/decoder_noise")
    args = parser.parse_args()
    if any(level < 0 for level in args.levels):
        parser.error(f"--levels {args.levels}: every level must be >= 0")
    if any(f < 1 for f in args.lowres):
        parser.error(f"--lowres {args.lowres}: every factor must be >= 1")
    torch.set_num_threads(args.threads)

    model_dir = Path(args.model)
    ae = load_autoencoder(model_dir)
    decoders = {"image decoder": ae.decode_video}
    if (model_dir / "temporal_decoder.safetensors").exists():
        decoders[f"{model_dir.name} (temporal)"] = load_temporal_decoder(model_dir).decode_video
    for folder in args.decoders:
        td = load_temporal_decoder(Path(folder))
        if abs(float(td.latent_scale) - float(ae.latent_scale)) > 1e-4:
            raise ValueError(f"{folder}: latent scale {td.latent_scale} differs from the model's; not its latent space")
        decoders[Path(folder).name] = td.decode_video
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
        for lowres in args.lowres:
            cfg = LatentNoiseConfig(max_std=max(args.levels), lowres_factor=lowres)
            for level in args.levels:
                generator = torch.Generator().manual_seed(args.seed)  # the same noise for every decoder
                noisy = perturb_latents(latents, scale, cfg, generator, torch.full((latents.shape[0],), level))
                for name, decode in decoders.items():
                    q = quality(decode(noisy, scaled=False).float(), video)
                    row = {"level": level} | {k: q[k] for k in ("psnr_db", "ssim", "flicker_x255")}
                    result["decoders"][name].setdefault(str(lowres), []).append(row)
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
