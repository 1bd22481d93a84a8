"""Video LDM quality with the evaluation probes: clips, action adherence, long-rollout drift, interpolation.

    python benchmarks/video_ldm_quality.py --model runs/models/default \
        [--probes DIR] --out benchmarks/results/video_ldm [--dataset DIR]
    python benchmarks/video_ldm_quality.py --random --quick --threads 1 --out /tmp/vq   # plumbing check

Writes `<out>/quality.json` (also printed) and PNGs. Everything is seeded. Real clips are held-out world
episodes (sets A: seeds 2_000_000 + i, B: 3_000_000 + i, labels cycling over the 6 pairs), or with
--dataset the test split of a dataset folder (even clips A, odd clips B; --clips is then ignored).
1. clips: from the first frame of each B clip, with B's labels and B's actions (averaged per keyframe
   interval), the engine (all stages) generates a clip; FVD-/FID-probe against A next to the floor real B
   vs A (same sample counts), label adherence of the whole generated clips (`drivesim.eval.suite`);
2. actions: the world (seeds 3_000_000 + i, 2 s of behaviour policy) is driven by a `PatternDriver`
   (weaving in its lane, random accel holds kept within 10-34 m/s: commands the world can follow) and
   the engine, from the same start frame, labels and speed, is told the world's applied actions per
   keyframe step; the clip probe recovers them from the generated video: Pearson r per dim (target
   >= 0.8) next to the same probe on the world's own video under those commands (`world`: the ceiling
   of what the probe can read) and on real A (behaviour-policy actions); `actions_storyboard.png`;
   `steer_storyboard.png`: one real context (column 0), "steer left" vs "steer right", and their
   mean absolute difference over the generated frames (`left_right_divergence`, 0-255);
3. long rollout: `--minutes` of keyframes (interpolation with --long-interpolate) from one real frame
   per rollout (world seeds 6_000_000 + i, their behaviour-policy actions commanded), with context
   guidance on (engine default s) and off (s = 1: f' = f(z; c_S), the conditional model, no extra pass);
   FVD-/FID-probe per window vs a pooled real reference (seeds 5_000_000 + i), drift ratio = window /
   first window (target: <= 1.5 with guidance), the real stream's own per-window values as a floor, and
   each window over the real stream's same window (`fvd_over_real`; unlike the drift ratio it does not
   assume the first window is sound);
   `long_rollout.png`, `long_rollout_storyboard.png`. On keyframes the clip probe sees frames a keyframe
   stride apart (its trained spacing is reported next to it): compare values only within this section;
4. interpolation: real clips encoded, keyframes kept, the interpolation model fills (each level alone, and
   the whole chain); PSNR / SSIM of the in-between frames vs the real ones, next to linear blending of
   the keyframe latents (decoded), of the keyframe pixels, and the autoencoder's reconstruction ceiling.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from drivesim.eval.adherence import (
    ActionAdherence,
    ConditionAdherence,
    action_adherence,
    pearson,
    recover_actions,
    recover_speed,
    window_action_targets,
)
from drivesim.eval.checks import uint8_to_video
from drivesim.eval.probe_data import HELDOUT_SEED_BASE, REFERENCE_SEED_BASE
from drivesim.eval.probe_io import Probes, load_probes
from drivesim.eval.report import plot_storyboard, to_plain, write_json
from drivesim.eval.results import EvalOptions, EvalReport
from drivesim.eval.suite import evaluate, prepare_real
from drivesim.eval.traffic import TrafficCurve, plot_traffic, traffic_curve, vehicle_counts
from drivesim.eval.video_sets import EvalClip, VideoSet
from drivesim.paths import default_probes_dir
from drivesim.rollout.compute_dtype import DTYPE_CHOICES
from drivesim.rollout.engine import LearnedEngine
from drivesim.rollout.engine_api import EngineConfig
from drivesim.rollout.keyframe_fill import FILLS
from drivesim.rollout.layout import LAYOUT_CHOICES
from drivesim.rollout.random_model import RandomModelSpec, build_random_model
from drivesim.rollout.world_model import WorldModel, load
from drivesim.sampling.video import VideoSamplingConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _interp_eval import InterpLevel, evaluate_interpolation, interpolation_levels  # noqa: E402
from _long_rollout import measure_long  # noqa: E402
from _video_eval import (  # noqa: E402
    RealClips,
    driven_clips,
    generate,
    held_actions,
    interval_means,
    load_split,
    probe_stride,
    random_probes,
    render_real,
    storyboard,
)

ACTION_TARGET = 0.8
DRIVER_SEED_BASE = 7_000_000  # PatternDriver seeds of the action rollouts (+ 1000 x --seed + i)


@dataclass
class Sizes:
    clips: int = 16  # real clips per set (A reference, B contexts); generated clips = B clips
    storyboard_clips: int = 3  # clips drawn in clips_storyboard.png (real B above generated)
    clip_seconds: float = 3.2  # per generated clip (6 keyframes at stride 16, 24 at stride 4)
    action_rollouts: int = 8
    action_seconds: float = 6.4  # per action rollout
    minutes: float = 5.0  # long rollout length
    window_seconds: float = 30.0
    long_rollouts: int = 4
    long_reference: int = 4  # real reference episodes of the long rollout
    interp_clips: int = 8
    interp_keys: int = 5  # keyframes per interpolated clip (at the coarsest stride)
    keyframe_steps: int = 10  # DDIM steps per keyframe
    interpolation_steps: int = 8
    spacing: str = EngineConfig.spacing  # DDIM times of keyframes and interpolation (drivesim.sampling.ddim)
    batch: int = 8  # rollouts per engine batch
    clip_hop: int = 4  # frames between clip-probe windows (source-rate video)
    long_hop: int = 1  # keyframes between clip-probe windows in the long rollout


QUICK = Sizes(clips=4, clip_seconds=1.07, action_rollouts=4, action_seconds=1.33, minutes=0.2, window_seconds=4.0,
              long_rollouts=2, long_reference=2, interp_clips=4, interp_keys=3, keyframe_steps=2,
              interpolation_steps=2)


@dataclass(frozen=True)
class ClipQuality:
    fvd_probe: float | None
    fvd_probe_real_vs_real: float | None  # real B vs real A: the floor
    fid_probe: float | None
    fid_probe_real_vs_real: float | None
    condition: ConditionAdherence | None  # probe labels of whole generated clips vs requested
    condition_real: ConditionAdherence | None  # the probe on real B
    replayed_action: ActionAdherence | None  # B's actions commanded, recovered by the clip probe
    flicker: float
    flicker_real: float
    num_clips: int
    frames_per_clip: int
    fps: float
    notes: list[str]
    traffic: TrafficCurve | None = None  # detected vehicles per frame over the clips, generated and real B


@dataclass(frozen=True)
class ActionQuality:
    generated: ActionAdherence  # the clip probe on the generated video against the commands it was told
    world: ActionAdherence  # the same probe on the world's own video under the same driver: the ceiling
    real_probe: ActionAdherence | None  # the clip probe on real A with its true (behaviour-policy) actions
    target_pearson: float
    passes: bool
    num_rollouts: int
    steps: int
    # mean |left - right| (0-255) over the storyboard's generated frames: the same context under
    # "steer left" vs "steer right" (the world itself: ~32 after 16 frames, README)
    left_right_divergence: float
    # Pearson r of the clip probe's speed reading against the commanded accel, window by window, on the
    # generated video and on the world's: a model that renders the accel as a speed level instead of a
    # change of speed scores high here and ~0 on accel
    speed_vs_accel_generated: float | None
    speed_vs_accel_world: float | None


def to_set(real: RealClips, frames: np.ndarray, actions: np.ndarray, fps: float, source: str) -> VideoSet:
    clips = [
        EvalClip(real.ids[i], frames[i], fps, real.time_of_day[i], real.crowdedness[i], actions=actions[i])
        for i in range(len(real.ids))
    ]
    return VideoSet(tuple(clips), source)


def real_window(engine: LearnedEngine, real: RealClips, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Real frames / actions aligned with a generated clip: from the first predicted keyframe, output rate."""
    stride = engine.keyframe_stride
    keep = stride // engine.frames_per_step
    idx = np.arange(stride, stride + steps * stride + 1, keep)
    return real.frames[:, idx], real.actions[:, idx]


