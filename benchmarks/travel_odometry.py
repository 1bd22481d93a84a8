"""Can a learned reader tell how far a keyframe moved? Travel between frames 4 apart, learned vs fitted.

Travel anchoring (`EngineConfig.anchor_travel`, docs/results.md *Where the accel is lost*) moves each new
keyframe by the told travel minus the travel it measured, and failed because the measurement
(`ego_warp.fit_travel`, the forward warp that best matches) is noisy: 2.64 +- 0.99 m on real keyframes
for a true 3.14 m. This trains a small reader (`drivesim.rollout.odometry.TravelReader`; `--head profile`,
the default: learned features matched along the ground geometry; `--head dense`: session 31's regression)
on pairs of world frames `--stride` source frames apart (PatternDriver-driven training-side seeds
600_000 + i, so the speed varies; half the pairs through the model's autoencoder and temporal decoder,
as generated frames are decoded), with the true travel (trapezoid of the ego speed) as the target, and
scores both readers on held-out pairs (the action benchmarks' clips, seeds 4_000_000 + i): MAE, the
error's spread, R^2 and the slope of the reading against the truth, on rendered and on decoded frames.
JSON, a scatter plot, and the reader (stage "odometry": odometry.safetensors + config.yaml) in --out;
`--export FOLDER` also writes it into a model folder (`EngineConfig.anchor_travel` then reads with it).

    python benchmarks/travel_odometry.py --model drivesim/assets/default_model --threads 2 [--export runs/models/M]
        [--cache data/travel_odometry_clips.npz]    # ~1 GB of clips kept for the next run (16 min to make)
    session 31's dense reader: --head dense --clips 48 --steps 2000 --lr 1e-3
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import matplotlib
import numpy as np
import torch
from tqdm import tqdm

from drivesim.eval.checks import uint8_to_video
from drivesim.eval.probe_data import REFERENCE_SEED_BASE
from drivesim.eval.travel_reading import frame_pairs, read_travel, travel_pairs, travel_score
from drivesim.model_folder import save_stage
from drivesim.rollout.engine import LearnedEngine, to_uint8
from drivesim.rollout.engine_api import EngineConfig
from drivesim.rollout.odometry import ODOMETRY_STAGE, TravelReader, TravelReaderConfig
from drivesim.rollout.world_model import load

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _video_eval import driven_clips  # noqa: E402

TRAIN_SEED_BASE = 600_000  # world starts for training pairs (the data's own seeds are < 1_000_000)
DRIVER_SEED_BASE = 7_500_000
PROFILE_CHANNELS = (16, 16, 8)  # the profile head's feature stack (full resolution)


def decoded(world, engine, frames: np.ndarray) -> np.ndarray:
    """Clips (n, t, h, w, 3) uint8 through the autoencoder and the temporal decoder, as the engine decodes."""
    out = []
    for clip in tqdm(frames, desc="decode", leave=False):
        z = world.autoencoder.encode_video(uint8_to_video(clip[None]))  # 1 t c h w
        out.append(to_uint8(engine.decode(z[:, :0], z))[0])
    return np.stack(out)


def reader_config(head: str, travel: np.ndarray) -> TravelReaderConfig:
    """The reader of `head` ("dense" | "profile", `TravelReaderConfig.head`) on the training travel's (p,) scale."""
    scale = {"mean": float(travel.mean()), "std": float(travel.std())}
    if head == "profile":
        return TravelReaderConfig(head="profile", channels=PROFILE_CHANNELS, max_travel=8.0, travel_step=0.2, **scale)
    return TravelReaderConfig(**scale)


def train_reader(sets, stride: int, steps: int, batch_size: int, lr: float, seed: int, head: str) -> TravelReader:
    """sets: [(frames (n, t, h, w, 3), idx (p, 2), travel (p,))] drawn from alike, one batch a step."""
    torch.manual_seed(seed)
    reader = TravelReader(reader_config(head, np.concatenate([s[2] for s in sets])))
    opt = torch.optim.AdamW(reader.parameters(), lr=lr, weight_decay=1e-4)
    rng = np.random.default_rng(seed)
    bar = tqdm(range(steps), desc="train reader")
    for step in bar:
        frames, idx, target = sets[step % len(sets)]
        pick = rng.integers(0, len(idx), batch_size)
        before, after = frame_pairs(frames, idx[pick], stride)
        if rng.random() < 0.5:  # a mirrored road moves the same distance
            before, after = before.flip(-1), after.flip(-1)
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1.0 + np.cos(np.pi * step / steps))
        loss = reader.loss(before, after, torch.from_numpy(target[pick]))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        bar.set_postfix(loss=f"{loss.item():.4f}")
    return reader.eval()


