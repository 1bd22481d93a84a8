"""Ground-truth data for the probes, rendered in memory from the procedural world.

Seed ranges are disjoint and fixed, so probe training never sees the held-out data:
- TRAIN_SEED_BASE (1_000_000 + i): probe training episodes;
- HELDOUT_SEED_BASE (2_000_000 + i): held-out episodes for the probes' own accuracy;
- REFERENCE_SEED_BASE (3_000_000 + i): a second held-out set (real-vs-real baselines).
Episode i of a range uses seed base + i and the (time_of_day, crowdedness) combination
i mod 6, so labels are balanced. The BehaviourPolicy drives, with optional Ornstein-Uhlenbeck
noise on its actions so the clip probe sees varied steering and acceleration; the recorded
action is the one the world applied.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from drivesim.world.pattern_driver import PatternDriver, PatternDriverConfig
from drivesim.world.types import CROWDEDNESS, TIME_OF_DAY

TRAIN_SEED_BASE = 1_000_000
HELDOUT_SEED_BASE = 2_000_000
REFERENCE_SEED_BASE = 3_000_000
# pattern-driven probe episodes: holds of varied length and strength, the speed kept where the behaviour
# policy drives (its cruise targets are 17-34 m/s; it stops braking below 8)
PATTERN_DATA_DRIVER = PatternDriverConfig(accel_max=1.0, hold_s=(0.6, 2.4), speed_band=(8.0, 36.0))
CONDITIONS: tuple[tuple[str, str], ...] = tuple((t, c) for t in TIME_OF_DAY for c in CROWDEDNESS)


@dataclass
class EpisodeConfig:
    height: int = 64
    width: int = 128
    fps: int = 30
    num_frames: int = 240  # frames kept per episode
    warmup_frames: int = 30  # frames driven (not kept) after reset so traffic settles
    action_noise: float = 0.15  # std of the OU noise added to the policy's actions
    noise_timescale_s: float = 0.6  # correlation time of that noise
    # fraction of episodes driven after the warm-up by a PatternDriver (weaving in its lane, accel held
    # at random values for 0.6-2.4 s): accel that the speed and the scene do not explain, so the clip
    # probe has to read it from the motion (the behaviour policy's accel mostly follows its speed error)
    pattern_fraction: float = 0.0

    def __post_init__(self) -> None:
        if self.num_frames < 2:
            raise ValueError(f"num_frames={self.num_frames} must be >= 2")
        if self.warmup_frames < 0:
            raise ValueError(f"warmup_frames={self.warmup_frames} must be >= 0")
        if not 0.0 <= self.pattern_fraction <= 1.0:
            raise ValueError(f"pattern_fraction={self.pattern_fraction} must be in [0, 1]")
        if self.action_noise < 0 or self.noise_timescale_s <= 0:
            raise ValueError(
                f"action_noise={self.action_noise} must be >= 0 and noise_timescale_s={self.noise_timescale_s} > 0"
            )


@dataclass(frozen=True)
class Episodes:
    """e episodes of t frames.

    frames: (e, t, h, w, 3) uint8; actions: (e, t, 2) float32 [steer, accel], actions[:, i] led to
    frame i; speed: (e, t) float32 m/s; time_of_day, crowdedness: (e,) int64 label indices;
    boxes[e][t]: (n, 4) float32 normalised xyxy of frame t of episode e; seeds: (e,) int64.
    """

    frames: np.ndarray
    actions: np.ndarray
    speed: np.ndarray
    time_of_day: np.ndarray
    crowdedness: np.ndarray
    boxes: list[list[np.ndarray]]
    seeds: np.ndarray

    @property
    def num_episodes(self) -> int:
        return int(self.frames.shape[0])

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[1])


@dataclass(frozen=True)
class Episode:
    """One rollout: frames (t, h, w, 3) uint8, actions (t, 2), speed (t,), boxes[t] (n, 4)."""

    frames: np.ndarray
    actions: np.ndarray
    speed: np.ndarray
    boxes: list[np.ndarray]


def episode_conditions(index: int) -> tuple[str, str]:
    return CONDITIONS[index % len(CONDITIONS)]


def render_episode(config: EpisodeConfig, seed: int, time_of_day: str, crowdedness: str) -> Episode:
    """One rollout: reset, warm up, then keep `num_frames` frames with their ground truth."""
    from drivesim.world import BehaviourPolicy, World, WorldConfig

    world = World(WorldConfig(height=config.height, width=config.width, fps=config.fps))
    frame = world.reset(seed=seed, time_of_day=time_of_day, crowdedness=crowdedness)
    policy = BehaviourPolicy(seed=seed)
    rng = np.random.default_rng(seed)
    # its own stream, so pattern_fraction 0 renders exactly the episodes rendered before it existed
    driver = None
    if config.pattern_fraction and np.random.default_rng([seed, 1]).random() < config.pattern_fraction:
        driver = PatternDriver(seed, PATTERN_DATA_DRIVER)
    decay = float(np.exp(-1.0 / (config.noise_timescale_s * config.fps)))
    noise = np.zeros(2, np.float64)
    frames, actions, speed, boxes = [], [], [], []
    for i in range(config.warmup_frames + config.num_frames):
        if driver is not None and i > config.warmup_frames:
            frame = world.step(driver.act(world))
        elif i > 0:
            noise = decay * noise + np.sqrt(1 - decay**2) * config.action_noise * rng.standard_normal(2)
            action = np.clip(np.asarray(policy.act(world), np.float64) + noise, -1.0, 1.0).astype(np.float32)
            frame = world.step(action)
        if i >= config.warmup_frames:
            frames.append(frame.image)
            actions.append(np.asarray(frame.action, np.float32))
            speed.append(frame.ego.speed)
            boxes.append(np.clip(frame.boxes.normalized, 0.0, 1.0).astype(np.float32).reshape(-1, 4))
    return Episode(frames=np.stack(frames), actions=np.stack(actions), speed=np.array(speed, np.float32), boxes=boxes)


def render_episodes(config: EpisodeConfig, seed_base: int, num_episodes: int, desc: str = "world") -> Episodes:
    """Episodes seed_base + i, i < num_episodes, cycling over the 6 label combinations."""
    if num_episodes < 1:
        raise ValueError(f"num_episodes={num_episodes} must be >= 1")
    frames = np.zeros((num_episodes, config.num_frames, config.height, config.width, 3), np.uint8)
    actions = np.zeros((num_episodes, config.num_frames, 2), np.float32)
    speed = np.zeros((num_episodes, config.num_frames), np.float32)
    tod = np.zeros(num_episodes, np.int64)
    crowd = np.zeros(num_episodes, np.int64)
    boxes: list[list[np.ndarray]] = []
    for i in tqdm(range(num_episodes), desc=desc, leave=False):
        t_label, c_label = episode_conditions(i)
        ep = render_episode(config, seed_base + i, t_label, c_label)
        frames[i], actions[i], speed[i] = ep.frames, ep.actions, ep.speed
        boxes.append(ep.boxes)
        tod[i], crowd[i] = TIME_OF_DAY.index(t_label), CROWDEDNESS.index(c_label)
    return Episodes(
        frames=frames,
        actions=actions,
        speed=speed,
        time_of_day=tod,
        crowdedness=crowd,
        boxes=boxes,
        seeds=np.arange(seed_base, seed_base + num_episodes, dtype=np.int64),
    )