def measure_clips(
    engine: LearnedEngine, probes: Probes, a: RealClips, b: RealClips, z: Sizes, o: EvalOptions, seed: int, out: Path
) -> ClipQuality:
    stride, f, steps = engine.keyframe_stride, engine.frames_per_step, control_steps(z.clip_seconds, engine)
    commanded = interval_means(b.actions, stride, stride, steps)  # (n, steps, 2)
    frames = generate(engine, b, commanded, seed, z.batch, "clips")
    held = held_actions(commanded, b.actions[:, 1 : stride + 1].mean(1), f)
    gen = to_set(b, frames, held, engine.output_fps, "generated")
    set_a = to_set(a, *real_window(engine, a, steps), engine.output_fps, "real A")
    set_b = to_set(b, *real_window(engine, b, steps), engine.output_fps, "real B")
    prepared = prepare_real(set_a, probes, o)
    floor: EvalReport = evaluate(prepared, set_b, probes, o)
    rep: EvalReport = evaluate(prepared, gen, probes, o)
    plot_storyboard(set_b, gen, out / "clips_storyboard.png", num_clips=z.storyboard_clips, num_frames=8)
    keep = stride // f  # source frames per output frame
    real_frames = b.frames[:, : frames.shape[1] * keep : keep]  # B from its first frame, at the output rate
    traffic = traffic_curve(vehicle_counts(probes.frame, frames), vehicle_counts(probes.frame, real_frames),
                            b.crowdedness, engine.output_fps)  # fmt: skip
    plot_traffic(traffic, out / "clips_traffic.png")
    return ClipQuality(
        rep.frechet.fvd_probe, floor.frechet.fvd_probe, rep.frechet.fid_probe, floor.frechet.fid_probe,
        rep.condition, floor.condition, rep.action, rep.temporal.flicker, floor.temporal.flicker,
        len(gen.clips), frames.shape[1], engine.output_fps, rep.notes, traffic,
    )  # fmt: skip


