"""`drivesim/DriveWorld-v0`: the learned world model as a Gymnasium env.

Observation: uint8 (H, W, 3), the last frame of the control interval. Action:
Box(-1, 1, (2,), float32) = [steer, accel] (accel < 0 brakes; out-of-range values are
clipped; NaN/inf, non-numbers or a wrong shape raise ValueError), or with action_type="discrete"
Discrete(5) meta-actions (LANE_LEFT, IDLE, LANE_RIGHT, FASTER, SLOWER; integer indices only, a
float, bool or string raises ValueError). reset options: see `drivesim.env.options`. One step is one
control interval (one keyframe); all frames of the interval are in info["frames"]
(uint8 t h w c). Rewards follow highway-env (see `drivesim.rollout.rewards`; with a model's pose
heads also right lane and lane centring, as in the procedural world's env); a predicted collision
or off-road terminates; episodes truncate after `horizon_steps`. info: "rewards" (each weighted
term), "collision_prob", "off_road_prob", "speed" (the ego speed rewarded), "speed_read",
"lateral_offset", "heading" (the heads' readings, when they read them), "time_of_day", "crowdedness".
`drivesim/DriveWorldSteer-v0` is the same env on the bundle's steerable prediction stage. Engine
settings: a registered id's YAML gives `engine_defaults`; the caller's `engine_config` keys override
them one by one (`drivesim.rollout.engine_api.merge_engine_config`).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import gymnasium as gym
import numpy as np

from drivesim.env.meta_actions import META_ACTIONS, meta_to_continuous
from drivesim.env.options import CROWDEDNESS, TIME_OF_DAY, check_action, parse_options
from drivesim.rollout.engine import build_engine
from drivesim.rollout.engine_api import Engine, merge_engine_config
from drivesim.rollout.rewards import RewardTerms, compute_rewards, reward_config
from drivesim.rollout.types import RolloutState, StepOutput
from drivesim.world.types import VEHICLE_CLASSES

ACTION_TYPES = ("continuous", "discrete")


def make_spaces(height: int, width: int, action_type: str) -> tuple[gym.spaces.Box, gym.spaces.Space]:
    if action_type not in ACTION_TYPES:
        raise ValueError(f"action_type={action_type!r}; allowed: {list(ACTION_TYPES)}")
    obs = gym.spaces.Box(0, 255, (height, width, 3), np.uint8)
    act = (
        gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        if action_type == "continuous"
        else gym.spaces.Discrete(len(META_ACTIONS))
    )
    return obs, act


def step_info(out: StepOutput, terms: RewardTerms, i: int, tod: int, crowd: int) -> dict[str, Any]:
    """One rollout's info; the reward heads' readings ("speed_read", "lateral_offset", "heading") only
    from an engine whose heads read them."""
    read = {} if out.speed_read is None else {"speed_read": float(out.speed_read[i])}
    if out.pose is not None:
        read.update(lateral_offset=float(out.pose[i, 0]), heading=float(out.pose[i, 1]))
    return {
        "frames": out.frames[i],
        "rewards": terms.as_dict(i),
        "collision_prob": float(out.collision[i]),
        "off_road_prob": float(out.off_road[i]),
        "speed": float(out.speed[i]),
        **read,
        "time_of_day": TIME_OF_DAY[tod],
        "crowdedness": CROWDEDNESS[crowd],
        "step": int(out.state.step[i]),
    }


def layout_info(layout: tuple[np.ndarray, np.ndarray] | None) -> dict[str, Any] | None:
    """A reset's composed layout as info: {"boxes": (n, 4) float32 normalised x1, y1, x2, y2,
    "classes": n vehicle class names}, or None (no boxes, or started from `initial_frames`)."""
    if layout is None:
        return None
    xyxy, classes = layout
    return {"boxes": xyxy.copy(), "classes": [VEHICLE_CLASSES[int(c)] for c in classes]}


class DriveWorldEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(
        self,
        model: str | None = None,
        engine: Engine | None = None,
        engine_config: dict[str, Any] | None = None,
        action_type: str = "continuous",
        engine_defaults: dict[str, Any] | None = None,
        reward: dict[str, Any] | None = None,
        horizon_steps: int = 600,
        render_mode: str | None = "rgb_array",
    ) -> None:
        if engine is None:
            engine = build_engine(model, merge_engine_config(engine_defaults, engine_config))
        self.engine = engine
        self.action_type = action_type
        self.reward_config = reward_config(reward)
        if horizon_steps < 1:
            raise ValueError(f"horizon_steps={horizon_steps} must be >= 1")
        self.horizon_steps = horizon_steps
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode={render_mode!r}; allowed: None, 'rgb_array'")
        self.render_mode = render_mode
        h, w = self.engine.frame_size
        self.observation_space, self.action_space = make_spaces(h, w, action_type)
        self.metadata = {**self.metadata, "render_fps": self.engine.output_fps}
        self._state: RolloutState | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        h, w = self.engine.frame_size
        request = parse_options(options, int(self.np_random.integers(2**31 - 1)), self.np_random, h, w)
        out = self.engine.start([request])
        self._state = out.state
        info = {
            "frames": out.frames[0],
            "time_of_day": TIME_OF_DAY[request.time_of_day],
            "crowdedness": CROWDEDNESS[request.crowdedness],
            "layout": layout_info(out.layouts[0]) if out.layouts else None,
            "step": 0,
        }
        return out.frames[0, -1], info

    def step(self, action: Any):
        if self._state is None:
            raise ValueError("call reset() before step()")
        if self.action_type == "discrete":
            cont = meta_to_continuous(action)
        else:
            cont = check_action(action)
        out = self.engine.step(self._state, cont[None])
        self._state = out.state
        terms = compute_rewards(self.reward_config, out.collision, out.off_road, out.speed, out.pose)
        st = out.state
        info = step_info(out, terms, 0, int(st.time_of_day[0]), int(st.crowdedness[0]))
        truncated = int(st.step[0]) >= self.horizon_steps
        return out.frames[0, -1], float(terms.total[0]), bool(terms.terminated[0]), truncated, info

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            return None
        if self._state is None:
            h, w = self.engine.frame_size
            return np.zeros((h, w, 3), np.uint8)
        return self._state.last_frame[0].numpy()

    # Planner and state access -------------------------------------------------------------
    def get_state(self) -> RolloutState:
        """A copy of the live rollout state (restore it with set_state)."""
        if self._state is None:
            raise ValueError("call reset() before get_state()")
        return self._state.clone()

    def set_state(self, state: RolloutState) -> None:
        if state.batch_size != 1:
            raise ValueError(f"set_state needs a state of one rollout, got batch size {state.batch_size}")
        self._state = state.clone()

    def reward_settings(self) -> dict[str, Any]:
        return asdict(self.reward_config)
