"""Reward terms in the highway-env convention, from the reward heads' predictions.

reward = collision_reward * p(collision) + high_speed_reward * clip((v - v_min) / (v_max - v_min), 0, 1)
       + on_road_reward * (1 - p(off_road))
Each term is reported in info["rewards"]; weights come from the env YAML.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RewardConfig:
    collision_reward: float = -1.0
    high_speed_reward: float = 0.4
    on_road_reward: float = 0.1
    speed_range: tuple[float, float] = (10.0, 30.0)  # m/s mapped to [0, 1]
    terminate_threshold: float = 0.5  # predicted collision / off-road probability that ends the episode
    normalize: bool = True  # rescale the sum to [0, 1] as highway-env does


def reward_config(settings: dict | None) -> RewardConfig:
    """RewardConfig from the env YAML's `reward` mapping; unknown keys raise ValueError."""
    settings = dict(settings or {})
    allowed = set(RewardConfig.__dataclass_fields__)
    unknown = sorted(set(settings) - allowed)
    if unknown:
        raise ValueError(f"unknown reward setting(s) {unknown}; allowed: {sorted(allowed)}")
    if "speed_range" in settings:
        settings["speed_range"] = tuple(settings["speed_range"])
    return RewardConfig(**settings)


@dataclass(frozen=True)
class RewardTerms:
    """(b,) float32 each."""

    collision: np.ndarray
    high_speed: np.ndarray
    on_road: np.ndarray
    total: np.ndarray
    terminated: np.ndarray


def compute_rewards(cfg: RewardConfig, collision: np.ndarray, off_road: np.ndarray, speed: np.ndarray) -> RewardTerms:
    v_min, v_max = cfg.speed_range
    if not v_max > v_min:
        raise ValueError(f"speed_range={cfg.speed_range} needs v_min < v_max")
    scaled = np.clip((speed - v_min) / (v_max - v_min), 0.0, 1.0)
    terms = {
        "collision": cfg.collision_reward * collision,
        "high_speed": cfg.high_speed_reward * scaled,
        "on_road": cfg.on_road_reward * (1.0 - off_road),
    }
    total = sum(terms.values())
    if cfg.normalize:
        lo = min(cfg.collision_reward, 0.0)
        hi = max(cfg.high_speed_reward, 0.0) + max(cfg.on_road_reward, 0.0)
        total = (total - lo) / max(hi - lo, 1e-8)
    terminated = (collision > cfg.terminate_threshold) | (off_road > cfg.terminate_threshold)
    f32 = {k: np.asarray(v, np.float32) for k, v in terms.items()}
    return RewardTerms(**f32, total=np.asarray(total, np.float32), terminated=terminated)
