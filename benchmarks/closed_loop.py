"""Closed-loop driving in the world model: can a lane keeper on the pose heads keep it on the road,
and change lane when told? (issues 6 and 9: steering, and long rollouts that a driver steers).

From each of `--starts` held-out world states (an episode warmed up by the behaviour policy), a
lane keeper (`drivesim.rollout.lane_keeper`) drives for `--seconds`, acting once per control step
on the pose heads' reading (lateral offset; the heading from an observer of it, from its rate with
`--heading-from offset_rate`, or read with `--heading-from read`) and the rewarded ego speed, and is told to
change lane every `--change-every` seconds (towards the middle lane, alternating from it):

  * "world": the procedural world itself, the heads reading its rendered frames and the keeper
    acting every `--world-control` frames: the reference (true offsets are known there);
  * each `--model`, mode "keeper": the engine's own pose reading closes the loop;
  * each `--model`, mode "straight" (with `--straight`): steer 0, the same speed law, open loop.

With `--composed` the models start from a first frame composed from the start's labels on a layout
from the layout prior (as the envs reset), not from the world's frame.

A model that ignores the steer cannot be kept on the road this way, one that follows it can.
The pose heads of a model folder without them come from `--pose-from` (default: the bundled
model). Printed as JSON per source: the fraction of control steps on the road by the heads
(p(off_road) < 0.5 and |offset| <= `--road-half` lane widths), the mean |offset - target lane
centre| (lane widths), the fraction of lane changes whose target lane was reached (the read
offset within 0.3 lane widths of its centre) before the next command, and per 30-s window the
on-road fraction; drawn: closed_loop.png (offset read over time against the target lane) and
closed_loop_storyboard.png (a frame every `--board-every` s).

With `--accel-holds`, the accel of every source follows random holds (`_accel_holds.AccelHolds`, seeded per
start) instead of the keeper's speed law, the keeper still steering, and the action probe reads each source's
frames: steer / accel r against what was commanded, in closed loop, so a rollout is kept on the road where
an open-loop replay of a world driver's commands drifts off it (docs/results.md, session 34).

With `--fvd`, the drift of a driven rollout: every source's frames are cut into `--window-seconds`
windows and each window's FVD-/FID-probe (the bundled probes, or `--probes`) is taken against a
reference pooled from `--reference-starts` other held-out starts driven by the same keeper in the
world. Per model: the drift ratio (window / first window; issue 6's target: none above 1.5), each
window over the world's same window (`fvd_over_real`), and the world's own windows as the floor;
drawn in closed_loop_fvd.png.

Engine settings: `--env ID` takes them from a learned env id's YAML (e.g. drivesim/DriveWorldSteer-v0:
what an agent in that env gets); `--prediction`, `--keyframe-steps`, `--context-guidance` (s of the
models' context guidance), `--context-interval` etc. override one by one; without either, EngineConfig's
(context guidance 1.5 at every step) with 4 keyframe steps. The settings that ran are printed and
written to the JSON's "settings".

  python benchmarks/closed_loop.py --model drivesim/assets/default_model --env drivesim/DriveWorldSteer-v0
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib
import numpy as np
import torch
from _engine_args import add_engine_args, engine_config, resolve_engine_args
from tqdm import tqdm

from drivesim.eval.checks import uint8_to_video
from drivesim.eval.probe_io import Probes, load_probes
from drivesim.eval.report import write_json
from drivesim.paths import default_probes_dir
from drivesim.rollout.engine import LearnedEngine
from drivesim.rollout.lane_keeper import HEADING_FROM, LaneKeeper, LaneKeeperConfig
from drivesim.rollout.types import SceneRequest
from drivesim.rollout.world_model import WorldModel, load
from drivesim.world.types import CROWDEDNESS, TIME_OF_DAY

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _accel_holds import ACCEL_SEED_BASE, AccelHolds, Recorder, accel_report  # noqa: E402
from _long_rollout import over_real, setting  # noqa: E402
from _video_eval import WindowStream, heldout_start, plot_windows, probe_stride, window_frechet  # noqa: E402

REACHED = 0.3  # lane widths from the target centre that count as in the target lane


def change_direction(target: np.ndarray, num_lanes: int, count: int) -> np.ndarray:
    """(b,) lane changes towards the middle; from the middle lane, left and right by turns."""
    middle = (num_lanes - 1) / 2
    away = np.where(count % 2 == 0, -1, 1)
    return np.where(target < middle, 1, np.where(target > middle, -1, away))


class Trace:
    """Per control step of b rollouts: the offset read (lane widths), p(off_road), the target lane's
    centre, the true offset (the world only), and the step's last frame every `board_every` seconds."""

    def __init__(self) -> None:
        self.offset, self.off_road, self.target, self.true_offset, self.board = [], [], [], [], []

    def add(self, offset, off_road, target, frame, board: bool, true_offset=None) -> None:
        self.offset.append(np.asarray(offset, np.float32))
        self.off_road.append(np.asarray(off_road, np.float32))
        self.target.append(np.asarray(target, np.float32))
        if true_offset is not None:
            self.true_offset.append(np.asarray(true_offset, np.float32))
        if board:
            self.board.append(frame)

    def arrays(self) -> dict[str, np.ndarray]:
        out = {k: np.stack(getattr(self, k), axis=1) for k in ("offset", "off_road", "target")}  # b n
        if self.true_offset:
            out["true_offset"] = np.stack(self.true_offset, axis=1)
        return out