def control_steps(seconds: float, engine: LearnedEngine) -> int:
    """Keyframe steps that cover `seconds` of video (at least 2)."""
    return max(2, round(seconds * engine.world.fps / engine.keyframe_stride))


def clip_adherence(probes: Probes, frames: np.ndarray, actions: np.ndarray, fps: float, hop: int) -> ActionAdherence:
    stride = probe_stride(probes, fps)
    recovered = recover_actions(probes.action_reader, uint8_to_video(frames), hop, stride)
    return action_adherence(window_action_targets(actions, probes.clip.config.num_frames, stride, hop), recovered)


def speed_vs_accel(probes: Probes, frames: np.ndarray, actions: np.ndarray, fps: float, hop: int) -> float | None:
    stride = probe_stride(probes, fps)
    speed = recover_speed(probes.clip, uint8_to_video(frames), hop, stride)
    return pearson(speed, window_action_targets(actions, probes.clip.config.num_frames, stride, hop)[:, 1])


def measure_actions(
    engine: LearnedEngine, probes: Probes, a: RealClips, b: RealClips, z: Sizes, seed: int, out: Path
) -> ActionQuality:
    stride, fps, steps = engine.keyframe_stride, int(round(engine.world.fps)), control_steps(z.action_seconds, engine)
    driven = driven_clips(REFERENCE_SEED_BASE, z.action_rollouts, steps * stride / fps, engine.frame_size, fps,
                          DRIVER_SEED_BASE + 1000 * seed)  # fmt: skip
    commanded = interval_means(driven.actions, 0, stride, steps)  # (n, steps, 2): what the world applied
    frames = generate(engine, driven, commanded, seed, z.batch, "actions")
    held = held_actions(commanded, commanded[:, 0], engine.frames_per_step)
    gen = clip_adherence(probes, frames, held, engine.output_fps, z.clip_hop)
    world = clip_adherence(probes, driven.frames, driven.actions, fps, z.clip_hop)
    real = clip_adherence(probes, a.frames, a.actions, engine.world.fps, z.clip_hop) if np.any(a.actions) else None
    one = b.take([0])
    rows = {}
    for name, steer in (("steer left (-0.8)", -0.8), ("steer right (+0.8)", 0.8)):
        acts = np.tile(np.array([steer, 0.0], np.float32), (1, steps, 1))
        rows[name] = np.concatenate([one.frames[:, 0], generate(engine, one, acts, seed, 1, name)[0]])
    storyboard(rows, out / "steer_storyboard.png", columns=8)
    storyboard({"world (driven)": driven.frames[0], "generated": frames[0]}, out / "actions_storyboard.png", columns=8)
    left, right = (r[1:].astype(np.float64) for r in rows.values())  # generated frames only
    ok = all(p is not None and p >= ACTION_TARGET for p in (gen.steer.pearson, gen.accel.pearson))
    return ActionQuality(gen, world, real, ACTION_TARGET, ok, z.action_rollouts, steps,
                         float(np.abs(left - right).mean()),
                         speed_vs_accel(probes, frames, held, engine.output_fps, z.clip_hop),
                         speed_vs_accel(probes, driven.frames, driven.actions, fps, z.clip_hop))  # fmt: skip


