"""Exact low/high-res training pairs for the upsampler, rendered by the procedural world.

The world state is rendered twice per kept step, at the base size (h, w) and at
(scale h, scale w) (`World.render`), so a pair differs only in resolution, never in content.
The low-res frame is the one the video models produce (aliased point sampling), not a
filtered downsampling of the high-res frame. The BehaviourPolicy drives; episode i gets the
i-th (time of day, crowdedness) combination and seed `first_seed + i`.

Patches: a random hi-res crop (P x P, P a multiple of the scale, at a position on the
low-res grid) with the matching crop of the bilinearly upsampled low-res frame, taken so
that it equals the same crop of the upsampled *whole* frame (low-res crop with a replicate-
padded margin, upsampled, then trimmed): patch-trained models see the same condition as
whole-frame application.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from einops import pack, rearrange, unpack
from tqdm import tqdm

from drivesim.diffusion.upsampler import upsample_bilinear
from drivesim.world.config import WorldConfig
from drivesim.world.policy import BehaviourPolicy
from drivesim.world.types import CROWDEDNESS, TIME_OF_DAY
from drivesim.world.world import World

MARGIN = 2  # low-res pixels around a crop; bilinear x s needs 1


@dataclass
class WorldPairsConfig:
    """height, width: low-res size; per episode `frames_per_episode` frames `frame_stride`
    world steps apart after `warmup_steps` steps (the hi-res size comes with the scale)."""

    height: int = 64
    width: int = 128
    num_episodes: int = 48
    frames_per_episode: int = 8
    frame_stride: int = 6
    warmup_steps: int = 10

    def __post_init__(self) -> None:
        for name in ("height", "width", "num_episodes", "frames_per_episode", "frame_stride"):
            if getattr(self, name) < 1:
                raise ValueError(f"WorldPairsConfig.{name}={getattr(self, name)} must be >= 1")
        if self.warmup_steps < 0:
            raise ValueError(f"WorldPairsConfig.warmup_steps={self.warmup_steps} must be >= 0")


@dataclass(frozen=True)
class WorldPairs:
    """low (n, t, 3, h, w) and high (n, t, 3, s h, s w) uint8 frames of n episodes."""

    low: torch.Tensor
    high: torch.Tensor

    @property
    def scale(self) -> int:
        return self.high.shape[-1] // self.low.shape[-1]

    def video(self, episodes: slice | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(low, high) as float `b t c h w` in [-1, 1]."""
        sel = episodes or slice(None)
        return to_float(self.low[sel]), to_float(self.high[sel])


def to_float(frames: torch.Tensor) -> torch.Tensor:
    return frames.float() / 127.5 - 1.0


def episode_conditions(index: int) -> tuple[str, str]:
    combos = [(tod, crowd) for tod in TIME_OF_DAY for crowd in CROWDEDNESS]
    return combos[index % len(combos)]


def render_pairs(cfg: WorldPairsConfig, scale: int, first_seed: int, progress: bool = True) -> WorldPairs:
    """Render `cfg.num_episodes` episodes of low/high-res (x`scale`) frame pairs."""
    if scale < 1:
        raise ValueError(f"scale={scale} must be >= 1")
    lows, highs = [], []
    for i in tqdm(range(cfg.num_episodes), desc="render pairs", disable=not progress, leave=False):
        time_of_day, crowdedness = episode_conditions(i)
        seed = first_seed + i
        world = World(WorldConfig(height=cfg.height, width=cfg.width))
        world.reset(seed=seed, time_of_day=time_of_day, crowdedness=crowdedness)
        policy = BehaviourPolicy(seed=seed)
        for _ in range(cfg.warmup_steps):
            world.advance(policy.act(world))
        low, high = [], []
        for f in range(cfg.frames_per_episode):
            if f:
                for _ in range(cfg.frame_stride):
                    world.advance(policy.act(world))
            low.append(world.render().image)
            high.append(world.render(height=scale * cfg.height, width=scale * cfg.width).image)
        lows.append(np.stack(low))
        highs.append(np.stack(high))
    low_t = rearrange(torch.from_numpy(np.stack(lows)), "n t h w c -> n t c h w").contiguous()
    high_t = rearrange(torch.from_numpy(np.stack(highs)), "n t h w c -> n t c h w").contiguous()
    return WorldPairs(low=low_t, high=high_t)


@dataclass(frozen=True)
class PatchBatch:
    """up: upsampled low-res crops, high: the matching hi-res crops; (b, t, 3, P, P) in [-1, 1]."""

    up: torch.Tensor
    high: torch.Tensor


def crop_upsampled(low: torch.Tensor, top: int, left: int, size: int, scale: int) -> torch.Tensor:
    """The (size x size) crop at hi-res (top, left) of up(low), computed from a margin crop.

    low: (..., 3, h, w) float; top, left multiples of `scale`; returns (..., 3, size, size).
    """
    if top % scale or left % scale or size % scale:
        raise ValueError(f"crop top={top}, left={left}, size={size} must be multiples of scale={scale}")
    flat, packed = pack([low], "* c h w")  # (n, 3, h, w)
    padded = F.pad(flat, (MARGIN, MARGIN, MARGIN, MARGIN), mode="replicate")  # (n, 3, h+2m, w+2m)
    ly, lx, n = top // scale, left // scale, size // scale
    crop = padded[..., ly : ly + n + 2 * MARGIN, lx : lx + n + 2 * MARGIN]  # (n, 3, n+2m, n+2m)
    up = upsample_bilinear(crop, scale)[..., MARGIN * scale : -MARGIN * scale, MARGIN * scale : -MARGIN * scale]
    return unpack(up, packed, "* c h w")[0]  # (..., 3, size, size)


def sample_patches(
    pairs: WorldPairs,
    batch_size: int,
    num_frames: int,
    patch_size: int,
    generator: torch.Generator,
    hflip: bool = True,
) -> PatchBatch:
    """Random windows of `num_frames` consecutive kept frames, one random crop per window."""
    n, t, _, height, width = pairs.high.shape
    s = pairs.scale
    if patch_size % s or patch_size > min(height, width):
        raise ValueError(
            f"patch_size={patch_size} must be a multiple of the scale {s} and at most the frame size {height}x{width}"
        )
    if not 1 <= num_frames <= t:
        raise ValueError(f"num_frames={num_frames} must be in 1..{t} (frames per episode)")
    ups, highs = [], []
    for _ in range(batch_size):
        e = int(torch.randint(0, n, (1,), generator=generator))
        f = int(torch.randint(0, t - num_frames + 1, (1,), generator=generator))
        top = s * int(torch.randint(0, (height - patch_size) // s + 1, (1,), generator=generator))
        left = s * int(torch.randint(0, (width - patch_size) // s + 1, (1,), generator=generator))
        low = to_float(pairs.low[e, f : f + num_frames])  # (t, 3, h, w)
        up = crop_upsampled(low, top, left, patch_size, s)  # (t, 3, P, P)
        high = to_float(pairs.high[e, f : f + num_frames, :, top : top + patch_size, left : left + patch_size])
        if hflip and bool(torch.rand(1, generator=generator) < 0.5):
            up, high = up.flip(-1), high.flip(-1)
        ups.append(up)
        highs.append(high)
    return PatchBatch(up=torch.stack(ups), high=torch.stack(highs))  # (b, t, 3, P, P)
