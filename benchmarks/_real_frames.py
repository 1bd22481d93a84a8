"""Held-out world frames for the image-LDM benchmarks (`image_ldm_quality.py`): frames with their box
layouts and labels, every (time of day, crowdedness) pair equally often, and their autoencoder round trip.
Seeds 3_000_000 + i and 4_000_000 + i are disjoint from the training data (seeds < 1_000_000) and from
the probes' own training seeds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from drivesim.eval.checks import uint8_to_video
from drivesim.rollout.compose import BoxLayout, ComposeModels, decode_latents
from drivesim.world import CROWDEDNESS, TIME_OF_DAY, BehaviourPolicy, World, WorldConfig

REAL_SEED_A = 3_000_000
REAL_SEED_B = 4_000_000
LABEL_PAIRS: tuple[tuple[str, str], ...] = tuple((t, c) for t in TIME_OF_DAY for c in CROWDEDNESS)


@dataclass(frozen=True)
class RealFrames:
    """n held-out world frames: frames (n, H, W, 3) uint8 and per frame its layout and labels."""

    frames: np.ndarray
    layouts: list[BoxLayout]
    time_of_day: list[str]
    crowdedness: list[str]


def render_real_frames(seed_base: int, episodes: int, per_episode: int, height: int, width: int) -> RealFrames:
    """Episode i: seed seed_base + i, labels LABEL_PAIRS[i % 6]; after 30 warm-up steps one frame
    every 20 steps while the behaviour policy drives."""
    world = World(WorldConfig(height=height, width=width, fps=30))
    frames, layouts, tods, crowds = [], [], [], []
    for i in tqdm(range(episodes), desc=f"world {seed_base}", leave=False):
        tod, crowd = LABEL_PAIRS[i % len(LABEL_PAIRS)]
        frame = world.reset(seed=seed_base + i, time_of_day=tod, crowdedness=crowd)
        policy = BehaviourPolicy(seed=seed_base + i)
        for k in range(30 + 20 * per_episode):
            frame = world.step(policy.act(world))
            if k >= 30 and (k - 30) % 20 == 19:
                xyxy = np.clip(frame.boxes.normalized, 0.0, 1.0).reshape(-1, 4)
                keep = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
                frames.append(frame.image)
                layouts.append(BoxLayout(xyxy[keep].astype(np.float32), frame.boxes.classes[keep].astype(np.int64)))
                tods.append(tod)
                crowds.append(crowd)
    return RealFrames(np.stack(frames), layouts, tods, crowds)


def largest(layout: BoxLayout, k: int) -> BoxLayout:
    """The k largest boxes (what the model was trained with when a frame has more)."""
    area = (layout.xyxy[:, 2] - layout.xyxy[:, 0]) * (layout.xyxy[:, 3] - layout.xyxy[:, 1])
    keep = np.sort(np.argsort(-area, kind="stable")[:k])
    return BoxLayout(layout.xyxy[keep], layout.classes[keep])


def as_video(frames: np.ndarray) -> torch.Tensor:
    """(n, H, W, 3) uint8 -> (n, 1, 3, H, W) float in [-1, 1]."""
    return uint8_to_video(frames[:, None])


@torch.no_grad()
def reconstruct(models: ComposeModels, frames: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Autoencoder round trip (posterior mean) of uint8 frames, decoded like generated frames are
    (`decode_latents`: the temporal decoder when the model folder has one)."""
    ae = models.autoencoder
    out = []
    for i in range(0, len(frames), batch_size):
        x = as_video(frames[i : i + batch_size])[:, 0]  # (b, 3, H, W)
        z = ae.encode(x).mode() * models.ldm.latent.scale  # (b, C, h, w) scaled like the LDM's latents
        out.append(decode_latents(models, z))
    return np.concatenate(out)