def keeper_config(args: argparse.Namespace) -> LaneKeeperConfig:
    return LaneKeeperConfig(heading_from=args.heading_from)


def keeper_step(keeper: LaneKeeper, k: int, step_s: float, args: argparse.Namespace, changes: list[int]) -> None:
    """Tell the keeper to change lane at every `--change-every` seconds (not at the start)."""
    every = max(1, int(round(args.change_every / step_s)))
    if k > 0 and k % every == 0:
        keeper.change_lane(change_direction(keeper.target_lane, keeper.config.num_lanes, np.array(changes)))
        changes[0] += 1


def run_world(
    starts, heads: WorldModel, args: argparse.Namespace, sinks=None, recorder: Recorder | None = None
) -> dict[str, np.ndarray]:
    """The procedural world under the keeper on the heads' reading of its frames; with `sinks` (one
    WindowStream per start) every frame also goes to the start's sink; with a `recorder` (`--accel-holds`)
    the accel follows the start's `AccelHolds` and every frame is recorded with its action."""
    pose_heads, stride = heads.pose_heads()
    control, fps = args.world_control, int(heads.fps)
    n_steps = int(round(args.seconds * fps / control))
    board = max(1, int(round(args.board_every * fps / control)))
    per_start = []
    for i, (world, frame, _, _) in enumerate(starts):
        keeper, changes, one = LaneKeeper(keeper_config(args)), [0], Trace()
        holds = AccelHolds([ACCEL_SEED_BASE + args.seed + i]) if recorder is not None else None
        sink = None if sinks is None else sinks[i]
        history = [frame.image] * (stride + 1)  # the last stride + 1 frames, newest last
        for k in tqdm(range(n_steps), desc="world", leave=False):
            pair = uint8_to_video(np.stack([history[0], history[-1]]))  # 1 2 3 h w
            z = heads.autoencoder.encode_video(pair)  # 1 2 c h w (scaled)
            read = pose_heads(z)
            offset, heading = read.lateral_offset.numpy(), read.heading.numpy()  # (1,)
            p_off = heads.reward(z).off_road.numpy() if heads.reward is not None else np.zeros(1)
            speed = np.array([frame.ego.speed])
            if k == 0:
                keeper.start(offset)  # targets the nearest lane
            keeper_step(keeper, k, control / fps, args, changes)
            action = keeper.act(offset, heading, speed, control / fps)[0]
            if holds is not None:
                action[1] = holds.act(speed, control / fps)[0]
            centre = keeper.lane_centre(keeper.target_lane)
            one.add(offset, p_off, centre, frame.image[None], k % board == 0, [frame.ego.lateral_offset])
            for _ in range(control):
                frame = world.step(action)
                if sink is not None:
                    sink.push(frame.image[None])
                if recorder is not None:
                    recorder.add(f"world {i}", frame.image[None, None], action[None])
                history = (history + [frame.image])[-(stride + 1) :]
        arrays = one.arrays()
        arrays["board"] = np.stack(one.board, axis=1)  # 1 n h w 3
        per_start.append(arrays)
    return {k: np.concatenate([a[k] for a in per_start], axis=0) for k in per_start[0]}


