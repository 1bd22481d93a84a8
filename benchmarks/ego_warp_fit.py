"""How well the ego-motion warp alone predicts the next keyframes of real world clips (no model).

For held-out windows of a latent cache (frames `--stride` source frames apart), the latents of
frame k (k = 1, 2) are guessed from frame 0 by the warp over the distance the true ego speeds
cover, scaled by each of `--scales` (1 = the true distance; 0 = no motion), two ways: in pixels
(decode with the model folder's temporal decoder, warp, encode: what the trainer and the engine
use, `ego_warp.warp_context_latents`) and directly on the latents (`ego_warp.warp_forward` on the
f = 4 latents). Copying frame 0 is the baseline. If the camera geometry is right the error is
lowest near scale 1 and below copying; the curve over the scales shows how much a wrong speed
costs, i.e. how much speed information the warp carries. Errors are mean squared errors of the
scaled latents, over the whole latent and over the rows that see the road. JSON + plot.

    python benchmarks/ego_warp_fit.py --latents data/world_explore_latents --model drivesim/assets/default_model
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch
from einops import reduce, repeat
from tqdm import tqdm

from drivesim.autoencoder.frame_codec import FrameCodec
from drivesim.autoencoder.latent_cache import LatentWindowConfig, LatentWindowDataset
from drivesim.autoencoder.loading import load_autoencoder, load_temporal_decoder
from drivesim.diffusion.ego_warp import GroundCamera, ground_rows, warp_forward

WAYS = ("pixels", "latents")


def fit(
    dataset: LatentWindowDataset,
    scales: list[float],
    max_windows: int,
    interval: float,
    camera: GroundCamera,
    codec: FrameCodec,
) -> dict[str, object]:
    """Per frame offset k, way and scale: mean squared error of the warp of z_0 over scale * D_0k against z_k."""
    indices = torch.linspace(0, len(dataset) - 1, min(max_windows, len(dataset))).round().long().unique()
    t = dataset.config.num_frames
    sums = torch.zeros(t - 1, len(WAYS), len(scales), 2, dtype=torch.float64)  # (k, way, scale, whole/road)
    copy = torch.zeros(t - 1, 2, dtype=torch.float64)
    speeds: list[float] = []
    n = len(scales)
    for i in tqdm(indices.tolist(), desc="windows"):
        w = dataset[i]
        if not w.has_actions or float(w.ego_speed.abs().sum()) == 0.0:
            raise ValueError(f"window {i} of {dataset.root} has no ego speed; the warp needs it")
        z, v = w.latents.float(), w.ego_speed.float()  # (t, c, h, w), (t,)
        speeds.append(float(v[0]))
        travel = torch.cumsum(torch.cat([torch.zeros(1), 0.5 * (v[1:] + v[:-1]) * interval]), dim=0)  # (t,)
        rows = ground_rows(z.shape[-2], camera)
        frame = repeat(codec.decode(z[:1]), "1 c h w -> n c h w", n=n)
        for k in range(1, t):
            dist = torch.tensor(scales) * travel[k]  # (scale,)
            guesses = {
                "pixels": codec.encode(warp_forward(frame, dist, camera)),
                "latents": warp_forward(repeat(z[0], "c h w -> n c h w", n=n), dist, camera),
            }
            for j, way in enumerate(WAYS):
                err = (guesses[way] - z[k]) ** 2  # scale c h w
                sums[k - 1, j, :, 0] += reduce(err, "n c h w -> n", "mean").double()
                sums[k - 1, j, :, 1] += reduce(err[:, :, rows], "n c h w -> n", "mean").double()
            err = (z[0] - z[k]) ** 2
            copy[k - 1, 0] += float(err.mean())
            copy[k - 1, 1] += float(err[:, rows].mean())
    mean, copy = sums / len(indices), copy / len(indices)
    out: dict[str, object] = {
        "windows": len(indices),
        "scales": scales,
        "interval_s": interval,
        "mean_speed_mps": sum(speeds) / len(speeds),
    }
    for k in range(1, t):
        entry: dict[str, object] = {"copy": copy[k - 1, 0].item(), "copy_road": copy[k - 1, 1].item()}
        for j, way in enumerate(WAYS):
            whole, road = mean[k - 1, j, :, 0].tolist(), mean[k - 1, j, :, 1].tolist()
            entry[way] = {"mse": whole, "mse_road": road, "best_scale": scales[int(torch.tensor(road).argmin())]}
            if 1.0 in scales:
                entry[way]["true_speed_vs_copy"] = whole[scales.index(1.0)] / entry["copy"]
                entry[way]["true_speed_vs_copy_road"] = road[scales.index(1.0)] / entry["copy_road"]
        out[f"frame_{k}"] = entry
    return out


def plot(result: dict[str, object], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted(k for k in result if k.startswith("frame_"))
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.8), squeeze=False)
    scales = result["scales"]
    for ax, key in zip(axes[0], keys):
        entry = result[key]
        for way, style in zip(WAYS, ("-", "--")):
            ax.plot(scales, entry[way]["mse_road"], marker="o", linestyle=style, label=f"warp in {way}, road rows")
        ax.axhline(entry["copy_road"], color="k", lw=0.8, label="copy frame 0, road rows")
        ax.axvline(1.0, color="grey", lw=0.8)
        ax.set_xlabel("distance scale (1 = true ego travel)")
        ax.set_ylabel("latent MSE against the true frame")
        ax.set_title(f"{key.replace('_', ' ')} ({result['windows']} held-out windows)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latents", default="data/world_explore_latents", help="latent cache with ego speeds")
    parser.add_argument(
        "--model",
        default="drivesim/assets/default_model",
        help="model folder whose autoencoder made the cache (decodes and encodes the warp)",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    parser.add_argument("--stride", type=int, default=4, help="source frames between keyframes")
    parser.add_argument("--frames", type=int, default=3, help="keyframes per window (frame 0 + guesses)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--windows", type=int, default=200)
    parser.add_argument("--scales", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0])
    parser.add_argument("--out", default="benchmarks/results/ego_warp_fit")
    args = parser.parse_args()
    if args.frames < 2 or args.stride < 1 or args.windows < 1:
        raise SystemExit("--frames must be >= 2, --stride and --windows >= 1")
    dataset = LatentWindowDataset(
        args.latents, LatentWindowConfig(num_frames=args.frames, stride=args.stride, split=args.split)
    )
    rates = {float(r.fps) for r in dataset.clips}
    if len(rates) != 1:
        raise SystemExit(f"{args.latents} holds clips at several frame rates {sorted(rates)}; expected one")
    interval = args.stride / rates.pop()
    if args.threads:
        torch.set_num_threads(args.threads)
    folder = Path(args.model)
    ae = load_autoencoder(folder)
    if abs(float(ae.latent_scale) - dataset.latent_scale) > 1e-4 * max(1.0, dataset.latent_scale):
        raise SystemExit(
            f"{args.latents} was not made with {folder}'s autoencoder (latent scales "
            f"{dataset.latent_scale:.5f} vs {float(ae.latent_scale):.5f})"
        )
    codec = FrameCodec(ae, load_temporal_decoder(folder))
    result = fit(dataset, sorted(set(args.scales)), args.windows, interval, GroundCamera(), codec)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot(result, out / "ego_warp_fit.png")
    result["plot"] = str(out / "ego_warp_fit.png")
    if not all(math.isfinite(x) for k in result if k.startswith("frame_") for w in WAYS for x in result[k][w]["mse"]):
        raise SystemExit("non-finite errors: check the latent cache")
    (out / "ego_warp_fit.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
