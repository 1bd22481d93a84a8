"""Reward terms in the highway-env convention, from the reward heads' predictions.

reward = collision_reward * p(collision) + high_speed_reward * clip((v - v_min) / (v_max - v_min), 0, 1)
       + on_road_reward * (1 - p(off_road))
       [+ right_lane_reward * lane / (num_lanes - 1) * (1 - p(off_road))
        + lane_centering_reward * max(0, 1 - 2 |x - nearest lane centre|) * (1 - p(off_road))]
The bracketed terms, as in the procedural world's env (`drivesim.world.gym_env`), need the pose
heads' lateral offset x (lane widths from the road centre, negative = left; lane centres at
(i - (num_lanes - 1) / 2), lane 0 leftmost); without a pose reading they are absent (zero, and out of
the normalisation). Each term is reported in info["rewards"]; weights come from the env YAML.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RewardConfig:
    collision_reward: float = -1.0
    high_speed_reward: float = 0.4
    on_road_reward: float = 0.1
    right_lane_reward: float = 0.1  # needs a pose reading (the "pose" stage)
    lane_centering_reward: float = 0.1  # needs a pose reading
    num_lanes: int = 3  # lanes of the world the heads were trained on
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
    if int(settings.get("num_lanes", 3)) < 1:
        raise ValueError(f"reward num_lanes={settings['num_lanes']} must be >= 1")
    return RewardConfig(**settings)


@dataclass(frozen=True)
class RewardTerms:
    """(b,) float32 each."""

    collision: np.ndarray
    high_speed: np.ndarray
    on_road: np.ndarray
    total: np.ndarray
    terminated: np.ndarray
    right_lane: np.ndarray | None = None  # None: no pose reading
    lane_centering: np.ndarray | None = None

    def as_dict(self, i: int) -> dict[str, float]:
        """Rollout i's weighted terms (the lane terms only with a pose reading), for info["rewards"]."""
        names = ("collision", "high_speed", "on_road", "right_lane", "lane_centering")
        return {n: float(getattr(self, n)[i]) for n in names if getattr(self, n) is not None}


def lane_centres(num_lanes: int) -> np.ndarray:
    """(num_lanes,) lane centres in lane widths from the road centre, leftmost first (the world's
    `WorldConfig.lane_centres` divided by the lane width)."""
    return np.arange(num_lanes) - 0.5 * (num_lanes - 1)


def lane_position(offset: np.ndarray, num_lanes: int) -> tuple[np.ndarray, np.ndarray]:
    """offset (...) lane widths from the road centre -> (...) nearest lane index (0 leftmost) and
    (...) centring in [0, 1]: 1 at that lane's centre, 0 half a lane or more away."""
    centres = lane_centres(num_lanes)
    lane = np.abs(np.asarray(offset)[..., None] - centres).argmin(axis=-1)
    centred = np.clip(1.0 - 2.0 * np.abs(offset - centres[lane]), 0.0, 1.0)
    return lane, centred


def compute_rewards(
    cfg: RewardConfig,
    collision: np.ndarray,
    off_road: np.ndarray,
    speed: np.ndarray,
    pose: np.ndarray | None = None,
) -> RewardTerms:
    """(...) each, e.g. (b,) or (k, H); pose (..., 2) [lateral offset (lane widths), heading (rad)] or
    None (no lane terms)."""
    v_min, v_max = cfg.speed_range
    if not v_max > v_min:
        raise ValueError(f"speed_range={cfg.speed_range} needs v_min < v_max")
    scaled = np.clip((speed - v_min) / (v_max - v_min), 0.0, 1.0)
    on_road = 1.0 - off_road
    terms = {
        "collision": cfg.collision_reward * collision,
        "high_speed": cfg.high_speed_reward * scaled,
        "on_road": cfg.on_road_reward * on_road,
    }
    positive = [cfg.high_speed_reward, cfg.on_road_reward]
    if pose is not None:
        lane, centred = lane_position(np.asarray(pose, np.float64)[..., 0], cfg.num_lanes)
        terms["right_lane"] = cfg.right_lane_reward * lane / max(cfg.num_lanes - 1, 1) * on_road
        terms["lane_centering"] = cfg.lane_centering_reward * centred * on_road
        positive += [cfg.right_lane_reward, cfg.lane_centering_reward]
    total = sum(terms.values())
    if cfg.normalize:
        lo = min(cfg.collision_reward, 0.0)
        hi = sum(max(w, 0.0) for w in positive)
        total = (total - lo) / max(hi - lo, 1e-8)
    terminated = (collision > cfg.terminate_threshold) | (off_road > cfg.terminate_threshold)
    f32 = {k: np.asarray(v, np.float32) for k, v in terms.items()}
    return RewardTerms(**f32, total=np.asarray(total, np.float32), terminated=terminated)