def run_model(
    world: WorldModel, starts, args: argparse.Namespace, mode: str, sinks=None, recorder: Recorder | None = None,
    source: str = "",
) -> tuple[dict[str, np.ndarray], float]:
    """b rollouts of the model from the start frames, closed loop ("keeper") or straight, and the
    control step (s); with `sinks` (one WindowStream per start) every output frame also goes to the
    start's sink; with a `recorder` the accel follows each start's `AccelHolds` and the frames are recorded
    as `source`."""
    engine = LearnedEngine(world, engine_config(args, compile=args.compile))
    if not engine.reader.reads_pose:
        raise SystemExit(f"{world.path}: no pose heads (give --pose-from)")
    step_s = engine.keyframe_stride / world.fps
    n_steps = int(round(args.seconds / step_s))
    board = max(1, int(round(args.board_every / step_s)))
    requests = [
        SceneRequest(TIME_OF_DAY.index(tod), CROWDEDNESS.index(crowd), args.seed + i,
                     initial_frames=None if args.composed else frame.image[None], speed=float(frame.ego.speed))
        for i, (_, frame, tod, crowd) in enumerate(starts)
    ]
    out = engine.start(requests)
    keeper, changes, trace = LaneKeeper(keeper_config(args)), [0], Trace()
    holds = AccelHolds([ACCEL_SEED_BASE + args.seed + i for i in range(len(starts))]) if recorder else None
    keeper.start(out.pose[:, 0])  # targets the nearest lane
    for k in tqdm(range(n_steps), desc=f"{world.path.name} {mode}", leave=False):
        keeper_step(keeper, k, step_s, args, changes)
        action = keeper.act(out.pose[:, 0], out.pose[:, 1], out.speed, step_s)
        if mode == "straight":
            action[:, 0] = 0.0
        if holds is not None:
            action[:, 1] = holds.act(np.asarray(out.speed), step_s)
        trace.add(out.pose[:, 0], out.off_road, keeper.lane_centre(keeper.target_lane), out.frames[:, -1],
                  k % board == 0)
        out = engine.step(out.state, action)
        if recorder is not None:
            recorder.add(source, out.frames, action)
        for sink, frames in zip(sinks or [], out.frames):
            sink.push(frames)
    arrays = trace.arrays()
    arrays["board"] = np.stack(trace.board, axis=1)  # b n h w 3
    return arrays, step_s


def summarise(a: dict[str, np.ndarray], step_s: float, args: argparse.Namespace) -> dict:
    offset, target = a["offset"], a["target"]
    on_road = (a["off_road"] < 0.5) & (np.abs(offset) <= args.road_half)
    per_window = max(1, int(round(30.0 / step_s)))
    windows = [float(on_road[:, s : s + per_window].mean()) for s in range(0, on_road.shape[1], per_window)]
    every = max(1, int(round(args.change_every / step_s)))
    reached, commanded = 0, 0
    for s in range(every, offset.shape[1], every):
        seg = np.abs(offset[:, s : s + every] - target[:, s : s + every]) < REACHED  # b n
        commanded += seg.shape[0]
        reached += int(seg.any(axis=1).sum())
    left = [int(np.argmax(~row)) if (~row).any() else None for row in on_road]  # first step off, per start
    out = {
        "on_road_fraction": float(on_road.mean()),
        "starts_that_left_the_road": float(np.mean([f is not None for f in left])),
        "first_off_road_s_per_start": [None if f is None else round(f * step_s, 2) for f in left],
        "on_road_fraction_per_30s_window": windows,
        "mean_abs_lane_error_lanes": float(np.abs(offset - target).mean()),
        "lane_changes_reached": reached / max(commanded, 1),
        "lane_changes_commanded": commanded,
        "control_step_s": step_s,
    }
    if "true_offset" in a:
        true = a["true_offset"]
        out["true_on_road_fraction"] = float((np.abs(true) <= args.road_half).mean())
        out["true_mean_abs_lane_error_lanes"] = float(np.abs(true - target).mean())
        out["heads_mae_vs_true_lanes"] = float(np.abs(offset - true).mean())
    return out


