"""Training batches of the probes: frames and clip windows drawn from rendered episodes (clips with
per-pair targets), mild label-preserving augmentation and mirroring (`drivesim.training.probes` trains on them).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from einops import rearrange

from drivesim.eval.checks import uint8_to_video
from drivesim.eval.clip_probe import ClipProbeConfig
from drivesim.eval.degrade import add_noise, gaussian_blur
from drivesim.eval.probe_data import Episodes


@dataclass(frozen=True)
class FrameBatch:
    frames: torch.Tensor  # (b, c, h, w) in [-1, 1]
    time_of_day: torch.Tensor  # (b,)
    crowdedness: torch.Tensor  # (b,)
    count: torch.Tensor  # (b,)
    boxes: list[np.ndarray]


@dataclass(frozen=True)
class ClipBatch:
    clips: torch.Tensor  # (b, t, c, h, w) in [-1, 1]
    actions: torch.Tensor  # (b, 2) window means
    speed: torch.Tensor  # (b,) window mean
    time_of_day: torch.Tensor  # (b,)
    crowdedness: torch.Tensor  # (b,)
    pair_actions: torch.Tensor  # (b, t-1, 2) per pair of consecutive probe frames
    pair_speed: torch.Tensor  # (b, t-1)


def sample_frames(eps: Episodes, rng: np.random.Generator, batch: int) -> FrameBatch:
    e = rng.integers(0, eps.num_episodes, batch)
    t = rng.integers(0, eps.num_frames, batch)
    boxes = [eps.boxes[i][j] for i, j in zip(e, t)]
    return FrameBatch(
        frames=uint8_to_video(eps.frames[e, t])[0],  # (b, c, h, w)
        time_of_day=torch.from_numpy(eps.time_of_day[e]),
        crowdedness=torch.from_numpy(eps.crowdedness[e]),
        count=torch.tensor([len(b) for b in boxes], dtype=torch.float32),
        boxes=boxes,
    )


def pair_targets(actions: np.ndarray, speed: np.ndarray, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-pair targets of one window: actions (span, 2) and speed (span,) of its source frames ->
    (t-1, 2) mean action over each pair's `stride` transitions (those that led to source frames
    k*stride+1 .. (k+1)*stride) and (t-1,) mean speed over source frames k*stride .. (k+1)*stride-1.
    Their means over pairs are the window targets (actions exactly; speed up to the last frame)."""
    pairs = (len(speed) - 1) // stride
    pair_actions = rearrange(actions[1 : 1 + pairs * stride], "(p s) k -> p s k", s=stride).mean(1)
    pair_speed = rearrange(speed[: pairs * stride], "(p s) -> p s", s=stride).mean(1)
    return pair_actions, pair_speed


def sample_clips(eps: Episodes, rng: np.random.Generator, batch: int, cfg: ClipProbeConfig) -> ClipBatch:
    span = cfg.span
    e = rng.integers(0, eps.num_episodes, batch)
    s = rng.integers(0, eps.num_frames - span + 1, batch)
    clips = np.stack([eps.frames[i, j : j + span : cfg.frame_stride] for i, j in zip(e, s)])  # (b, t, h, w, c)
    actions = np.stack([eps.actions[i, j + 1 : j + span].mean(0) for i, j in zip(e, s)])  # (b, 2)
    speed = np.array([eps.speed[i, j : j + span].mean() for i, j in zip(e, s)], np.float32)
    window = [(eps.actions[i, j : j + span], eps.speed[i, j : j + span]) for i, j in zip(e, s)]
    pairs = [pair_targets(a, v, cfg.frame_stride) for a, v in window]
    return ClipBatch(
        clips=uint8_to_video(clips),
        actions=torch.from_numpy(actions.astype(np.float32)),
        speed=torch.from_numpy(speed),
        time_of_day=torch.from_numpy(eps.time_of_day[e]),
        crowdedness=torch.from_numpy(eps.crowdedness[e]),
        pair_actions=torch.from_numpy(np.stack([p[0] for p in pairs]).astype(np.float32)),
        pair_speed=torch.from_numpy(np.stack([p[1] for p in pairs]).astype(np.float32)),
    )


def augment_video(video: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Mild, label-preserving corruption of a `b t c h w` batch (one draw per batch)."""
    gen = torch.Generator().manual_seed(int(rng.integers(0, 2**31)))
    if rng.random() < 0.3:
        video = gaussian_blur(video, float(rng.uniform(0.3, 1.0)))
    if rng.random() < 0.4:
        video = add_noise(video, float(rng.uniform(0.0, 0.05)), gen)
    scale = torch.from_numpy(rng.uniform(0.92, 1.08, (video.shape[0], 1, 1, 1, 1)).astype(np.float32))
    return ((video + 1.0) * scale - 1.0).clamp(-1.0, 1.0)


def mirror_frames(batch: FrameBatch, flip: np.ndarray) -> FrameBatch:
    """Mirror the frames where `flip` (b,) is True; boxes follow (x -> 1 - x)."""
    frames = batch.frames.clone()
    frames[torch.from_numpy(flip)] = frames[torch.from_numpy(flip)].flip(-1)
    boxes = [np.stack([1 - b[:, 2], b[:, 1], 1 - b[:, 0], b[:, 3]], 1) if f else b for b, f in zip(batch.boxes, flip)]
    return FrameBatch(frames, batch.time_of_day, batch.crowdedness, batch.count, boxes)


def mirror_clips(batch: ClipBatch, flip: np.ndarray) -> ClipBatch:
    """Mirror the clips where `flip` (b,) is True: the mirrored world is as valid (same dynamics,
    mirrored road), with steer negated; accel and speed are unchanged."""
    mask = torch.from_numpy(flip)
    clips = batch.clips.clone()
    clips[mask] = clips[mask].flip(-1)
    actions, pair_actions = batch.actions.clone(), batch.pair_actions.clone()
    actions[mask, 0] = -actions[mask, 0]
    pair_actions[mask, :, 0] = -pair_actions[mask, :, 0]
    return dataclasses.replace(batch, clips=clips, actions=actions, pair_actions=pair_actions)