def measure_interpolation(world: WorldModel, real: RealClips, z: Sizes, seed: int) -> list[InterpLevel]:
    if world.interpolation is None:
        return []
    plan = interpolation_levels(world)
    runs = [([p], f"x4 alone: keyframes {p[0]} -> {p[0] // 4} frames apart") for p in plan]
    if len(plan) > 1:
        runs.append((plan, f"x{4 ** len(plan)} chain: keyframes {plan[0][0]} -> {plan[0][0] // 4 ** len(plan)}"))
    clips = real.take(list(range(min(z.interp_clips, len(real.ids)))))
    sampling = VideoSamplingConfig(steps=z.interpolation_steps, spacing=z.spacing)
    return [evaluate_interpolation(world, clips, p, name, z.interp_keys, sampling, seed, z.batch)
            for p, name in runs]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="runs/models/default", help="world model folder (all stages)")
    parser.add_argument("--probes", default=str(default_probes_dir()), help="probes folder (default: bundled)")
    parser.add_argument("--dataset", default=None, help="dataset folder: real clips from its test split")
    parser.add_argument("--out", default="benchmarks/results/video_ldm")
    parser.add_argument("--random", action="store_true", help="random model + random probes in a temp folder")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (plumbing check)")
    parser.add_argument("--prediction", default=EngineConfig.prediction, help="keyframe-prediction stage")
    parser.add_argument("--fill-keys", type=int, default=EngineConfig.fill_keys, help="keys the interpolation sees")
    parser.add_argument("--context-guidance", type=float, default=None, help="s with guidance on (engine default)")
    parser.add_argument("--action-guidance", type=float, default=None, help="action guidance scale (engine default)")
    parser.add_argument("--keyframe-crowdedness-guidance", type=float, default=None,
                        help="crowdedness guidance of the keyframes (engine default; 1 = off)")
    parser.add_argument("--keyframe-crowdedness-interval", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                        help="diffusion-time fractions where the keyframes' crowdedness guidance acts (engine default)")
    parser.add_argument("--context-interval", type=float, nargs=2, default=list(EngineConfig.context_interval),
                        metavar=("LO", "HI"), help="fractions of the diffusion times where context guidance acts")
    parser.add_argument("--long-interpolate", action="store_true", help="long rollout with interpolation")
    parser.add_argument("--fill", default="model", choices=list(FILLS), help="frames between keyframes (EngineConfig)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["clips", "actions", "long", "interpolation"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compile", action="store_true",
                        help="EngineConfig.compile: torch.compile the per-step networks (minutes of first compile)")
    parser.add_argument("--dtype", default=EngineConfig.dtype, choices=list(DTYPE_CHOICES),
                        help="the engine's compute dtype (EngineConfig.dtype)")
    parser.add_argument("--layout", default=EngineConfig.layout, choices=list(LAYOUT_CHOICES),
                        help="the networks' convolution weights (EngineConfig.layout)")
    parser.add_argument("--warp-start", type=int, default=0,
                        help="keyframe DDIM steps replaced by the ego-motion warp (EngineConfig.warp_start)")
    parser.add_argument("--anchor-travel", action="store_true",
                        help="new keyframes moved to where the ego speed puts them (EngineConfig.anchor_travel)")
    parser.add_argument("--anchor-gain", type=float, default=EngineConfig.anchor_gain,
                        help="fraction of the travel error anchoring corrects (EngineConfig.anchor_gain)")
    parser.add_argument("--context-keys", type=int, default=EngineConfig.context_keys, choices=(1, 2),
                        help="past keyframes the prediction stage is given (EngineConfig.context_keys)")
    parser.add_argument("--road-from-warp", type=float, default=EngineConfig.road_from_warp,
                        help="the ego warp's weight in the road rows of new keyframes (EngineConfig.road_from_warp)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    for fld in dataclasses.fields(Sizes):
        parser.add_argument(f"--{fld.name.replace('_', '-')}", type=type(fld.default), default=None)
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    sizes = replace(QUICK if args.quick else Sizes(), **{
        f.name: getattr(args, f.name) for f in dataclasses.fields(Sizes) if getattr(args, f.name) is not None
    })  # fmt: skip
    if sizes.storyboard_clips < 1:
        raise SystemExit(f"--storyboard-clips: storyboard_clips={sizes.storyboard_clips}; allowed: 1 or more clips")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="video_ldm_quality_")) if args.random else None
    model = build_random_model(tmp / "model", RandomModelSpec()) if tmp else Path(args.model)
    world = load(model)
    guidance = {k: v for k, v in (("context_guidance", args.context_guidance),
                                  ("action_guidance", args.action_guidance),
                                  ("keyframe_crowdedness_guidance", args.keyframe_crowdedness_guidance),
                                  ("keyframe_crowdedness_interval", args.keyframe_crowdedness_interval))
                if v is not None}  # else engine defaults
    base = EngineConfig(device=args.device, prediction=args.prediction, keyframe_steps=sizes.keyframe_steps,
                        interpolation_steps=sizes.interpolation_steps, spacing=sizes.spacing, fill=args.fill,
                        fill_keys=args.fill_keys, context_interval=tuple(args.context_interval), dtype=args.dtype,
                        layout=args.layout, compile=args.compile, warp_start=args.warp_start,
                        anchor_travel=args.anchor_travel, anchor_gain=args.anchor_gain, context_keys=args.context_keys,
                        road_from_warp=args.road_from_warp,
                        **guidance)
    engine = LearnedEngine(world, base)
    h, w = engine.frame_size
    stride = engine.keyframe_stride
    length = stride * (max(control_steps(sizes.clip_seconds, engine), sizes.interp_keys - 1) + 1) + 1
    if args.dataset:
        test = load_split(args.dataset, "test", length, h, w)
        real_a, real_b = test.take(list(range(0, len(test.ids), 2))), test.take(list(range(1, len(test.ids), 2)))
    else:
        real_a = render_real(HELDOUT_SEED_BASE, sizes.clips, length, h, w, int(round(world.fps)))
        real_b = render_real(REFERENCE_SEED_BASE, sizes.clips, length, h, w, int(round(world.fps)))
    probes_dir = random_probes(tmp / "probes", real_a.frames, h, w) if tmp else Path(args.probes)
    probes = load_probes(probes_dir, args.device)
    options = EvalOptions(frame_step=2, clip_hop=sizes.clip_hop, window_seconds=1e6, device=args.device)
    result: dict = {"model": str(model), "probes": str(probes_dir), "dataset": args.dataset, "sizes": sizes,
                    "engine": base, "keyframe_stride": stride, "output_fps": engine.output_fps, "seconds": {}}
    parts = {
        "clips": lambda: measure_clips(engine, probes, real_a, real_b, sizes, options, args.seed, out),
        "actions": lambda: measure_actions(engine, probes, real_a, real_b, sizes, args.seed + 1, out),
        "long": lambda: measure_long(world, replace(base, interpolate=args.long_interpolate), probes, sizes,
                                     args.device, args.seed + 2, out),
        "interpolation": lambda: measure_interpolation(world, real_b, sizes, args.seed + 3),
    }
    for name, fn in parts.items():
        if name in args.skip:
            continue
        start = time.perf_counter()
        result[name] = fn()
        result["seconds"][name] = round(time.perf_counter() - start, 1)
        write_json(out / "quality.json", result)
    if tmp is not None:
        shutil.rmtree(tmp)
    print(json.dumps(to_plain(result), indent=2))


if __name__ == "__main__":
    main()