def plot(results: dict[str, dict[str, np.ndarray]], steps: dict[str, float], path: Path) -> None:
    fig, axes = plt.subplots(len(results), 1, figsize=(10, 2.2 * len(results)), sharex=True, squeeze=False)
    for ax, (name, a) in zip(axes[:, 0], results.items()):
        t = np.arange(a["offset"].shape[1]) * steps[name]
        for i in range(a["offset"].shape[0]):
            line = ax.plot(t, a["offset"][i], lw=1, label=f"start {i}: read")[0]
            ax.plot(t, a["target"][i], ":", color=line.get_color(), lw=1)
            if "true_offset" in a:
                ax.plot(t, a["true_offset"][i], "--", color=line.get_color(), lw=0.8, alpha=0.6)
        ax.axhspan(-1.5, 1.5, color="0.92", zorder=0)
        ax.set_ylim(-3.2, 3.2)
        ax.set_ylabel("offset (lanes)")
        ax.set_title(name, fontsize=9)
    axes[-1, 0].set_xlabel("s (dotted: target lane centre; dashed: true offset; grey: the road)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def storyboard(results: dict[str, dict[str, np.ndarray]], path: Path, every_s: float) -> None:
    rows = [(f"{name} #{i}", a["board"][i]) for name, a in results.items() for i in range(a["board"].shape[0])]
    cols = min(len(r[1]) for r in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(1.6 * cols, 1.0 * len(rows)), squeeze=False)
    for r, (name, frames) in enumerate(rows):
        for c in range(cols):
            ax = axes[r, c]
            ax.imshow(frames[c])
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"{c * every_s:g} s", fontsize=7)
        axes[r, 0].set_ylabel(name, fontsize=5, rotation=0, ha="right", va="center")
    fig.tight_layout(pad=0.2)
    fig.savefig(path, dpi=110)
    plt.close(fig)


