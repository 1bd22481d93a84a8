"""Where does the accel get lost? The action probe's reading of the world's own video after each
stage of a world model, with the true latents (issue 6: action correlation >= 0.8).

`video_ldm_quality.py` measures whole rollouts: the stride-4 prediction stage follows the steer
(r 0.92) but not the accel (r -0.10 to 0.16), while the world under the same commands reads
0.99 / 0.86. This benchmark takes the same kind of clips (held-out world starts, seeds 3_000_000 + i,
driven by `PatternDriver`s seeded 7_000_000 + 1000 seed + i) and reads the actions off:
- `world`: the rendered frames;
- `decoded`: encoded and decoded (autoencoder + temporal decoder, as the engine decodes);
- `blended_true_keyframes`: the true keyframes at the prediction stage's stride, the frames
  between them the keyframe latents blended linearly (`fill="blend"`), decoded;
- `interpolated_true_keyframes`: the same keyframes filled by the interpolation model as the
  engine fills (told each interval's mean action and the true keyframe speeds), decoded;
- `warped_true_keyframes`: the same keyframes filled by the ego-motion warp (`fill="warp"`,
  `drivesim.rollout.warp_fill`, told the true keyframe speeds), decoded;
- with `--predict`, keyframes 2, 3, ... drawn by the prediction stage (told the true actions and keyframe
  speeds, `--keyframe-steps`, `--context-guidance`, `--action-guidance`, `--warp-start`, `--anchor-travel`,
  `--context-keys`, `--context-noise`, `--road-from-warp` as the engine's), filled by the warp:
  `predicted_keyframes_warped` from the true keyframes before each (one step from the truth: the
  stage's own error), `rolled_out_keyframes_warped` from its own (from the two true first keyframes on:
  a rollout, with the error carried as context).
- with `--travel-noise S ...`, `warped_true_keyframes_noise_S`: the true keyframes, each moved along the
  road by an error of spread S metres, then filled by the warp: what a rollout anchored by a travel reader
  of error spread S (`EngineConfig.anchor_travel`) would keep if the model's keyframes were otherwise
  right. Anchoring places each keyframe the reader's error e_k off its told travel, so the errors add up
  along the rollout; here keyframe k is moved by p_k = LEAK p_(k-1) + e_k (e_k ~ N(0, S^2), LEAK 0.9: a
  random walk pulled back slowly, so the warp stays within a metre or so of the true frame).
- with `--blur SIGMA ...`, `decoded_blur_SIGMA`: the decoded world frames blurred (a Gaussian of SIGMA pixels):
  how much of a row's readings sharpness alone moves (each row also reports its `sharpness`).
- with `--swap-ground` (and `--predict`), for each drawn row R: `R_true_ground`, R's frames with the rows that see
  the road (`ego_warp.ground_rows`: below the horizon, above the bonnet) taken from `decoded`, and
  `decoded_R_ground`, the converse: is what a row loses in the road rows or in the rest (sky, backdrop tops, the
  parts of cars and scenery above the horizon)?
- with `--travel-reader DIR` (a folder with an `odometry` stage, `benchmarks/travel_odometry.py --export`), each
  row's travel from every keyframe on, read against the true travel (`drivesim.eval.travel_reading`): how far
  the drawn keyframes move, and whether that follows the speed inside each clip (`within_clip_pearson`).
All rows cover the same frames (from the first keyframe after the start), so their windows pair up.
A stage that keeps the accel leaves r near the world's; the first row that drops it is where the
generated video loses it. Prints JSON (Pearson r, MAE, R^2 of steer and accel per row, and the
probe's mean speed per row against the true one) and draws action_pipeline.png (the r per row) and
action_pipeline_storyboard.png (the first clip's frames, a row each).

    python benchmarks/action_pipeline.py --model drivesim/assets/default_model --prediction video_ldm_stride4 \
        --clips 8 --threads 2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import matplotlib
import numpy as np
import torch
from einops import rearrange, reduce
from torch import Tensor
from tqdm import tqdm

from drivesim.diffusion.conditioning import Conditioning
from drivesim.diffusion.ego_warp import GroundCamera, ground_rows
from drivesim.eval.adherence import pearson, window_action_targets
from drivesim.eval.checks import uint8_to_video
from drivesim.eval.degrade import gaussian_blur
from drivesim.eval.probe_data import REFERENCE_SEED_BASE
from drivesim.eval.probe_io import load_probes
from drivesim.eval.report import to_plain
from drivesim.eval.travel_reading import read_travel, travel_pairs, travel_score
from drivesim.paths import default_probes_dir
from drivesim.rollout.engine import LearnedEngine, to_uint8
from drivesim.rollout.engine_api import EngineConfig
from drivesim.rollout.odometry import ODOMETRY_STAGE, load_travel_reader
from drivesim.rollout.travel_anchor import move_along_road
from drivesim.rollout.world_model import load
from drivesim.sampling.ddim import SPACINGS
from drivesim.sampling.interpolation import blend_keyframes

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _action_reading import read_actions  # noqa: E402
from _video_eval import RealClips, driven_clips, storyboard  # noqa: E402

DRIVER_SEED_BASE = 7_000_000  # as video_ldm_quality.py's action rollouts
LEAK = 0.9  # --travel-noise: how much of the last keyframe's position error the next one keeps
ASPHALT_SATURATION = 0.25  # road_share: a pixel of saturation below this is asphalt or a marking, not grass or kerb
ON_ROAD_SHARE = 0.5  # a probe window is on the road when its mean road share is at least this


def jittered_keyframes(codec, keys: Tensor, spread: float, seed: int, camera: GroundCamera) -> Tensor:
    """Keyframe latents (b, k, c, h, w), each from the third on moved along the road by p_k = LEAK p_(k-1) + e_k
    metres, e_k ~ N(0, spread^2) (the first two are the context every row starts from): (b, k, c, h, w)."""
    b, k = keys.shape[:2]
    e = torch.randn((b, k), generator=torch.Generator().manual_seed(seed)) * spread
    e[:, :2] = 0.0
    p = torch.zeros_like(e)
    for i in range(2, k):
        p[:, i] = LEAK * p[:, i - 1] + e[:, i]
    frames = codec.decode(rearrange(keys, "b k c h w -> (b k) c h w")).float()
    moved = move_along_road(frames, rearrange(p, "b k -> (b k)"), camera)
    return rearrange(codec.encode(moved).to(keys.dtype), "(b k) c h w -> b k c h w", b=b)


@torch.no_grad()
def stage_latents(
    engine, world, clips: RealClips, seed: int, predictor=None, noise: tuple[float, ...] = ()
) -> dict[str, Tensor]:
    """Latents (b, n, c, h, w) of each stage row for the frames stride .. n-1 of the clips (n = the
    largest 1 + multiple of the keyframe stride within the clip), and the true latents of all frames;
    with a `predictor` engine also the rows of keyframes it draws; a row per travel-error spread in `noise`."""
    video = uint8_to_video(clips.frames)  # b t 3 h w in [-1, 1]
    z = torch.cat([world.autoencoder.encode_video(video[i : i + 1]) for i in range(len(video))])  # b t c h w
    stride = engine.keyframe_stride
    keys = z[:, : (z.shape[1] - 1) // stride * stride + 1 : stride]  # b k c h w, true keyframes
    n = stride * (keys.shape[1] - 1) + 1
    rows = {"all": z[:, :n], "blended_true_keyframes": blend_keyframes(keys, stride)[:, stride:n]}
    b = len(clips.ids)
    cond = Conditioning.from_labels(clips.time_of_day, clips.crowdedness, [None] * b, [None] * b)
    gens = [torch.Generator().manual_seed(seed + i) for i in range(b)]
    key_speeds = torch.from_numpy(clips.speed[:, :n:stride].astype(np.float32))  # b k
    actions = torch.from_numpy(clips.actions[:, :n])  # b n 2; actions[:, i] led to frame i
    # held (b, k, 2): the mean action over the interval that led to each keyframe (the first: the second's)
    held = torch.stack([reduce(actions[:, stride * (k - 1) + 1 : stride * k + 1], "b t a -> b a", "mean")
                        for k in range(1, keys.shape[1])], dim=1)  # fmt: skip
    held = torch.cat([held[:, :1], held], dim=1)  # b k 2
    filled = [keys[:, 1:2]]  # keyframe 1, then each interval up to the next keyframe
    for k in tqdm(range(2, keys.shape[1]), desc="fill", leave=False):
        filled.append(engine.fill(keys[:, k - 2 : k + 1], held[:, k], cond, gens, key_speeds[:, k - 2 : k + 1]))
    rows["interpolated_true_keyframes"] = torch.cat(filled, dim=1)
    warper = LearnedEngine(world, dataclasses.replace(engine.config, fill="warp"))
    rows["warped_true_keyframes"] = warp_filled(warper, keys, cond, gens, key_speeds)
    for spread in noise:
        jittered = jittered_keyframes(engine.frame_codec, keys, spread, seed, GroundCamera())
        rows[f"warped_true_keyframes_noise_{spread:g}"] = warp_filled(warper, jittered, cond, gens, key_speeds)
    if predictor is not None:
        for name, own in (("predicted_keyframes_warped", False), ("rolled_out_keyframes_warped", True)):
            drawn = predicted_keyframes(predictor, keys, held, key_speeds, cond, seed, own)
            rows[name] = warp_filled(warper, drawn, cond, gens, key_speeds)
    return rows


def warp_filled(warper, keys: Tensor, cond: Conditioning, gens, key_speeds: Tensor) -> Tensor:
    """Keyframes (b, k, c, h, w) -> keyframe 1 and every warp-filled interval after it (b, stride (k - 2) + 1, ...)."""
    filled = [keys[:, 1:2]] + [
        warper.fill(keys[:, k - 2 : k + 1], None, cond, gens, key_speeds[:, k - 2 : k + 1])
        for k in tqdm(range(2, keys.shape[1]), desc="warp", leave=False)
    ]
    return torch.cat(filled, dim=1)


def predicted_keyframes(
    predictor, keys: Tensor, held: Tensor, key_speeds: Tensor, cond: Conditioning, seed: int, own: bool
) -> Tensor:
    """Keyframes (b, k, c, h, w): the two true first ones, then each drawn by `predictor.predict` from the two
    before it, the true ones (`own` False) or the drawn ones (`own` True), told the true interval actions `held`
    (b, k, 2) and keyframe speeds (b, k)."""
    b = keys.shape[0]
    gens = [torch.Generator().manual_seed(seed + i) for i in range(b)]
    shown = [keys[:, 0], keys[:, 1]]
    for k in tqdm(range(2, keys.shape[1]), desc="predict (own)" if own else "predict", leave=False):
        context = torch.stack(shown[k - 2 : k], dim=1) if own else keys[:, k - 2 : k]  # b 2 c h w
        new = predictor.predict(context, held[:, k], cond, gens, context_actions=held[:, k - 2 : k],
                                context_speed=key_speeds[:, k - 2 : k])  # fmt: skip
        shown.append(new.to(keys.dtype))
    return torch.stack(shown, dim=1)


def swap_ground(base: np.ndarray, donor: np.ndarray, camera: GroundCamera) -> np.ndarray:
    """Frames (b, t, h, w, 3) of `base` with the rows that see the road (`ground_rows`) taken from `donor`."""
    if base.shape != donor.shape:
        raise ValueError(f"swap_ground: base {base.shape} and donor {donor.shape} must have the same shape")
    rows = ground_rows(base.shape[2], camera).numpy()  # h
    out = base.copy()
    out[:, :, rows] = donor[:, :, rows]
    return out


def road_share(frames: np.ndarray) -> np.ndarray:
    """Frames (b, t, h, w, 3) uint8 -> (b, t): the share of grey pixels (saturation < ASPHALT_SATURATION: asphalt
    and its markings) in the patch ahead of the bonnet (the nearer half of the road rows, the middle half of the
    columns). Near 1 on the road by day and night (0.6-1 on held-out world starts: cars ahead lower it); grass
    and kerbs read 0: a rollout that has left the road."""
    h, w = frames.shape[2:4]
    rows = np.nonzero(ground_rows(h, GroundCamera()).numpy())[0]
    patch = frames[:, :, rows[len(rows) // 2 :], w // 4 : 3 * w // 4].astype(np.float32)  # b t r c 3
    top, bottom = patch.max(axis=-1), patch.min(axis=-1)
    grey = (top - bottom) / np.maximum(top, 1.0) < ASPHALT_SATURATION
    return reduce(grey.astype(np.float32), "b t r c -> b t", "mean")


def on_road_adherence(
    frames: np.ndarray, targets: np.ndarray, recovered: np.ndarray, span: tuple[int, int, int]
) -> dict:
    """Steer / accel r over the probe windows (num_frames, frame_stride, hop = `span`) whose frames (b, t, h, w, 3)
    are on the road by `road_share`, and the share of windows that are: an open-loop rollout that drifts off the
    road has no markings left to read motion from."""
    share = road_share(frames)
    windows = window_action_targets(np.stack([share, share], axis=-1), *span)[:, 0]  # (b n,) mean share per window
    keep = windows >= ON_ROAD_SHARE
    return {"windows_on_road": float(keep.mean()) if len(keep) else None, "road_share_mean": float(share.mean()),
            **{f"{name}_pearson": pearson(targets[keep, k], recovered[keep, k]) if keep.sum() > 2 else None
               for k, name in enumerate(("steer", "accel"))}}  # fmt: skip


def read_row(probes, frames: np.ndarray, actions: np.ndarray, hop: int) -> dict:
    """Action adherence and mean read speed of frames (b, t, h, w, 3) against actions (b, t, 2), with the 90%
    interval of each r over resampled clips (`ActionReading.report`), the sharpness of the whole frames and of
    the rows that see the road, and the r over the windows still on the road."""
    reading = read_actions(probes, frames, actions, hop)
    return reading.report(len(frames)) | {
        "sharpness": sharpness(frames),
        "road_sharpness": sharpness(frames, ground_rows(frames.shape[2], GroundCamera()).numpy()),
        "on_road": on_road_adherence(frames, reading.targets, reading.recovered, reading.span),
    }  # fmt: skip


def sharpness(frames: np.ndarray, rows: np.ndarray | None = None) -> float:
    """Mean absolute difference of neighbouring pixels (grey, 0..1, across and down) of frames (b, t, h, w, 3),
    over the image rows `rows` (h,) bool (default all): a blurrier video reads lower."""
    grey = reduce(frames.astype(np.float32) / 255.0, "b t h w c -> b t h w", "mean")
    if rows is not None:
        grey = grey[:, :, rows]
    return float((np.abs(np.diff(grey, axis=-1)).mean() + np.abs(np.diff(grey, axis=-2)).mean()) / 2.0)


def read_travel_rows(reader: tuple, frames: dict[str, np.ndarray], speed: np.ndarray, stride: int, fps: float) -> dict:
    """Each row's travel read by `reader` (TravelReader, pair frames) from every keyframe (row frames 0, stride,
    ...) to the frame `pair frames` later, against the true travel of speed (b, t): `travel_score` per row, with
    the within-clip r (does the keyframes' motion follow the changes of speed the accel makes)."""
    net, apart = reader
    idx, true = travel_pairs(speed, apart, fps, every=stride)
    return {"rows": {name: travel_score(read_travel(net, f, idx, apart), true, idx[:, 0])
                     for name, f in frames.items()}}  # fmt: skip


def plot(result: dict, path: Path) -> Path:
    """Bars of steer / accel r per row (the world's first), beside the target."""
    rows = result["rows"]
    names = list(rows)
    x = np.arange(len(names))
    travel = (result.get("travel") or {}).get("rows")
    fig, axes = plt.subplots(2 if travel else 1, 1, figsize=(8, 6.5 if travel else 3.5), squeeze=False)
    ax = axes[0, 0]
    for k, (field, colour) in enumerate((("steer", "tab:blue"), ("accel", "tab:orange"))):
        values = [rows[n][field]["pearson"] or 0.0 for n in names]
        ax.bar(x + (k - 0.5) * 0.38, values, 0.38, label=field, color=colour)
    ax.axhline(0.8, color="grey", ls="--", lw=1, label="target 0.8")
    ax.set_xticks(x, [n.replace("_", "\n") for n in names], fontsize=8)
    ax.set_ylabel("Pearson r, action probe")
    ax.set_title(f"{result['prediction']}: keyframes {result['keyframe_stride']} frames apart, {result['clips']} clips")
    ax.legend(fontsize=8)
    if travel:  # how far each row's keyframes move, and whether they follow the speed inside a clip
        ax = axes[1, 0]
        for k, (field, colour) in enumerate((("pearson", "tab:green"), ("within_clip_pearson", "tab:red"))):
            ax.bar(x + (k - 0.5) * 0.38, [travel[n][field] or 0.0 for n in names], 0.38, label=f"travel {field}",
                   color=colour)  # fmt: skip
        ax.set_xticks(x, [f"{n.replace('_', chr(10))}\n{travel[n]['read_mean_m']:.2f} m" for n in names], fontsize=7)
        ax.set_ylabel("r, read vs true travel")
        ax.set_title(f"travel per keyframe (true mean {travel[names[0]]['true_mean_m']:.2f} m)", fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model folder (drivesim.load)")
    parser.add_argument("--prediction", default="video_ldm", help="prediction stage (sets the keyframe stride)")
    parser.add_argument("--probes", default=str(default_probes_dir()))
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=6.4)
    parser.add_argument("--interpolation-steps", type=int, default=2)
    parser.add_argument("--spacing", choices=SPACINGS, default="trailing")
    parser.add_argument("--predict", action="store_true",
                        help="add the rows of keyframes drawn by the prediction stage (one step / rolled out)")
    parser.add_argument("--keyframe-steps", type=int, default=10, help="keyframe DDIM steps (with --predict)")
    parser.add_argument("--context-guidance", type=float, default=EngineConfig.context_guidance,
                        help="s of context guidance (with --predict; 1 = off)")
    parser.add_argument("--action-guidance", type=float, default=EngineConfig.action_guidance,
                        help="s of action guidance (with --predict; 1 = off; scales a video.ego_warp model's warp too)")
    parser.add_argument("--warp-start", type=int, default=0, help="EngineConfig.warp_start (with --predict)")
    parser.add_argument("--context-keys", type=int, default=EngineConfig.context_keys, choices=(1, 2),
                        help="EngineConfig.context_keys (with --predict): past keyframes the stage is given")
    parser.add_argument("--context-noise", type=float, default=EngineConfig.context_noise,
                        help="EngineConfig.context_noise (with --predict; -1: the model's trained default)")
    parser.add_argument("--anchor-travel", action="store_true",
                        help="EngineConfig.anchor_travel (with --predict): drawn keyframes moved to the told travel")
    parser.add_argument("--road-from-warp", type=float, default=EngineConfig.road_from_warp,
                        help="EngineConfig.road_from_warp (with --predict): the warp's weight in drawn road rows")
    parser.add_argument("--travel-noise", type=float, nargs="*", default=[], metavar="S",
                        help="rows of true keyframes moved along the road by errors of spread S metres")
    parser.add_argument("--blur", type=float, nargs="*", default=[], metavar="SIGMA",
                        help="rows of the world's decoded frames blurred by a Gaussian of SIGMA pixels")
    parser.add_argument("--swap-ground", action="store_true",
                        help="(with --predict) rows of drawn frames with the decoded road rows, and the converse")
    parser.add_argument("--travel-reader", default=None, metavar="DIR",
                        help="model folder whose odometry stage reads each row's travel from every keyframe on")
    parser.add_argument("--hop", type=int, default=4, help="source frames between probe windows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/action_pipeline")
    args = parser.parse_args()
    if args.clips < 1 or args.seconds <= 0:
        parser.error(f"--clips {args.clips} must be >= 1 and --seconds {args.seconds} > 0")
    if any(s <= 0 for s in args.blur):
        parser.error(f"--blur {args.blur}: each sigma must be > 0 pixels")
    if args.swap_ground and not args.predict:
        parser.error("--swap-ground needs --predict (it swaps the road rows of the drawn rows)")
    if any(s <= 0 for s in args.travel_noise):
        parser.error(f"--travel-noise {args.travel_noise}: each spread must be > 0 metres")
    reader = None
    if args.travel_reader is not None:
        reader = load_travel_reader(args.travel_reader)
        if reader is None:
            parser.error(f"--travel-reader {args.travel_reader}: no {ODOMETRY_STAGE} stage there "
                         "(benchmarks/travel_odometry.py --export writes one)")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    probes = load_probes(args.probes)
    world = load(args.model)
    engine = LearnedEngine(world, EngineConfig(prediction=args.prediction, interpolation_steps=args.interpolation_steps,
                                       spacing=args.spacing))  # fmt: skip
    fps = int(round(world.fps))
    clips = driven_clips(REFERENCE_SEED_BASE, args.clips, args.seconds, engine.frame_size, fps,
                         DRIVER_SEED_BASE + 1000 * args.seed)  # fmt: skip
    predictor = None
    if args.predict:
        predictor = LearnedEngine(world, dataclasses.replace(
            engine.config, keyframe_steps=args.keyframe_steps, context_guidance=args.context_guidance,
            action_guidance=args.action_guidance, warp_start=args.warp_start, anchor_travel=args.anchor_travel,
            context_keys=args.context_keys, context_noise=args.context_noise, road_from_warp=args.road_from_warp,
        ))  # fmt: skip
    rows = stage_latents(engine, world, clips, args.seed, predictor, tuple(args.travel_noise))
    stride, n = engine.keyframe_stride, rows["all"].shape[1]
    frames = {
        "world": clips.frames[:, stride:n],
        "decoded": to_uint8(engine.decode(rows["all"][:, :0], rows["all"]))[:, stride:n],
        "blended_true_keyframes": to_uint8(engine.decode(rows["all"][:, :0], rows["blended_true_keyframes"])),
        **{
            name: to_uint8(engine.decode(rows["all"][:, :0], rows[name]))
            for name in rows
            if name not in ("all", "blended_true_keyframes")
        },
    }
    for sigma in args.blur:  # the world's decoded frames blurred: what sharpness alone does to the readings
        video = gaussian_blur(uint8_to_video(frames["decoded"]), sigma)
        frames[f"decoded_blur_{sigma:g}"] = to_uint8(video)
    if args.swap_ground:  # where a drawn row loses the accel: in the road rows or in the rest of the frame
        for name in ("predicted_keyframes_warped", "rolled_out_keyframes_warped"):
            frames[f"{name}_true_ground"] = swap_ground(frames[name], frames["decoded"], GroundCamera())
            frames[f"decoded_{name}_ground"] = swap_ground(frames["decoded"], frames[name], GroundCamera())
    actions = clips.actions[:, stride:n]
    result = {
        "model": args.model, "prediction": args.prediction, "keyframe_stride": stride, "clips": args.clips,
        "frames": n - stride, "interpolation_steps": args.interpolation_steps, "spacing": args.spacing,
        "predict": {"keyframe_steps": args.keyframe_steps, "context_guidance": args.context_guidance,
                    "action_guidance": args.action_guidance,
                    "warp_start": args.warp_start, "anchor_travel": args.anchor_travel,
                    "context_keys": args.context_keys, "context_noise": args.context_noise,
                    "road_from_warp": args.road_from_warp} if args.predict else None,
        "travel_noise": {"spreads_m": args.travel_noise, "leak": LEAK}, "blur_sigmas_px": args.blur,
        "swap_ground": args.swap_ground,
        "true_speed_mean": float(np.mean(clips.speed[:, stride:n])),
        "rows": {name: read_row(probes, f, actions, args.hop) for name, f in frames.items()},
    }  # fmt: skip
    if reader is not None:
        true_speed = clips.speed[:, stride:n]
        result["travel"] = {"reader": args.travel_reader, "pair_frames": reader[1],
                            **read_travel_rows(reader, frames, true_speed, stride, world.fps)}  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "action_pipeline.json").write_text(json.dumps(to_plain(result), indent=2))
    plot(result, out / "action_pipeline.png")
    storyboard({name: f[0] for name, f in frames.items()}, out / "action_pipeline_storyboard.png", columns=8)
    print(json.dumps(to_plain(result), indent=2))


if __name__ == "__main__":
    main()