def plot(rows: dict, true: np.ndarray, path: Path) -> None:
    fig, axes = plt.subplots(1, len(rows), figsize=(4 * len(rows), 3.6), sharex=True, sharey=True)
    for ax, (name, read) in zip(np.atleast_1d(axes), rows.items()):
        ax.scatter(true, read, s=3, alpha=0.4)
        lo, hi = float(true.min()), float(true.max())
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        s = travel_score(read, true)
        ax.set_title(f"{name}\nMAE {s['mae_m']:.2f} m, slope {s['slope']:.2f}", fontsize=9)
        ax.set_xlabel("true travel (m)")
    np.atleast_1d(axes)[0].set_ylabel("read travel (m)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def clip_data(world, engine, args, cache: Path | None) -> dict[str, np.ndarray]:
    """Training and held-out clips (frames, frames through the autoencoder, per-frame ego speeds), read
    from `cache` when it holds the same settings, else made (and written there atomically)."""
    key = {"model": str(Path(args.model).resolve()), "clips": args.clips, "val_clips": args.val_clips,
           "seconds": args.seconds}  # fmt: skip
    if cache is not None and cache.is_file():
        with np.load(cache) as data:
            stored = json.loads(str(data["settings"]))
            if stored != key:
                raise SystemExit(f"--cache {cache} holds clips of {stored}, not {key}; give another file")
            return {name: data[name] for name in data.files if name != "settings"}
    fps, size = int(round(world.fps)), engine.frame_size
    train = driven_clips(TRAIN_SEED_BASE, args.clips, args.seconds, size, fps, DRIVER_SEED_BASE)
    val = driven_clips(REFERENCE_SEED_BASE, args.val_clips, args.seconds, size, fps, DRIVER_SEED_BASE + 100_000)
    data = {"train": train.frames, "train_dec": decoded(world, engine, train.frames), "train_speed": train.speed,
            "val": val.frames, "val_dec": decoded(world, engine, val.frames), "val_speed": val.speed}  # fmt: skip
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        part = cache.with_name(cache.name + ".part.npz")
        np.savez(part, settings=json.dumps(key), **data)
        part.replace(cache)
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model folder (its autoencoder and temporal decoder)")
    parser.add_argument("--clips", type=int, default=96, help="training clips")
    parser.add_argument("--val-clips", type=int, default=8, help="held-out clips")
    parser.add_argument("--seconds", type=float, default=6.4)
    parser.add_argument("--stride", type=int, default=4, help="source frames between the two frames of a pair")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=48)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--head", choices=("dense", "profile"), default="profile",
                        help="the reader's head (TravelReaderConfig.head)")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--cache", default=None, metavar="FILE.npz",
                        help="keep the generated clips here (~10 MB a clip) and reuse them on the next run")
    parser.add_argument("--out", default="benchmarks/results/travel_odometry")
    parser.add_argument(
        "--export",
        default=None,
        metavar="FOLDER",
        help='also write the reader as stage "odometry" of this model folder',
    )
    args = parser.parse_args()
    if min(args.clips, args.val_clips, args.steps, args.stride, args.batch_size) < 1:
        parser.error("--clips, --val-clips, --steps, --stride and --batch-size must be >= 1")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    t0 = time.time()
    world = load(args.model)
    engine = LearnedEngine(world, EngineConfig())
    fps = int(round(world.fps))
    data = clip_data(world, engine, args, Path(args.cache) if args.cache else None)
    train_idx, train_travel = travel_pairs(data["train_speed"], args.stride, fps)
    val_idx, val_travel = travel_pairs(data["val_speed"], args.stride, fps)
    val_frames, val_dec = data["val"], data["val_dec"]
    sets = [(data["train"], train_idx, train_travel), (data["train_dec"], train_idx, train_travel)]
    t1 = time.time()
    reader = train_reader(sets, args.stride, args.steps, args.batch_size, args.lr, args.seed, args.head)
    t2 = time.time()
    reads = {
        "fit, rendered": read_travel(None, val_frames, val_idx, args.stride),
        "fit, decoded": read_travel(None, val_dec, val_idx, args.stride),
        "reader, rendered": read_travel(reader, val_frames, val_idx, args.stride),
        "reader, decoded": read_travel(reader, val_dec, val_idx, args.stride),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {
        "settings": vars(args), "train_pairs": len(train_idx), "val_pairs": len(val_idx),
        "true_travel_m": {"mean": float(val_travel.mean()), "std": float(val_travel.std())},
        "reader_config": reader.config.__dict__, "parameters": sum(p.numel() for p in reader.parameters()),
        "seconds": {"data": t1 - t0, "train": t2 - t1},
        "rows": {name: travel_score(read, val_travel) for name, read in reads.items()},
    }  # fmt: skip
    (out / "travel_odometry.json").write_text(json.dumps(result, indent=2))
    extra = {"stride": args.stride, "fps": fps, "val": result["rows"]["reader, decoded"]}
    for folder in [out] + ([Path(args.export)] if args.export else []):
        save_stage(folder, ODOMETRY_STAGE, reader, reader.config, extra=extra)
    plot(reads, val_travel, out / "travel_odometry.png")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