class Drift:
    """`--fvd`: one WindowStream per start and source, the reference from the world's extra starts,
    and the per-window FVD-/FID-probe report."""

    def __init__(self, probes: Probes, fps: float, args: argparse.Namespace) -> None:
        self.probes, self.args = probes, args
        self.window = max(2, int(round(args.window_seconds * fps)))
        self.gap = probe_stride(probes, fps)
        self.streams: dict[str, list[WindowStream]] = {}

    def sinks(self, name: str, count: int) -> list[WindowStream]:
        hop = self.args.fvd_hop
        self.streams[name] = [WindowStream(self.probes, self.window, self.gap, hop, 4, "cpu") for _ in range(count)]
        return self.streams[name]

    def report(self, out: Path) -> dict:
        reference = self.streams.pop("reference")
        ref_clip = np.concatenate([w.clip for s in reference for w in s.windows])
        ref_frame = np.concatenate([w.frame for s in reference for w in s.windows])

        def measured(name: str, s: float | None):
            windows = [st.windows for st in self.streams[name]]
            return setting(s, window_frechet(windows, ref_clip, "clip"), window_frechet(windows, ref_frame, "frame"), 0)

        floor = measured("world", None)
        models = {k: over_real(measured(k, self.args.context_guidance), floor) for k in self.streams if k != "world"}
        series = {metric: {k: getattr(v, key) for k, v in models.items()} | {"world (floor)": getattr(floor, key)}
                  for metric, key in (("FVD-probe", "fvd_probe"), ("FID-probe", "fid_probe"))}  # fmt: skip
        plot_windows(series, self.args.window_seconds, out / "closed_loop_fvd.png")
        keep = ("fvd_probe", "fid_probe", "fvd_drift_ratio", "max_fvd_drift_ratio", "passes", "fvd_over_real",
                "max_fvd_over_real")  # fmt: skip
        return {
            "window_seconds": self.args.window_seconds,
            "reference_windows": int(len(ref_clip)),
            "world_floor": {k: getattr(floor, k) for k in keep[:4]},
            "models": {k: {f: getattr(v, f) for f in keep} for k, v in models.items()},
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", default=[], help="world model folder (repeatable)")
    parser.add_argument("--pose-from", default=None, help="folder whose pose heads a model without them uses")
    parser.add_argument("--straight", action="store_true", help="also run each model open loop with steer 0")
    parser.add_argument("--heading-from", default=LaneKeeperConfig.heading_from, choices=list(HEADING_FROM),
                        help="the keeper's heading: from the offset's rate or the heads' reading")
    parser.add_argument("--starts", type=int, default=2)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--change-every", type=float, default=10.0)
    parser.add_argument("--world-control", type=int, default=4, help="frames per control step in the world")
    parser.add_argument("--road-half", type=float, default=1.5, help="lane widths from the centre to the edge")
    parser.add_argument("--board-every", type=float, default=5.0)
    add_engine_args(parser)
    parser.add_argument("--compile", action="store_true",
                        help="EngineConfig.compile: torch.compile the per-step networks (minutes at the first steps)")
    parser.add_argument("--composed", action="store_true",
                        help="models start from a first frame composed from the start's labels (the envs' reset) "
                             "instead of the world's frame")
    parser.add_argument("--fvd", action="store_true", help="also FVD-/FID-probe per window against the world")
    parser.add_argument("--probes", default=str(default_probes_dir()), help="probes folder of --fvd")
    parser.add_argument("--reference-starts", type=int, default=2, help="world starts pooled as --fvd's reference")
    parser.add_argument("--window-seconds", type=float, default=30.0)
    parser.add_argument("--fvd-hop", type=int, default=4, help="frames between clip-probe windows")
    parser.add_argument("--accel-holds", action="store_true",
                        help="accel from random holds instead of the keeper's speed law; steer / accel adherence "
                        "of every source read by the action probe (benchmarks/_accel_holds.py)")
    parser.add_argument("--hop", type=int, default=4, help="frames between action-probe windows (--accel-holds)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/closed_loop")
    args = parser.parse_args(argv)
    print(f"engine: {resolve_engine_args(args)}", file=sys.stderr)  # what ran, whatever the flags were
    if args.starts < 1 or args.seconds <= 0 or args.change_every <= 0 or args.world_control < 1:
        parser.error("need --starts >= 1, --seconds > 0, --change-every > 0, --world-control >= 1")
    if args.fvd and (args.reference_starts < 1 or args.fvd_hop < 1 or not 0 < args.window_seconds <= args.seconds):
        parser.error("--fvd needs --reference-starts >= 1, --fvd-hop >= 1 and 0 < --window-seconds <= --seconds")
    torch.set_num_threads(args.threads)
    reference = load(args.pose_from)
    if reference.pose_heads() is None:
        parser.error(f"--pose-from {reference.path}: no pose heads")
    h, w = reference.metadata.get("autoencoder", {}).get("image_size", [64, 128])
    starts = [heldout_start(i, int(h), int(w), int(reference.fps), args.warmup) for i in range(args.starts)]
    drift = Drift(load_probes(Path(args.probes), "cpu"), reference.fps, args) if args.fvd else None
    recorder = Recorder() if args.accel_holds else None
    with torch.no_grad():
        results = {"world": run_world(starts, reference, args, drift and drift.sinks("world", args.starts), recorder)}
        steps = {"world": args.world_control / reference.fps}
        for m in args.model:
            world = load(m)
            if world.pose_heads() is None:
                world.pose, world.pose_stride = reference.pose_heads()
            for mode in ["keeper"] + (["straight"] if args.straight else []):
                name = f"{m} ({mode})"
                sinks = drift and drift.sinks(name, args.starts)
                results[name], steps[name] = run_model(world, starts, args, mode, sinks, recorder, name)
        if drift is not None:
            extra = [heldout_start(args.starts + i, int(h), int(w), int(reference.fps), args.warmup)
                     for i in range(args.reference_starts)]  # fmt: skip
            run_world(extra, reference, args, drift.sinks("reference", len(extra)))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot(results, steps, out / "closed_loop.png")
    storyboard(results, out / "closed_loop_storyboard.png", args.board_every)
    report = {
        "sources": {name: summarise(a, steps[name], args) for name, a in results.items()},
        "drift": None if drift is None else drift.report(out),
        "accel_holds": None if recorder is None else accel_report(recorder, list(results), args.starts,
                                                                   args.probes, args.hop),
        "pose_heads": str(reference.path),
        "settings": vars(args),
    }
    write_json(out / "closed_loop.json", report)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
