"""`drivesim/ProceduralWorld-v0`: the ground-truth procedural world as a Gymnasium env.

Same spaces and reset options as the learned `drivesim/DriveWorld-v0`, so a policy moves
between the two. Observation: uint8 (H, W, 3). Action: Box(-1, 1, (2,), float32) =
[steer, accel] (accel < 0 brakes); out-of-range values are clipped, NaN/inf or a wrong
shape raise ValueError. One env step = `frame_skip` world steps with the same action.

reset(seed=..., options={...}), every option may be omitted (then sampled from the env's
seeded generator):
  time_of_day: "day" | "night"; crowdedness: "low" | "medium" | "high";
  boxes: [[x1, y1, x2, y2], ...] normalised; vehicles are placed so their boxes roughly
      match (bottom edge -> distance, outer edge -> lateral position, height -> car or
      truck; see `drivesim.world.placement`), instead of the random initial traffic;
  initial_frames: not supported here. The ground-truth world cannot start from pixels, so
      a non-None value raises ValueError (only the learned env accepts it).
Unknown option keys raise ValueError listing the allowed keys.

Rewards follow highway-env: collision, high speed (speed mapped from `speed_range` to
[0, 1]), right lane (lane index / (lanes - 1)), lane centering (1 at a lane centre, 0 half
a lane away), on road; each weighted term is in info["rewards"], the reward is their sum,
rescaled to [0, 1] when `normalize`. A collision or leaving the road terminates.
info: "boxes" (Boxes at the observation size), "ego" (EgoState), "events" (Events),
"time_of_day", "crowdedness", "rewards", "frame_index".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import gymnasium as gym
import numpy as np

from drivesim.world.config import WorldConfig
from drivesim.world.types import CROWDEDNESS, TIME_OF_DAY, Events, WorldFrame, check_label
from drivesim.world.world import World, check_action

OPTION_KEYS = ("time_of_day", "crowdedness", "boxes", "initial_frames")


@dataclass(frozen=True)
class RewardSettings:
    collision_reward: float = -1.0
    high_speed_reward: float = 0.4
    right_lane_reward: float = 0.1
    lane_centering_reward: float = 0.1
    on_road_reward: float = 0.1
    speed_range: tuple[float, float] = (10.0, 30.0)  # m/s mapped to [0, 1]
    normalize: bool = True  # rescale the sum to [0, 1] as highway-env does

    @staticmethod
    def from_dict(settings: dict[str, Any] | None) -> RewardSettings:
        settings = dict(settings or {})
        allowed = sorted(f.name for f in fields(RewardSettings))
        unknown = sorted(set(settings) - set(allowed))
        if unknown:
            raise ValueError(f"unknown reward setting(s) {unknown}; allowed: {allowed}")
        if "speed_range" in settings:
            settings["speed_range"] = tuple(float(v) for v in settings["speed_range"])
            lo, hi = settings["speed_range"]
            if not hi > lo:
                raise ValueError(f"reward speed_range={settings['speed_range']} needs v_min < v_max")
        return RewardSettings(**settings)


class ProceduralWorldEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(self, height: int = 64, width: int = 128, fps: int = 30, frame_skip: int = 1,
                 render_mode: str | None = "rgb_array", reward: dict[str, Any] | None = None,
                 world: dict[str, Any] | None = None) -> None:
        """world: extra WorldConfig fields (e.g. {"num_lanes": 4}); reward: RewardSettings fields."""
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode={render_mode!r} is not allowed; expected None or 'rgb_array'")
        if not isinstance(frame_skip, (int, np.integer)) or frame_skip < 1:
            raise ValueError(f"frame_skip={frame_skip!r} is not allowed; expected an int >= 1")
        self.world = World(WorldConfig(height=height, width=width, fps=fps, **(world or {})))
        self.frame_skip = int(frame_skip)
        self.render_mode = render_mode
        self.rewards = RewardSettings.from_dict(reward)
        self.observation_space = gym.spaces.Box(0, 255, (height, width, 3), np.uint8)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.metadata = {**self.metadata, "render_fps": fps / self.frame_skip}
        self._frame: WorldFrame | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if options is not None and not isinstance(options, Mapping):
            raise ValueError(f"options must be a dict with keys {list(OPTION_KEYS)} or None, "
                             f"got {type(options).__name__}")
        options = dict(options or {})
        unknown = sorted((k for k in options if k not in OPTION_KEYS), key=repr)
        if unknown:
            raise ValueError(f"unknown reset option(s) {unknown}; allowed keys: {list(OPTION_KEYS)}")
        if options.get("initial_frames") is not None:
            raise ValueError("options['initial_frames'] is only supported by the learned env drivesim/DriveWorld-v0; "
                             "the procedural world starts from its own state (use 'boxes' to place vehicles)")
        tod = options.get("time_of_day")
        tod = TIME_OF_DAY[int(self.np_random.integers(len(TIME_OF_DAY)))] if tod is None else tod
        crowd = options.get("crowdedness")
        crowd = CROWDEDNESS[int(self.np_random.integers(len(CROWDEDNESS)))] if crowd is None else crowd
        check_label("time_of_day", tod, TIME_OF_DAY)
        check_label("crowdedness", crowd, CROWDEDNESS)
        world_seed = int(self.np_random.integers(0, 2**31 - 1))
        self._frame = self.world.reset(seed=world_seed, time_of_day=tod, crowdedness=crowd,
                                       boxes=options.get("boxes"))
        return self._frame.image, self._info(self._frame, self._terms(self._frame.events))

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._frame is None:
            raise RuntimeError("ProceduralWorldEnv.reset() must be called before step()")
        act = check_action(action)
        collision = off_road = False
        for _ in range(self.frame_skip - 1):
            events = self.world.advance(act)
            collision |= events.collision
            off_road |= events.off_road
        frame = self.world.step(act)
        events = Events(collision=collision or frame.events.collision, off_road=off_road or frame.events.off_road)
        self._frame = frame
        terms = self._terms(events)
        total = float(sum(terms.values()))
        if self.rewards.normalize:
            lo, hi = self._reward_bounds()
            total = (total - lo) / max(hi - lo, 1e-8)
        terminated = bool(events.collision or events.off_road)
        info = self._info(frame, terms)
        info["events"] = events
        return frame.image, total, terminated, False, info

    def render(self) -> np.ndarray | None:
        if self.render_mode is None or self._frame is None:
            return None
        return self._frame.image.copy()

    # ------------------------------------------------------------------------------------------ rewards
    def _terms(self, events: Events) -> dict[str, float]:
        r, cfg, ego = self.rewards, self.world.config, self.world.ego_car
        lo, hi = r.speed_range
        forward = ego.speed * float(np.cos(ego.heading))
        lanes = cfg.lane_centres()
        lane = int(np.argmin(np.abs(lanes - ego.x)))
        centred = max(0.0, 1.0 - abs(ego.x - float(lanes[lane])) / (0.5 * cfg.lane_width))
        on_road = not events.off_road
        return {
            "collision": r.collision_reward if events.collision else 0.0,
            "high_speed": r.high_speed_reward * min(max((forward - lo) / (hi - lo), 0.0), 1.0),
            "right_lane": r.right_lane_reward * (lane / max(cfg.num_lanes - 1, 1)) * on_road,
            "lane_centering": r.lane_centering_reward * centred * on_road,
            "on_road": r.on_road_reward * float(on_road),
        }

    def _reward_bounds(self) -> tuple[float, float]:
        r = self.rewards
        lo = min(r.collision_reward, 0.0)
        hi = sum(max(v, 0.0) for v in (r.high_speed_reward, r.right_lane_reward, r.lane_centering_reward,
                                         r.on_road_reward))
        return lo, hi

    def _info(self, frame: WorldFrame, terms: dict[str, float]) -> dict[str, Any]:
        return {
            "boxes": frame.boxes, "ego": frame.ego, "events": frame.events, "time_of_day": frame.time_of_day,
            "crowdedness": frame.crowdedness, "rewards": terms, "frame_index": frame.frame_index,
        }
