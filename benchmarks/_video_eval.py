"""Helpers of benchmarks/video_ldm_quality.py: real clips (world or dataset split), random probes, engine
rollouts, per-window probe features of long streams, the interpolation comparison and the figures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from einops import rearrange
from tqdm import tqdm

from drivesim.eval.checks import uint8_to_video
from drivesim.eval.clip_probe import ClipProbe, ClipProbeConfig
from drivesim.eval.features import clip_features, clip_windows, frame_features
from drivesim.eval.frame_probe import FrameProbe, FrameProbeConfig
from drivesim.eval.frechet import frechet_from_features
from drivesim.eval.probe_data import HELDOUT_SEED_BASE, EpisodeConfig, episode_conditions, render_episodes
from drivesim.eval.probe_io import Probes, save_probes
from drivesim.eval.report import plot_frame_grid
from drivesim.rollout.engine import LearnedEngine
from drivesim.rollout.types import SceneRequest
from drivesim.world import BehaviourPolicy, World, WorldConfig
from drivesim.world.pattern_driver import PatternDriver
from drivesim.world.types import CROWDEDNESS, TIME_OF_DAY, WorldFrame


@dataclass(frozen=True)
class RealClips:
    """n real clips: frames (n, t, h, w, 3) uint8, actions (n, t, 2) [steer, accel] (actions[:, i] led to
    frame i), labels per clip (None: not in the probes' vocabulary), speed (n, t) float32 the ego
    speed (m/s) of every frame (NaN: unknown); rollouts from frame 0 start with `start_speed`."""

    ids: list[str]
    frames: np.ndarray
    actions: np.ndarray
    time_of_day: list[str | None]
    crowdedness: list[str | None]
    speed: np.ndarray

    @property
    def start_speed(self) -> np.ndarray:
        """(n,) the ego speed at frame 0."""
        return self.speed[:, 0]

    def take(self, index: list[int]) -> RealClips:
        return RealClips(
            [self.ids[i] for i in index],
            self.frames[index],
            self.actions[index],
            [self.time_of_day[i] for i in index],
            [self.crowdedness[i] for i in index],
            self.speed[index],
        )


def render_real(seed_base: int, count: int, num_frames: int, height: int, width: int, fps: int) -> RealClips:
    """Held-out world episodes seed_base + i (labels cycle over the 6 pairs), BehaviourPolicy + OU noise."""
    eps = render_episodes(EpisodeConfig(height=height, width=width, fps=fps, num_frames=num_frames), seed_base, count)
    return RealClips(
        [f"w{int(s)}" for s in eps.seeds],
        eps.frames,
        eps.actions,
        [TIME_OF_DAY[int(i)] for i in eps.time_of_day],
        [CROWDEDNESS[int(i)] for i in eps.crowdedness],
        eps.speed.astype(np.float32),
    )


def load_split(root: str | Path, split: str, num_frames: int, height: int, width: int) -> RealClips:
    """Clips of one split of a dataset folder with at least `num_frames` frames (first frames kept),
    resized to (height, width); clips without actions get zeros."""
    from drivesim.data.dataset import open_dataset

    ds = open_dataset(root)
    records = [r for r in ds.split(split) if r.num_frames >= num_frames]
    if len(records) < 2:
        raise ValueError(
            f"--dataset {root}: split {split!r} has {len(records)} clips of >= {num_frames} frames; need >= 2"
        )
    ids, frames, actions, tods, crowds, speeds = [], [], [], [], [], []
    for r in tqdm(records, desc=f"read {split}", leave=False):
        with ds.open_video(r) as reader:
            clip = [f for _, f in zip(range(num_frames), reader.frames())]
        clip = [cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in clip]
        ann = ds.load_annotations(r)
        has = ann is not None and ann.actions is not None
        ids.append(r.id)
        frames.append(np.stack(clip))  # (t, h, w, 3)
        actions.append(ann.actions[:num_frames].astype(np.float32) if has else np.zeros((num_frames, 2), np.float32))
        known = ann is not None and ann.ego is not None
        speeds.append(ann.ego[:num_frames, 0].astype(np.float32) if known else np.full(num_frames, np.nan, np.float32))
        tods.append(r.time_of_day if r.time_of_day in TIME_OF_DAY else None)
        crowds.append(r.crowdedness if r.crowdedness in CROWDEDNESS else None)
    return RealClips(ids, np.stack(frames), np.stack(actions), tods, crowds, np.stack(speeds))


def random_probes(folder: Path, calibration: np.ndarray, height: int, width: int) -> Path:
    """Tiny untrained probes (as tests/eval/conftest.py) whose batch-norm statistics are calibrated on
    `calibration` clips (n, t, h, w, 3), saved as a probes folder."""
    torch.manual_seed(0)
    frame = FrameProbe(FrameProbeConfig(height=height, width=width, widths=[8, 8, 16, 16], head_width=8))
    clip = ClipProbe(ClipProbeConfig(height=height, width=width, num_frames=4, frame_stride=3, widths=[8, 8, 16, 16]))
    video = uint8_to_video(calibration)  # (n, t, c, h, w)
    for module in (frame, clip):
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = None  # cumulative average over the calibration pass
        module.train()
    with torch.no_grad():
        frame(rearrange(video, "b t c h w -> (b t) c h w"))
        clip(clip_windows(video, 4, 3, 4))
    return save_probes(folder, Probes(frame=frame, clip=clip).eval())


def probe_stride(probes: Probes, fps: float) -> int:
    """Source frames between clip-probe frames at `fps` (the probe's own spacing, at least 1)."""
    cfg = probes.clip.config
    return max(1, int(round(cfg.frame_stride * fps / cfg.fps)))


def interval_means(actions: np.ndarray, start: int, stride: int, steps: int) -> np.ndarray:
    """Mean of actions (b, t, 2) over each keyframe interval (start + k stride, start + (k+1) stride]."""
    means = [actions[:, start + k * stride + 1 : start + (k + 1) * stride + 1].mean(1) for k in range(steps)]
    return np.stack(means, axis=1)  # (b, steps, 2)


def held_actions(step_actions: np.ndarray, first: np.ndarray, frames_per_step: int) -> np.ndarray:
    """Per-frame commanded actions (b, 1 + steps * f, 2): `first` (b, 2) for the start frame, then
    each step's action held over its frames."""
    held = np.repeat(step_actions, frames_per_step, axis=1)  # (b, steps * f, 2)
    return np.concatenate([first[:, None], held], axis=1).astype(np.float32)


def _label(allowed: tuple[str, ...], value: str | None) -> int:
    return -1 if value is None else allowed.index(value)


def heldout_start(
    i: int, h: int, w: int, fps: int, warmup_s: float, seed_base: int = HELDOUT_SEED_BASE
) -> tuple[World, WorldFrame, str, str]:
    """Held-out world episode seed_base + i warmed up by the behaviour policy for warmup_s seconds: the
    world, its frame (image and true ego state), time of day and crowdedness."""
    seed = seed_base + i
    tod, crowd = episode_conditions(i)
    world = World(WorldConfig(height=h, width=w, fps=fps))
    frame = world.reset(seed=seed, time_of_day=tod, crowdedness=crowd)
    policy = BehaviourPolicy(seed=seed)
    for _ in range(int(round(warmup_s * fps))):
        frame = world.step(np.asarray(policy.act(world), np.float32))
    return world, frame, tod, crowd


def world_clips(
    seed_base: int,
    count: int,
    seconds: float,
    size: tuple[int, int],
    fps: int,
    actor: Callable[[int], Callable[[World, int], np.ndarray]],
    warmup_s: float = 2.0,
) -> tuple[RealClips, float]:
    """World episodes seed_base + i (labels cycling over the 6 pairs), warmed up by the behaviour policy
    for `warmup_s`, then driven for `seconds` by actor(i)(world, k) -> action of step k: frame 0 is the
    start, actions[:, i] the ones the world applied to reach frame i (zeros at 0), speed the true ego
    speed; and the fraction of the driven frames that were off the road."""
    frames, actions, speeds, tods, crowds, off = [], [], [], [], [], []
    for i in range(count):
        world, frame, tod, crowd = heldout_start(i, size[0], size[1], fps, warmup_s, seed_base)
        act = actor(i)
        shots, acts, speed = [frame.image], [np.zeros(2, np.float32)], [frame.ego.speed]
        for k in range(round(seconds * fps)):
            frame = world.step(act(world, k))
            shots.append(frame.image)
            acts.append(frame.action)
            speed.append(frame.ego.speed)
            off.append(frame.events.off_road)
        frames.append(np.stack(shots))
        actions.append(np.stack(acts))
        speeds.append(np.asarray(speed, np.float32))
        tods.append(tod)
        crowds.append(crowd)
    ids = [f"d{seed_base + i}" for i in range(count)]
    clips = RealClips(ids, np.stack(frames), np.stack(actions).astype(np.float32), tods, crowds, np.stack(speeds))
    return clips, float(np.mean(off)) if off else 0.0


def pattern_actor(seed: int) -> Callable[[World, int], np.ndarray]:
    """A fresh `PatternDriver` (weaving in its lane, random accel holds the world can follow) as an actor."""
    driver = PatternDriver(seed)
    return lambda world, _k: driver.act(world)


def driven_clips(
    seed_base: int, count: int, seconds: float, size: tuple[int, int], fps: int, driver_seed: int,
    warmup_s: float = 2.0,
) -> RealClips:
    """`world_clips` driven by PatternDrivers seeded driver_seed + i."""
    return world_clips(seed_base, count, seconds, size, fps, lambda i: pattern_actor(driver_seed + i), warmup_s)[0]


def rollout(
    engine: LearnedEngine,
    starts: np.ndarray,
    tods: list[str | None],
    crowds: list[str | None],
    actions: np.ndarray,
    seed: int,
    desc: str,
    speeds: np.ndarray | None = None,
) -> Iterator[np.ndarray]:
    """Frames (b, n, h, w, 3) of b rollouts from one real frame each (starts (b, h, w, 3)): the start
    output, then one chunk per step of actions (b, steps, 2). speeds (b,) m/s at the start frames
    (NaN or None: the engine estimates them)."""
    known = [None if speeds is None or not np.isfinite(speeds[i]) else float(speeds[i]) for i in range(len(starts))]
    requests = [
        SceneRequest(_label(TIME_OF_DAY, t), _label(CROWDEDNESS, c), seed + i, initial_frames=starts[i][None],
                     speed=known[i])
        for i, (t, c) in enumerate(zip(tods, crowds))
    ]  # fmt: skip
    out = engine.start(requests)
    yield out.frames
    state = out.state
    for k in tqdm(range(actions.shape[1]), desc=desc, leave=False):
        out = engine.step(state, np.ascontiguousarray(actions[:, k], np.float32))
        state = out.state
        yield out.frames


def generate(
    engine: LearnedEngine,
    real: RealClips,
    actions: np.ndarray,
    seed: int,
    batch: int,
    desc: str,
    starts: np.ndarray | None = None,
) -> np.ndarray:
    """Clips (n, 1 + steps * f, h, w, 3) from real.frames[:, 0] (or `starts`) with real's labels."""
    speeds = real.start_speed if starts is None else None  # other starts: the engine estimates
    starts = real.frames[:, 0] if starts is None else starts
    out = []
    for lo in range(0, len(starts), batch):
        hi = min(lo + batch, len(starts))
        chunks = rollout(engine, starts[lo:hi], real.time_of_day[lo:hi], real.crowdedness[lo:hi],
                         actions[lo:hi], seed + lo, f"{desc} {lo}-{hi}", None if speeds is None else speeds[lo:hi])
        out.append(np.concatenate(list(chunks), axis=1))
    return np.concatenate(out)


@dataclass(frozen=True)
class WindowFeature:
    frame: np.ndarray  # (n_frames, d) FID-probe features
    clip: np.ndarray  # (n_windows, d) FVD-probe features
    thumb: np.ndarray  # (h, w, 3) first frame of the window


@dataclass
class WindowStream:
    """Cuts one frame stream into windows of `window_frames` frames and keeps only their probe features."""

    probes: Probes
    window_frames: int
    clip_stride: int
    hop: int
    frame_step: int
    device: str
    windows: list[WindowFeature] = field(default_factory=list)
    buffer: list[np.ndarray] = field(default_factory=list)

    def push(self, frames: np.ndarray) -> None:
        """frames: (n, h, w, 3) uint8."""
        self.buffer.extend(frames)
        while len(self.buffer) >= self.window_frames:
            chunk, self.buffer = np.stack(self.buffer[: self.window_frames]), self.buffer[self.window_frames :]
            video = uint8_to_video(chunk).to(self.device)  # (1, t, c, h, w)
            self.windows.append(
                WindowFeature(
                    frame_features(self.probes.frame, video[:, :: self.frame_step]),
                    clip_features(self.probes.clip, video, self.hop, self.clip_stride),
                    chunk[0],
                )
            )


def render_stream(
    seed: int, index: int, num_frames: int, keep: int, skip: int, size: tuple[int, int], sink: WindowStream
) -> tuple[np.ndarray, np.ndarray, float]:
    """A real world episode (labels of pair `index`, BehaviourPolicy, 30 warm-up frames, 30 fps): frames
    i >= skip with i % keep == 0 go to `sink`; returns frame 0 (h, w, 3), all actions (num_frames, 2)
    and the ego speed (m/s) at frame 0."""
    tod, crowd = episode_conditions(index)
    world = World(WorldConfig(height=size[0], width=size[1], fps=30))
    frame = world.reset(seed=seed, time_of_day=tod, crowdedness=crowd)
    policy = BehaviourPolicy(seed=seed)
    for _ in range(30):
        frame = world.step(policy.act(world))
    first, first_speed, actions = frame.image, float(frame.ego.speed), [np.zeros(2, np.float32)]
    for i in tqdm(range(1, num_frames), desc=f"world {seed}", leave=False):
        frame = world.step(policy.act(world))
        actions.append(np.asarray(frame.action, np.float32))
        if i >= skip and i % keep == 0:
            sink.push(frame.image[None])
    return first, np.stack(actions), first_speed


def window_frechet(windows: list[list[WindowFeature]], reference: np.ndarray, kind: str) -> list[float | None]:
    """Per window index: Fréchet distance of the pooled features of all streams vs `reference`."""
    out: list[float | None] = []
    for w in range(min(len(s) for s in windows)):
        feats = np.concatenate([getattr(s[w], kind) for s in windows])
        out.append(frechet_from_features(feats, reference) if len(feats) >= 2 else None)
    return out


# -- figures -------------------------------------------------------------------------------------------
def storyboard(rows: dict[str, np.ndarray], path: Path, columns: int, titles: list[str] | None = None) -> Path:
    """One row per entry (frames (t, h, w, 3)), `columns` evenly spaced frames each."""
    return plot_frame_grid(list(rows.items()), path, columns, titles)


def plot_windows(series: dict[str, dict[str, list[float | None]]], window_s: float, path: Path) -> Path:
    """One panel per metric (e.g. FVD-probe, FID-probe), one line per setting, vs rollout time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(series), 1, figsize=(7, 2.6 * len(series)), squeeze=False, sharex=True)
    for ax, (metric, lines) in zip(axes[:, 0], series.items()):
        for label, values in lines.items():
            pts = [((i + 0.5) * window_s, v) for i, v in enumerate(values) if v is not None]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", lw=1, label=label)
        ax.set_ylabel(metric, fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[-1, 0].set_xlabel("rollout time (s, window centre)")
    fig.suptitle(f"long rollout: probe Fréchet distance per {window_s:g}-s window vs real reference")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path

